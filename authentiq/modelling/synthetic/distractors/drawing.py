"""Drawing primitives shared by the distractor painters: colours, blends, value noise, surface grain,
and laying a flat thing on a surface with a shadow and a slight perspective."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter

Size = tuple[int, int]
Rgb = tuple[int, int, int]
Floats = npt.NDArray[np.float32]


def to_image(arr: npt.NDArray[Any]) -> Image.Image:
    """An (h, w), (h, w, 1) or (h, w, 3) array of levels, clipped to 0..255, as an RGB image."""
    grey = arr.ndim == 2 or arr.shape[2] == 1
    levels = np.clip(arr, 0, 255).astype(np.uint8).reshape(arr.shape[0], arr.shape[1], -1)
    return Image.fromarray(levels[:, :, 0], "L").convert("RGB") if grey else Image.fromarray(levels, "RGB")


def random_colour(rng: np.random.Generator, lo: int = 0, hi: int = 256) -> Rgb:
    r, g, b = (int(c) for c in rng.integers(lo, hi, size=3))
    return (r, g, b)


def random_green(rng: np.random.Generator) -> Rgb:
    return (int(rng.integers(20, 80)), int(rng.integers(70, 140)), int(rng.integers(20, 70)))


def shade(rgb: Rgb, k: float) -> Rgb:
    return (min(255, int(rgb[0] * k)), min(255, int(rgb[1] * k)), min(255, int(rgb[2] * k)))


def lerp(a: Rgb, b: Rgb, t: Floats) -> Floats:
    """Per-pixel blend from colour ``a`` (t=0) to ``b`` (t=1): (h, w) -> (h, w, 3)."""
    out = t[:, :, None] * (np.asarray(b, np.float32) - np.asarray(a, np.float32))
    out += np.asarray(a, np.float32)
    return out


def fractal_noise(rng: np.random.Generator, size: Size, cell: float, octaves: int,
             persistence: float = 0.55) -> Floats:
    """Value noise summed over octaves (cell halves, amplitude shrinks by ``persistence``), in 0..1.

    Summed at the coarsest resolution that still resolves the finest octave, then scaled up once.
    """
    step = max(1, int(cell / 2 ** (octaves - 1) / 4))
    w, h = max(2, math.ceil(size[0] / step)), max(2, math.ceil(size[1] / step))
    total, amp, cell = np.zeros((h, w), np.float32), 1.0, cell / step
    for _ in range(octaves):
        grid = rng.standard_normal((max(2, math.ceil(h / cell) + 1), max(2, math.ceil(w / cell) + 1)))
        up = Image.fromarray(grid.astype(np.float32), "F").resize((w, h), Image.Resampling.BICUBIC)
        total += np.asarray(up, np.float32) * np.float32(amp)
        amp, cell = amp * persistence, max(2.0, cell / 2)
    total -= total.min()
    total /= max(1e-6, float(total.max()))
    if step > 1:
        total = np.asarray(Image.fromarray(total, "F").resize(size, Image.Resampling.BILINEAR), np.float32)
    return total


def add_grain(img: Image.Image, rng: np.random.Generator, amount: float) -> Image.Image:
    """Blotchy brightness variation, as on a real surface (the camera adds the fine noise)."""
    blotch = (fractal_noise(rng, img.size, max(img.size) / 4, 4) - 0.5) * np.float32(amount * 3)
    return to_image(np.asarray(img, np.float32) + blotch[:, :, None])


def place(canvas: Image.Image, fg: Image.Image, rng: np.random.Generator, tilt: float) -> Image.Image:
    """Paste ``fg`` near the centre, rotated up to ``tilt`` degrees and seen at a slight slant."""
    w, h = canvas.size
    fw, fh = fg.size
    cx, cy = w / 2 + rng.uniform(-0.06, 0.06) * w, h / 2 + rng.uniform(-0.06, 0.06) * h
    a = math.radians(rng.uniform(-tilt, tilt))
    src = [(0.0, 0.0), (fw, 0.0), (fw, fh), (0.0, fh)]
    dst = []
    for x, y in src:
        x, y = x - fw / 2, y - fh / 2
        jx, jy = rng.uniform(-0.04, 0.04, size=2) * min(w, h)
        dst.append((cx + x * math.cos(a) - y * math.sin(a) + jx, cy + x * math.sin(a) + y * math.cos(a) + jy))
    off = 0.015 * min(w, h)
    shadow = [(x + off, y + off) for x, y in dst]
    out = cast_shadow(canvas, shadow, int(rng.integers(60, 140))).convert("RGBA")
    warped = fg.convert("RGBA").transform((w, h), Image.Transform.PERSPECTIVE, _homography(dst, src),
                                          Image.Resampling.BILINEAR, fillcolor=(0, 0, 0, 0))
    return Image.alpha_composite(out, warped).convert("RGB")


def cast_shadow(canvas: Image.Image, shape: list[tuple[float, float]] | tuple[float, float, float, float],
            strength: int) -> Image.Image:
    """Darken a soft-edged polygon (points) or ellipse (a box); drawn small, blurred, scaled up."""
    w, h = canvas.size
    mask = Image.new("L", (max(1, w // 8), max(1, h // 8)), 0)
    if isinstance(shape, list):
        ImageDraw.Draw(mask).polygon([(x / 8, y / 8) for x, y in shape], fill=strength)
    else:
        ImageDraw.Draw(mask).ellipse([c / 8 for c in shape], fill=strength)
    mask = mask.filter(ImageFilter.GaussianBlur(max(1.0, 0.0025 * min(w, h))))
    return Image.composite(Image.new("RGB", (w, h)), canvas, mask.resize((w, h), Image.Resampling.BILINEAR))


def _homography(dst: list[tuple[float, float]], src: list[tuple[float, float]]) -> tuple[float, ...]:
    """Pillow's PERSPECTIVE coefficients taking output points ``dst`` to input points ``src``."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        rhs += [u, v]
    return tuple(float(c) for c in np.linalg.solve(np.array(rows), np.array(rhs)))


def rounded_layer(img: Image.Image, radius: float) -> Image.Image:
    mask = Image.new("L", img.size, 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, img.width - 1, img.height - 1), radius=radius, fill=255)
    out = img.convert("RGBA")
    out.putalpha(mask)
    return out
