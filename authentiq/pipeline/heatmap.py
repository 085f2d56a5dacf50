"""Attention heatmaps from the model's class activation map, blended over what the model saw.

The CAM ``[2, h, w]`` covers the whole mosaic. For one class, its positive part is normalised by
its maximum over the item's present views (so the views of one report are comparable), each
view's cell is cut out and upsampled (bilinear) to the view's display square — the centre square
the model analysed — mapped through a colormap lookup table (one of matplotlib's colormaps, built
once) and alpha-blended over the photo, more opaque where the attention is higher. Numpy and
Pillow per request, no pyplot (``benchmarks/heatmap.py``: a few ms per view on one core).

Every image carries its caption: a heatmap shows where the model's attention was, not proof of
where a defect is.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Mapping

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from authentiq.contract.model_spec import ModelSpec
from authentiq.pipeline.stitch import cell_of

CAPTION = ("model attention: {cls}", "not proof of a defect")
NOTICE = ("Heatmaps show where the model's attention was when it scored the item, for the class "
          "named. They are an explanation of the model, not proof of where a defect is.")
COLORMAP = "inferno"
MAX_ALPHA = 0.65
BAND = 30  # caption band height in pixels (two lines)


@functools.cache
def lookup_table(name: str = COLORMAP) -> np.ndarray:
    """``[256, 3]`` uint8 RGB from one of matplotlib's colormaps (imported once, lazily)."""
    from matplotlib import colormaps

    return (colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)


@functools.cache
def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=12)


def heat_by_view(spec: ModelSpec, cam: np.ndarray, cls: str, present: set[str]) -> dict[str, np.ndarray]:
    """Per present view: the class's attention in its cell, scaled to 0..1 over the item."""
    positive = np.maximum(cam[spec.classes.index(cls)], 0.0)
    rows, cols = spec.grid
    ch, cw = positive.shape[0] // rows, positive.shape[1] // cols
    cells = {}
    for view in spec.view_names:
        if view in present:
            r, c = cell_of(spec, view)
            cells[view] = positive[r * ch:(r + 1) * ch, c * cw:(c + 1) * cw]
    peak = max((float(x.max()) for x in cells.values()), default=0.0)
    return {v: (x / peak if peak > 0 else np.zeros_like(x)).astype(np.float32) for v, x in cells.items()}


def blend(display: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """``display`` uint8 [a, a, 3] with ``heat`` (0..1, any small grid) upsampled and overlaid."""
    side = display.shape[0]
    up = np.asarray(Image.fromarray(heat, "F").resize((side, side), Image.Resampling.BILINEAR))
    up = np.clip(up, 0.0, 1.0)
    colour = lookup_table()[(up * 255).astype(np.uint8)]
    alpha = (up * MAX_ALPHA)[..., None]
    out: np.ndarray = (display * (1 - alpha) + colour * alpha).astype(np.uint8)
    return out


def _captioned(rgb: np.ndarray, lines: tuple[str, str]) -> Image.Image:
    img = Image.new("RGB", (rgb.shape[1], rgb.shape[0] + BAND), (24, 24, 24))
    img.paste(Image.fromarray(rgb), (0, 0))
    draw = ImageDraw.Draw(img)
    for n, line in enumerate(lines):
        draw.text((4, rgb.shape[0] + 2 + 13 * n), line, fill=(235, 235, 235), font=_font())
    return img


def _encode(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "WEBP", quality=80, method=0)
    return buf.getvalue()


def render(spec: ModelSpec, cam: np.ndarray, displays: Mapping[str, np.ndarray], classes: list[str]
           ) -> dict[str, bytes]:
    """WebP images named ``heatmap-<class>-<view>.webp`` and ``heatmap-<class>-overview.webp``."""
    out: dict[str, bytes] = {}
    for cls in classes:
        heat = heat_by_view(spec, cam, cls, set(displays))
        caption = (CAPTION[0].format(cls=cls), CAPTION[1])
        blended = {v: blend(displays[v], h) for v, h in heat.items()}
        for view, rgb in blended.items():
            out[f"heatmap-{cls}-{view}.webp"] = _encode(_captioned(rgb, caption))
        out[f"heatmap-{cls}-overview.webp"] = _encode(_captioned(_mosaic(spec, blended), caption))
    return out


def _mosaic(spec: ModelSpec, blended: Mapping[str, np.ndarray]) -> np.ndarray:
    side = next(iter(blended.values())).shape[0] if blended else 64
    rows, cols = spec.grid
    canvas = np.full((rows * side, cols * side, 3), 90, dtype=np.uint8)  # grey: view not seen
    for view, rgb in blended.items():
        r, c = cell_of(spec, view)
        canvas[r * side:(r + 1) * side, c * side:(c + 1) * side] = rgb
    return canvas


def classes_to_render(verdict: str) -> list[str]:
    """The decided class; both for inconclusive."""
    return ["authentic", "counterfeit"] if verdict == "inconclusive" else [verdict]
