"""Flat frames with no object in them: noise, blank frames and textures (wood, checks, brick, marble,
stripes), and the surface an object or a page lies on."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from authentiq.modelling.synthetic.distractors.drawing import (
    Floats,
    Size,
    add_grain,
    fractal_noise,
    lerp,
    random_colour,
    shade,
    to_image,
)


def paint_noise(rng: np.random.Generator, size: Size) -> Image.Image:
    """Uniform, Gaussian or salt-and-pepper noise in grains of 1–4 px, or Perlin-like blobs."""
    style = int(rng.integers(0, 4))
    if style == 3:
        blobs = fractal_noise(rng, size, max(size) / rng.uniform(1.5, 6), 8, rng.uniform(0.6, 0.8))
        if rng.random() < 0.5:
            return to_image(lerp(random_colour(rng), random_colour(rng), blobs))
        levels = int(rng.integers(2, 6))  # contour bands, like a camouflage print
        palette = np.array([random_colour(rng) for _ in range(levels)], np.float32)
        return to_image(palette[np.minimum((blobs * levels).astype(np.intp), levels - 1)])
    grain = rng.uniform(1, 4)
    w, h = max(1, round(size[0] / grain)), max(1, round(size[1] / grain))
    chans = 3 if rng.random() < 0.6 else 1
    if style == 0:
        arr = rng.uniform(rng.uniform(0, 60), rng.uniform(190, 255), (h, w, chans))
    elif style == 1:
        arr = rng.normal(rng.uniform(80, 170), rng.uniform(20, 60), (h, w, chans))
    else:  # salt and pepper on a grey or coloured field
        arr = np.asarray(random_colour(rng, 60, 190), np.float32) + rng.normal(0, 6, (h, w, 1))
        u, p = rng.random((h, w)), rng.uniform(0.05, 0.3)
        arr[u < p / 2], arr[u > 1 - p / 2] = 0, 255
    resample = Image.Resampling.NEAREST if rng.random() < 0.5 else Image.Resampling.BILINEAR
    return to_image(arr).resize(size, resample)


def paint_blank(rng: np.random.Generator, size: Size) -> Image.Image:
    w, h = size
    style = int(rng.integers(0, 3))
    grey, white = int(rng.integers(90, 230)), int(rng.integers(225, 253))
    tints = [(grey, grey, grey), (white, white, white - 4), random_colour(rng, 30, 230)]
    base = tints[int(rng.integers(0, 3))]
    if style == 0:
        return Image.new("RGB", size, base)
    ys, xs = np.ogrid[0:h, 0:w]
    if style == 1:  # a linear gradient
        a = rng.uniform(0, 2 * math.pi)
        t = (xs / w - 0.5) * math.cos(a) + (ys / h - 0.5) * math.sin(a) + 0.5
    else:  # a vignette
        t = np.hypot(xs / w - 0.5, ys / h - 0.5) * 1.4
    return to_image(lerp(base, shade(base, rng.uniform(0.75, 0.95)), np.asarray(t, np.float32)))


def paint_texture(rng: np.random.Generator, size: Size) -> Image.Image:
    painter = [paint_wood, _checks, _brick, _marble, paint_stripes][int(rng.integers(0, 5))]
    return painter(rng, size)


def paint_wood(rng: np.random.Generator, size: Size) -> Image.Image:
    """Planks of grain lines that wander slowly along the board."""
    across = rng.random() < 0.5
    w, h = (size[1], size[0]) if across else size
    wander = fractal_noise(rng, (max(4, w // 10), h), h / 4, 5)  # stretched along the grain
    warp = np.asarray(Image.fromarray(wander, "F").resize((w, h), Image.Resampling.BILINEAR))
    ys = np.arange(h, dtype=np.float32)[:, None]
    plank = rng.uniform(0.15, 0.5) * h
    offset = rng.uniform(0, 20, size=int(h / plank) + 1).astype(np.float32)[(ys / plank).astype(np.intp)]
    rings = np.sin((ys / (rng.uniform(0.01, 0.04) * h) + warp * rng.uniform(1.5, 4) + offset) * 2 * np.pi)
    streaks = rng.standard_normal((h, max(2, w // 80))).astype(np.float32)
    streak = np.asarray(Image.fromarray(streaks, "F").resize((w, h), Image.Resampling.BILINEAR))
    t = 0.6 + 0.25 * rings**3 + 0.08 * streak + 0.1 * np.sin(offset)
    t = np.where((ys % plank) < max(2, h // 300), 0.05, t).astype(np.float32)
    dark = [(92, 56, 30), (120, 84, 52), (70, 48, 36), (150, 118, 80)][int(rng.integers(0, 4))]
    img = to_image(lerp(dark, shade(dark, rng.uniform(1.4, 1.8)), np.clip(t, 0, 1)))
    return img.transpose(Image.Transpose.ROTATE_90) if across else img


def _band_profile(rng: np.random.Generator, length: int, unit: float) -> Floats:
    """A repeating sequence of bands (0, 0.5 or 1) along one axis — a tartan or gingham sett."""
    widths = rng.integers(1, 6, size=int(rng.integers(2, 6))) * unit
    levels = rng.choice([0.0, 0.5, 1.0], size=len(widths))
    edges = np.cumsum(widths)
    pos = np.arange(length) % edges[-1]
    return np.asarray(levels[np.minimum(np.searchsorted(edges, pos, side="right"), len(widths) - 1)],
                      np.float32)


def _checks(rng: np.random.Generator, size: Size) -> Image.Image:
    w, h = size
    unit = rng.uniform(0.008, 0.03) * max(size)
    across, down = _band_profile(rng, w, unit), _band_profile(rng, h, unit)
    t = (across[None, :] + down[:, None]) / 2
    weave = ((np.arange(w)[None, :] + np.arange(h)[:, None]) % 4 < 2).astype(np.float32) * 0.06
    img = to_image(lerp(random_colour(rng, 180, 256), random_colour(rng, 10, 160), t + weave))
    return add_grain(img, rng, 3)


def _brick(rng: np.random.Generator, size: Size) -> Image.Image:
    w, h = size
    img = Image.new("RGB", size, random_colour(rng, 150, 200))
    draw = ImageDraw.Draw(img)
    bw = rng.uniform(0.1, 0.22) * w
    bh = bw * rng.uniform(0.3, 0.45)
    gap = max(2.0, bh * 0.1)
    base = [(150, 62, 45), (120, 70, 55), (170, 110, 80), (110, 105, 100)][int(rng.integers(0, 4))]
    for row in range(int(h / bh) + 2):
        x = -bw * (0.5 if row % 2 else rng.uniform(0, 0.2))
        while x < w:
            draw.rectangle((x + gap / 2, row * bh + gap / 2, x + bw - gap / 2, (row + 1) * bh - gap / 2),
                           fill=shade(base, rng.uniform(0.75, 1.2)))
            x += bw
    return add_grain(img, rng, 7)


def _marble(rng: np.random.Generator, size: Size) -> Image.Image:
    w, h = size
    turb = fractal_noise(rng, size, max(size) / 2, 6, 0.5)
    a, freq = rng.uniform(0, math.pi), rng.uniform(2, 5) * 2 * math.pi / max(size)
    ys, xs = np.ogrid[0:h, 0:w]
    phase = (xs * math.cos(a) + ys * math.sin(a)) * freq + turb * rng.uniform(5, 10)
    veins = np.abs(np.sin(phase)).astype(np.float32) ** np.float32(rng.uniform(0.15, 0.4))
    light = rng.random() < 0.7
    base = random_colour(rng, 200, 240) if light else random_colour(rng, 20, 60)
    vein = shade(base, 0.45) if light else shade(base, 3.5)
    return add_grain(to_image(lerp(vein, base, veins)), rng, 2)


def paint_stripes(rng: np.random.Generator, size: Size) -> Image.Image:
    w, h = size
    n = int(rng.integers(2, 6))
    palette = np.array([random_colour(rng) for _ in range(n)], np.float32)
    edges = np.cumsum(rng.uniform(0.01, 0.08, size=n) * max(size))
    a = rng.uniform(0, math.pi)
    ys, xs = np.ogrid[0:h, 0:w]
    u = (xs * math.cos(a) + ys * math.sin(a)) % edges[-1]
    idx = np.minimum(np.searchsorted(edges, u, side="right"), n - 1)
    return add_grain(to_image(palette[idx]), rng, 3)


def paint_surface(rng: np.random.Generator, size: Size) -> Image.Image:
    """What an object lies on: a table, a cloth, a desk."""
    pick = rng.random()
    if pick < 0.3:
        return paint_wood(rng, size)
    if pick < 0.45:
        return _marble(rng, size)
    if pick < 0.55:
        return _checks(rng, size)
    return add_grain(Image.new("RGB", size, random_colour(rng, 40, 230)), rng, rng.uniform(2, 6))
