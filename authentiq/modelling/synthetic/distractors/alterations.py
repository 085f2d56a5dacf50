"""A real item's photos altered after they were taken: mirrored, turned, ruined, or one of them taken
from another product.

Each is what a careless or a hostile submitter sends: a selfie camera's mirror image, a phone that
did not record its orientation, a photo re-saved at the lowest JPEG quality, upscaled from a
thumbnail or stretched, and a genuine view of another product slipped in among the claimed one's.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import numpy as np
from PIL import Image

ORIENTATIONS = {
    "mirrored": Image.Transpose.FLIP_LEFT_RIGHT,
    "flipped": Image.Transpose.FLIP_TOP_BOTTOM,
    "turned_90": Image.Transpose.ROTATE_90,
    "turned_180": Image.Transpose.ROTATE_180,
    "turned_270": Image.Transpose.ROTATE_270,
}
DEGRADATIONS = ("jpeg", "upscaled", "stretched")


def reorient(photo: bytes, how: str) -> bytes:
    """The photo mirrored, flipped or turned (no EXIF orientation tag to undo it)."""
    with Image.open(io.BytesIO(photo)) as img:
        return _jpeg(img.convert("RGB").transpose(ORIENTATIONS[how]), 90)


def degrade(photo: bytes, how: str, rng: np.random.Generator) -> bytes:
    """The photo re-saved at JPEG quality 1–5, upscaled back from 16–48 px on its long side, or
    stretched 3–7 times along one axis."""
    with Image.open(io.BytesIO(photo)) as opened:
        img = opened.convert("RGB")
        w, h = img.size
        if how == "jpeg":
            return _jpeg(img, int(rng.integers(1, 6)))
        if how == "upscaled":
            long = int(rng.integers(16, 49))
            small = img.resize((max(1, round(w * long / max(w, h))), max(1, round(h * long / max(w, h)))),
                               Image.Resampling.BOX)
            method = Image.Resampling.NEAREST if rng.random() < 0.5 else Image.Resampling.BICUBIC
            return _jpeg(small.resize((w, h), method), 90)
        if how == "stretched":
            factor = float(rng.uniform(3.0, 7.0))
            size = (round(w * factor), h) if rng.random() < 0.5 else (w, round(h * factor))
            stretched = img.resize(size, Image.Resampling.BILINEAR)
            if max(size) > 4000:  # stay under the service's pixel limit
                scale = 4000 / max(size)
                stretched = stretched.resize((round(size[0] * scale), round(size[1] * scale)))
            return _jpeg(stretched, 90)
    raise ValueError(f"unknown degradation {how!r}; known: {', '.join(DEGRADATIONS)}")


def alter(photos: Mapping[str, bytes], rng: np.random.Generator, views: tuple[str, ...], kind: str,
          foreign: Mapping[str, bytes] | None = None) -> dict[str, bytes]:
    """``photos`` with one view (all views for ``upside_down``) altered as ``kind`` says."""
    out = dict(photos)
    view = views[int(rng.integers(0, len(views)))]
    if kind == "mirrored_view":
        out[view] = reorient(photos[view], "mirrored")
    elif kind == "turned_view":
        out[view] = reorient(photos[view], ("turned_90", "turned_270")[int(rng.integers(0, 2))])
    elif kind == "upside_down":
        how = ("flipped", "turned_180")[int(rng.integers(0, 2))]
        out = {v: reorient(p, how) for v, p in photos.items()}
    elif kind == "degraded_view":
        out[view] = degrade(photos[view], DEGRADATIONS[int(rng.integers(0, len(DEGRADATIONS)))], rng)
    elif kind == "foreign_view":
        if foreign is None:
            raise ValueError("foreign_view needs another product's photos")
        out[view] = foreign[view]
    else:
        raise ValueError(f"unknown alteration {kind!r}")
    return out


def _jpeg(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()
