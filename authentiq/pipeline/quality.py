"""Per-view quality check: is this photo usable, and if not, what should the user retake?"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from authentiq.pipeline.preprocess import DecodedView
from authentiq.settings import QualitySettings

RETAKE_HINTS = {
    "too_small": "Move closer or use the camera's full resolution.",
    "blurred": "Hold the camera still and tap to focus on the detail.",
    "underexposed": "Add light or move out of shadow.",
    "overexposed": "Reduce light or move away from direct light.",
    "glare": "Tilt the item or the camera to avoid reflections.",
    "stretched": "Photograph the detail in the camera's own frame (4:3, 3:2 or 16:9), without "
                 "stretching the photo or cutting it to a strip.",
    "upscaled": "Take the photo again at the camera's full resolution instead of enlarging a "
                "thumbnail or a small crop.",
    "overcompressed": "Send the photo as the camera saved it, not a copy that a messaging app, "
                      "a screenshot or an editor has compressed again.",
}


@dataclass(frozen=True)
class Quality:
    usable: bool
    reason: str | None  # one of RETAKE_HINTS, or None
    message: str | None
    sharpness: float  # variance of the Laplacian on the analysis image
    brightness: float  # mean grey level, 0..255
    glare: float  # share of near-white pixels
    jpeg_quality: int | None = None  # estimated JPEG quality; None: not a JPEG
    repeated_lines: float = 0.0  # share of rows and columns that repeat their neighbour


def laplacian_variance(grey: np.ndarray) -> float:
    g = grey.astype(np.float32)
    lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4 * g[1:-1, 1:-1]
    return float(lap.var())


def repeated_lines(grey: np.ndarray, tolerance: float = 1.0, detail: float = 4.0) -> float:
    """Among the rows and columns that cross some detail (their grey levels vary by more than
    ``detail``), the share that repeats its neighbour (mean absolute difference under
    ``tolerance``). A photo enlarged from a thumbnail is made of blocks, or smooth ramps, whose
    lines repeat right across the item; in a photo taken at its size, texture and sensor noise
    make neighbouring lines through the item differ. Lines of plain backdrop are left out (a
    small item on a white sheet is no thumbnail), and so is a photo with too few lines of
    detail to tell (the blur check speaks for it). Generator photos: at most 0.41; a small item
    on a plain backdrop: 0.50; enlarged block by block from 16-48 px: 0.75 and more."""
    g = grey.astype(np.float32)
    col_detail = g.std(axis=0) > detail
    row_detail = g.std(axis=1) > detail
    columns = col_detail[1:] & col_detail[:-1]
    rows = row_detail[1:] & row_detail[:-1]
    if columns.sum() + rows.sum() < 0.2 * (len(columns) + len(rows)):
        return 0.0
    repeated = np.concatenate([np.abs(np.diff(g, axis=1)).mean(axis=0)[columns] < tolerance,
                               np.abs(np.diff(g, axis=0)).mean(axis=1)[rows] < tolerance])
    return float(repeated.mean())


def check(view: DecodedView, thresholds: QualitySettings) -> Quality:
    sharp = laplacian_variance(view.analysis)
    bright = float(view.analysis.mean())
    glare = float((view.analysis >= 250).mean())
    repeated = repeated_lines(view.analysis)
    reason, message = None, None
    if min(view.width, view.height) < thresholds.min_side:
        reason = "too_small"
        message = (f"{view.width}×{view.height} px; at least {thresholds.min_side} px on the "
                   "short side is needed.")
    elif max(view.width, view.height) > thresholds.max_aspect * min(view.width, view.height):
        # A camera's frame is at most 16:9 (21:9 on a few phones); a longer strip was stretched,
        # or cut from a panorama, and its centre square shows a distorted or partial detail.
        aspect = max(view.width, view.height) / min(view.width, view.height)
        reason = "stretched"
        message = (f"{view.width}×{view.height} px: {aspect:.1f} times as long as it is wide "
                   f"(at most {thresholds.max_aspect:g}).")
    elif bright < thresholds.dark_threshold:
        reason, message = "underexposed", f"too dark (mean level {bright:.0f} of 255)."
    elif bright > thresholds.bright_threshold:
        reason, message = "overexposed", f"too bright (mean level {bright:.0f} of 255)."
    elif glare > thresholds.glare_share:
        reason, message = "glare", f"{glare:.0%} of the photo is blown-out highlights."
    elif view.jpeg_quality is not None and view.jpeg_quality < thresholds.min_jpeg_quality:
        # Blocks of 8 x 8 pixels replace the fine detail (stitching, engraving) the model judges;
        # the sharpness of such a photo measures the block edges, not the item.
        reason = "overcompressed"
        message = (f"saved at very low JPEG quality (about {view.jpeg_quality} of 100; at least "
                   f"{thresholds.min_jpeg_quality} is needed).")
    elif sharp < thresholds.blur_threshold:
        reason = "blurred"
        message = f"not sharp enough (sharpness {sharp:.1f}, needs {thresholds.blur_threshold:g})."
    elif repeated > thresholds.max_repeated_lines:
        reason = "upscaled"
        message = (f"enlarged from a much smaller image ({repeated:.0%} of its rows and columns "
                   f"repeat their neighbour).")
    if reason is not None:
        message = f"{message} {RETAKE_HINTS[reason]}"
    return Quality(reason is None, reason, message, sharp, bright, glare, view.jpeg_quality,
                   repeated)
