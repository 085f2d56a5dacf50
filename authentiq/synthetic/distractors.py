"""Out-of-distribution submissions: things that are not a product, or a product submitted wrongly.

``make_distractor(seed, kind)`` returns one submission claiming a catalogue product. Its photos are
noise, a blank frame, a printed page, a texture, an everyday object or crops of one scene
(``expected = "not_a_product"``), or a genuine synthetic item's own photos in the wrong slots
(``"wrong_view"``) or repeated (``"duplicate_view"``). ``authentiq evaluate --ood`` measures whether
the service abstains on them. Every photo is phone-sized (640–1600 px on the long side) with camera
nuisances (light falloff, blur, sensor noise, JPEG or PNG); all but the blank frames are meant to
pass a plain quality check. Everything is deterministic from the seed.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter

from authentiq.synthetic import CATALOG, VIEWS, make_item
from authentiq.synthetic.render import font

DISTRACTOR_KINDS: tuple[str, ...] = ("noise", "blank", "document", "texture", "object", "scene_crops",
                                     "swapped_views", "duplicated_views")
_EXPECTED = {"swapped_views": "wrong_view", "duplicated_views": "duplicate_view"}

Size = tuple[int, int]
Rgb = tuple[int, int, int]
Floats = npt.NDArray[np.float32]
Painter = Callable[[np.random.Generator, Size], Image.Image]


@dataclass(frozen=True)
class Distractor:
    seed: int
    kind: str
    brand: str  # the claimed product
    model: str
    views: dict[str, bytes] = field(repr=False)  # view name -> encoded photo
    expected: str  # what a perfect gate answers: "not_a_product" | "wrong_view" | "duplicate_view"


def make_distractor(seed: int, kind: str, views: tuple[str, ...] = VIEWS) -> Distractor:
    """One out-of-distribution submission of ``kind`` with a photo for each of ``views``."""
    if kind not in DISTRACTOR_KINDS:
        raise ValueError(f"unknown distractor kind {kind!r}; known kinds: {', '.join(DISTRACTOR_KINDS)}")
    unknown = sorted(set(views) - set(VIEWS))
    if not views or unknown or len(set(views)) != len(views):
        raise ValueError(f"views must be distinct names from {VIEWS}; got {views}")
    rng = np.random.default_rng([seed, DISTRACTOR_KINDS.index(kind)])
    if kind in _EXPECTED:
        if len(views) < 2:
            raise ValueError(f"{kind} needs at least two views; got {views}")
        item = make_item(seed, counterfeit=False, views=views)
        order = _derangement(rng, views) if kind == "swapped_views" else _duplicates(rng, views)
        photos = {slot: item.views[source] for slot, source in zip(views, order, strict=True)}
        return Distractor(seed, kind, item.brand, item.model, photos, _EXPECTED[kind])
    product = CATALOG[int(rng.integers(0, len(CATALOG)))]
    if kind == "scene_crops":
        photos = _scene_crops(rng, views)
    else:
        paint = _PAINTERS[kind]
        photos = {}
        for view in views:
            img = paint(rng, _frame_size(rng))
            noise = None if kind != "blank" or rng.random() < 0.5 else 0.0
            photos[view] = _photograph(img, rng, noise=noise)
    return Distractor(seed, kind, product.brand, product.model, photos, "not_a_product")


def distractors(n: int, first_seed: int, kinds: tuple[str, ...] = DISTRACTOR_KINDS) -> Iterator[Distractor]:
    """``n`` distractors with seeds ``first_seed``.. ``first_seed + n - 1``, cycling through ``kinds``."""
    unknown = [k for k in kinds if k not in DISTRACTOR_KINDS]
    if not kinds or unknown or n < 0:
        raise ValueError(f"need n >= 0 and kinds from {', '.join(DISTRACTOR_KINDS)}; got n={n}, "
                         f"kinds={kinds}")
    return (make_distractor(first_seed + i, kinds[i % len(kinds)]) for i in range(n))


def _derangement(rng: np.random.Generator, views: tuple[str, ...]) -> list[str]:
    """A shuffle of ``views`` that leaves none in place (about e tries on average)."""
    while True:
        order = [views[int(i)] for i in rng.permutation(len(views))]
        if all(a != b for a, b in zip(order, views, strict=True)):
            return order


def _duplicates(rng: np.random.Generator, views: tuple[str, ...]) -> list[str]:
    """One view's photo in every slot, or in 2–3 slots with the others left correct."""
    source = views[int(rng.integers(0, len(views)))]
    if rng.random() < 0.5:
        return [source] * len(views)
    others = [v for v in views if v != source]
    extra = min(len(others), int(rng.integers(1, 3)))
    copied = {others[int(i)] for i in rng.choice(len(others), size=extra, replace=False)}
    return [source if v in copied else v for v in views]


# --- the camera -------------------------------------------------------------------------------


def _frame_size(rng: np.random.Generator) -> Size:
    """640–1600 px on the long side; landscape 4:3, portrait 3:4 or square."""
    long = int(rng.integers(640, 1601))
    shape = int(rng.integers(0, 3))
    short = long if shape == 2 else round(long * 3 / 4)
    return (short, long) if shape == 1 else (long, short)


def _photograph(img: Image.Image, rng: np.random.Generator, *, noise: float | None = None) -> bytes:
    """A little blur, uneven light, sensor noise (``noise`` sigma, random if None), JPEG or PNG."""
    radius = rng.uniform(0.0, 1.2)
    if radius > 0.3:  # a box is as good a defocus kernel as a Gaussian, and cheaper
        img = img.filter(ImageFilter.BoxBlur(radius))
    w, h = img.size
    theta = rng.uniform(0, 2 * math.pi)
    ramp = (np.arange(w, dtype=np.float32)[None, :] / w - 0.5) * math.cos(theta) + (
        np.arange(h, dtype=np.float32)[:, None] / h - 0.5) * math.sin(theta)
    gain = rng.uniform(0.88, 1.06) + ramp * rng.uniform(0.0, 0.25)
    tint = 1 + rng.uniform(-0.03, 0.03, size=3).astype(np.float32)
    arr = np.array(img, dtype=np.float32)
    arr *= gain[:, :, None] * tint
    sigma = rng.uniform(0.5, 5.0) if noise is None else noise
    if sigma > 0:  # mostly luminance noise, as a phone's processing leaves it
        arr += rng.standard_normal((h, w, 1), dtype=np.float32) * np.float32(sigma)
    img = _image(arr)
    buf = io.BytesIO()
    if rng.random() < 0.1:  # a screenshot or an edited photo
        img.save(buf, "PNG", compress_level=1)
    else:
        img.save(buf, "JPEG", quality=int(rng.integers(60, 96)))
    return buf.getvalue()


# --- drawing helpers --------------------------------------------------------------------------


def _image(arr: npt.NDArray[Any]) -> Image.Image:
    """An (h, w), (h, w, 1) or (h, w, 3) array of levels, clipped to 0..255, as an RGB image."""
    grey = arr.ndim == 2 or arr.shape[2] == 1
    levels = np.clip(arr, 0, 255).astype(np.uint8).reshape(arr.shape[0], arr.shape[1], -1)
    return Image.fromarray(levels[:, :, 0], "L").convert("RGB") if grey else Image.fromarray(levels, "RGB")


def _colour(rng: np.random.Generator, lo: int = 0, hi: int = 256) -> Rgb:
    r, g, b = (int(c) for c in rng.integers(lo, hi, size=3))
    return (r, g, b)


def _green(rng: np.random.Generator) -> Rgb:
    return (int(rng.integers(20, 80)), int(rng.integers(70, 140)), int(rng.integers(20, 70)))


def _shade(rgb: Rgb, k: float) -> Rgb:
    return (min(255, int(rgb[0] * k)), min(255, int(rgb[1] * k)), min(255, int(rgb[2] * k)))


def _lerp(a: Rgb, b: Rgb, t: Floats) -> Floats:
    """Per-pixel blend from colour ``a`` (t=0) to ``b`` (t=1): (h, w) -> (h, w, 3)."""
    out = t[:, :, None] * (np.asarray(b, np.float32) - np.asarray(a, np.float32))
    out += np.asarray(a, np.float32)
    return out


def _fractal(rng: np.random.Generator, size: Size, cell: float, octaves: int,
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


def _grain(img: Image.Image, rng: np.random.Generator, amount: float) -> Image.Image:
    """Blotchy brightness variation, as on a real surface (the camera adds the fine noise)."""
    blotch = (_fractal(rng, img.size, max(img.size) / 4, 4) - 0.5) * np.float32(amount * 3)
    return _image(np.asarray(img, np.float32) + blotch[:, :, None])


def _place(canvas: Image.Image, fg: Image.Image, rng: np.random.Generator, tilt: float) -> Image.Image:
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
    out = _shadow(canvas, [(x + off, y + off) for x, y in dst], int(rng.integers(60, 140))).convert("RGBA")
    warped = fg.convert("RGBA").transform((w, h), Image.Transform.PERSPECTIVE, _homography(dst, src),
                                          Image.Resampling.BILINEAR, fillcolor=(0, 0, 0, 0))
    return Image.alpha_composite(out, warped).convert("RGB")


def _shadow(canvas: Image.Image, shape: list[tuple[float, float]] | tuple[float, float, float, float],
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


def _rounded_layer(img: Image.Image, radius: float) -> Image.Image:
    mask = Image.new("L", img.size, 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, img.width - 1, img.height - 1), radius=radius, fill=255)
    out = img.convert("RGBA")
    out.putalpha(mask)
    return out


# --- noise and blank frames -------------------------------------------------------------------


def _noise(rng: np.random.Generator, size: Size) -> Image.Image:
    """Uniform, Gaussian or salt-and-pepper noise in grains of 1–4 px, or Perlin-like blobs."""
    style = int(rng.integers(0, 4))
    if style == 3:
        blobs = _fractal(rng, size, max(size) / rng.uniform(1.5, 6), 8, rng.uniform(0.6, 0.8))
        if rng.random() < 0.5:
            return _image(_lerp(_colour(rng), _colour(rng), blobs))
        levels = int(rng.integers(2, 6))  # contour bands, like a camouflage print
        palette = np.array([_colour(rng) for _ in range(levels)], np.float32)
        return _image(palette[np.minimum((blobs * levels).astype(np.intp), levels - 1)])
    grain = rng.uniform(1, 4)
    w, h = max(1, round(size[0] / grain)), max(1, round(size[1] / grain))
    chans = 3 if rng.random() < 0.6 else 1
    if style == 0:
        arr = rng.uniform(rng.uniform(0, 60), rng.uniform(190, 255), (h, w, chans))
    elif style == 1:
        arr = rng.normal(rng.uniform(80, 170), rng.uniform(20, 60), (h, w, chans))
    else:  # salt and pepper on a grey or coloured field
        arr = np.asarray(_colour(rng, 60, 190), np.float32) + rng.normal(0, 6, (h, w, 1))
        u, p = rng.random((h, w)), rng.uniform(0.05, 0.3)
        arr[u < p / 2], arr[u > 1 - p / 2] = 0, 255
    resample = Image.Resampling.NEAREST if rng.random() < 0.5 else Image.Resampling.BILINEAR
    return _image(arr).resize(size, resample)


def _blank(rng: np.random.Generator, size: Size) -> Image.Image:
    w, h = size
    style = int(rng.integers(0, 3))
    grey, white = int(rng.integers(90, 230)), int(rng.integers(225, 253))
    base = [(grey, grey, grey), (white, white, white - 4), _colour(rng, 30, 230)][int(rng.integers(0, 3))]
    if style == 0:
        return Image.new("RGB", size, base)
    ys, xs = np.ogrid[0:h, 0:w]
    if style == 1:  # a linear gradient
        a = rng.uniform(0, 2 * math.pi)
        t = (xs / w - 0.5) * math.cos(a) + (ys / h - 0.5) * math.sin(a) + 0.5
    else:  # a vignette
        t = np.hypot(xs / w - 0.5, ys / h - 0.5) * 1.4
    return _image(_lerp(base, _shade(base, rng.uniform(0.75, 0.95)), np.asarray(t, np.float32)))


# --- textures ---------------------------------------------------------------------------------


def _texture(rng: np.random.Generator, size: Size) -> Image.Image:
    painter = [_wood, _checks, _brick, _marble, _stripes][int(rng.integers(0, 5))]
    return painter(rng, size)


def _wood(rng: np.random.Generator, size: Size) -> Image.Image:
    """Planks of grain lines that wander slowly along the board."""
    across = rng.random() < 0.5
    w, h = (size[1], size[0]) if across else size
    wander = _fractal(rng, (max(4, w // 10), h), h / 4, 5)  # stretched along the grain
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
    img = _image(_lerp(dark, _shade(dark, rng.uniform(1.4, 1.8)), np.clip(t, 0, 1)))
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
    img = _image(_lerp(_colour(rng, 180, 256), _colour(rng, 10, 160), t + weave))
    return _grain(img, rng, 3)


def _brick(rng: np.random.Generator, size: Size) -> Image.Image:
    w, h = size
    img = Image.new("RGB", size, _colour(rng, 150, 200))
    draw = ImageDraw.Draw(img)
    bw = rng.uniform(0.1, 0.22) * w
    bh = bw * rng.uniform(0.3, 0.45)
    gap = max(2.0, bh * 0.1)
    base = [(150, 62, 45), (120, 70, 55), (170, 110, 80), (110, 105, 100)][int(rng.integers(0, 4))]
    for row in range(int(h / bh) + 2):
        x = -bw * (0.5 if row % 2 else rng.uniform(0, 0.2))
        while x < w:
            draw.rectangle((x + gap / 2, row * bh + gap / 2, x + bw - gap / 2, (row + 1) * bh - gap / 2),
                           fill=_shade(base, rng.uniform(0.75, 1.2)))
            x += bw
    return _grain(img, rng, 7)


def _marble(rng: np.random.Generator, size: Size) -> Image.Image:
    w, h = size
    turb = _fractal(rng, size, max(size) / 2, 6, 0.5)
    a, freq = rng.uniform(0, math.pi), rng.uniform(2, 5) * 2 * math.pi / max(size)
    ys, xs = np.ogrid[0:h, 0:w]
    phase = (xs * math.cos(a) + ys * math.sin(a)) * freq + turb * rng.uniform(5, 10)
    veins = np.abs(np.sin(phase)).astype(np.float32) ** np.float32(rng.uniform(0.15, 0.4))
    light = rng.random() < 0.7
    base = _colour(rng, 200, 240) if light else _colour(rng, 20, 60)
    vein = _shade(base, 0.45) if light else _shade(base, 3.5)
    return _grain(_image(_lerp(vein, base, veins)), rng, 2)


def _stripes(rng: np.random.Generator, size: Size) -> Image.Image:
    w, h = size
    n = int(rng.integers(2, 6))
    palette = np.array([_colour(rng) for _ in range(n)], np.float32)
    edges = np.cumsum(rng.uniform(0.01, 0.08, size=n) * max(size))
    a = rng.uniform(0, math.pi)
    ys, xs = np.ogrid[0:h, 0:w]
    u = (xs * math.cos(a) + ys * math.sin(a)) % edges[-1]
    idx = np.minimum(np.searchsorted(edges, u, side="right"), n - 1)
    return _grain(_image(palette[idx]), rng, 3)


def _surface(rng: np.random.Generator, size: Size) -> Image.Image:
    """What an object lies on: a table, a cloth, a desk."""
    pick = rng.random()
    if pick < 0.3:
        return _wood(rng, size)
    if pick < 0.45:
        return _marble(rng, size)
    if pick < 0.55:
        return _checks(rng, size)
    return _grain(Image.new("RGB", size, _colour(rng, 40, 230)), rng, rng.uniform(2, 6))


# --- documents --------------------------------------------------------------------------------

_SYLLABLES = ("an", "be", "con", "de", "ex", "for", "gen", "in", "la", "men", "ne", "or", "per", "qua",
              "re", "sub", "ta", "tion", "ul", "ver", "al", "ing", "com", "pro", "ment", "ty", "st")


def _word(rng: np.random.Generator) -> str:
    picks = rng.integers(0, len(_SYLLABLES), size=int(rng.integers(1, 4)))
    return "".join(_SYLLABLES[int(i)] for i in picks)


def _document(rng: np.random.Generator, size: Size) -> Image.Image:
    ph = int(min(size) * rng.uniform(0.95, 1.45))
    page = _page(rng, (int(ph / 1.414), ph))
    return _place(_surface(rng, size), page, rng, tilt=14)


def _page(rng: np.random.Generator, size: Size) -> Image.Image:
    """A printed page: a title or a header bar, paragraphs of words, maybe a table, a page number."""
    pw, ph = size
    tone = int(rng.integers(205, 238))
    page = Image.new("RGB", size, (tone, tone, tone - int(rng.integers(0, 12))))
    draw = ImageDraw.Draw(page)
    margin = pw * rng.uniform(0.07, 0.12)
    body = max(9, int(pw * rng.uniform(0.018, 0.03)))
    ink = _colour(rng, 10, 60)
    title = " ".join(_word(rng).capitalize() for _ in range(int(rng.integers(2, 5))))
    y = margin
    if rng.random() < 0.5:
        bar = _colour(rng, 20, 170)
        draw.rectangle((0, y * 0.5, pw, y * 0.5 + body * 3.2), fill=bar)
        draw.text((margin, y * 0.5 + body * 0.8), title, font=font(int(body * 1.6)), fill=(250, 250, 250))
        y += body * 3.5
    else:
        draw.text((margin, y), title, font=font(int(body * 1.9)), fill=ink, stroke_width=1, stroke_fill=ink)
        y += body * 3.2
    text_font, table_done = font(body), False
    while y < ph - margin - body * 3:
        if not table_done and rng.random() < 0.25:
            y, table_done = _table(draw, rng, margin, y, pw - 2 * margin, body, ink), True
        for i in range(int(rng.integers(2, 8))):
            if y > ph - margin - body * 3:
                break
            width = (pw - 2 * margin) * (rng.uniform(0.3, 0.9) if i and rng.random() < 0.2 else 1.0)
            line = _word(rng).capitalize() if i == 0 else _word(rng)
            length, word = text_font.getlength(line), " " + _word(rng)
            while length + text_font.getlength(word) <= width:
                line, length, word = line + word, length + text_font.getlength(word), " " + _word(rng)
            draw.text((margin, y), line, font=text_font, fill=ink)
            y += body * 1.55
        y += body * 1.2
    draw.text((pw / 2, ph - margin * 0.6), str(int(rng.integers(1, 40))), font=text_font, fill=ink)
    return page


def _table(draw: ImageDraw.ImageDraw, rng: np.random.Generator, x0: float, y0: float, width: float,
           body: int, ink: Rgb) -> float:
    """Draw a ruled table with a shaded header row; return the y below it."""
    rows, cols = int(rng.integers(3, 8)), int(rng.integers(2, 6))
    rh, cw = body * 1.8, width / cols
    draw.rectangle((x0, y0, x0 + width, y0 + rh), fill=_colour(rng, 180, 225))
    cell_font = font(max(8, int(body * 0.9)))
    for r in range(rows):
        for c in range(cols):
            text = _word(rng) if c == 0 or r == 0 else f"{rng.uniform(0, 999):.2f}"
            draw.text((x0 + c * cw + body * 0.4, y0 + r * rh + body * 0.4), text[:12], font=cell_font,
                      fill=ink)
    for r in range(rows + 1):
        draw.line((x0, y0 + r * rh, x0 + width, y0 + r * rh), fill=ink, width=1)
    for c in range(cols + 1):
        draw.line((x0 + c * cw, y0, x0 + c * cw, y0 + rows * rh), fill=ink, width=1)
    return y0 + rows * rh + body * 1.5


# --- everyday objects -------------------------------------------------------------------------


def _object(rng: np.random.Generator, size: Size) -> Image.Image:
    painter = [_circuit_board, _mug, _phone, _fruit, _keyboard][int(rng.integers(0, 5))]
    return painter(rng, size)


def _circuit_board(rng: np.random.Generator, size: Size) -> Image.Image:
    bw = int(min(size) * rng.uniform(0.9, 1.4))
    bh = int(bw * rng.uniform(0.55, 0.8))
    boards = [(24, 104, 52), (18, 84, 44), (30, 60, 120), (28, 28, 30)]
    colour = boards[int(rng.choice(4, p=[0.5, 0.2, 0.15, 0.15]))]
    board = _grain(Image.new("RGB", (bw, bh), colour), rng, 4)
    draw, u = ImageDraw.Draw(board), bw / 100
    trace, metal, parts = _shade(colour, 1.6), (196, 190, 170), [(210, 190, 150), (30, 30, 30), (140, 90, 60)]
    for _ in range(int(rng.integers(25, 60))):  # traces: right-angled runs ending in vias
        x, y = rng.uniform(0, bw), rng.uniform(0, bh)
        points = [(x, y)]
        for step in range(int(rng.integers(2, 5))):
            x, y = (rng.uniform(0, bw), y) if step % 2 else (x, rng.uniform(0, bh))
            points.append((x, y))
        draw.line(points, fill=trace, width=max(1, int(u * rng.uniform(0.3, 0.9))), joint="curve")
        draw.ellipse((x - u, y - u, x + u, y + u), fill=metal)
    for n in range(int(rng.integers(2, 6))):  # chips with pins
        cw, ch = u * rng.uniform(8, 24), u * rng.uniform(6, 16)
        x, y = rng.uniform(2 * u, bw - cw - 2 * u), rng.uniform(2 * u, bh - ch - 2 * u)
        for k in range(max(2, int(cw / (2 * u)))):
            px = x + (k + 0.5) * cw / max(2, int(cw / (2 * u))) - u * 0.4
            draw.rectangle((px, y - u * 1.2, px + u * 0.8, y + ch + u * 1.2), fill=metal)
        draw.rectangle((x, y, x + cw, y + ch), fill=(26, 26, 30))
        draw.ellipse((x + u, y + u, x + 2 * u, y + 2 * u), fill=(60, 60, 64))
        draw.text((x + u * 2, y + ch / 2 - u * 1.2), f"U{n + 1}", font=font(max(8, int(u * 2.4))),
                  fill=(225, 225, 225))
    for n in range(int(rng.integers(10, 30))):  # resistors and capacitors with a silkscreen label
        x, y = rng.uniform(2 * u, bw - 6 * u), rng.uniform(2 * u, bh - 4 * u)
        draw.rectangle((x, y, x + 3.2 * u, y + 1.6 * u), fill=parts[n % 3])
        draw.rectangle((x, y, x + 0.6 * u, y + 1.6 * u), fill=metal)
        draw.rectangle((x + 2.6 * u, y, x + 3.2 * u, y + 1.6 * u), fill=metal)
        if rng.random() < 0.4:
            draw.text((x, y + 2 * u), f"{'RC'[n % 2]}{n + 1}", font=font(max(8, int(u * 1.6))),
                      fill=(235, 235, 230))
    for x, y in ((3 * u, 3 * u), (bw - 3 * u, 3 * u), (3 * u, bh - 3 * u), (bw - 3 * u, bh - 3 * u)):
        draw.ellipse((x - 2 * u, y - 2 * u, x + 2 * u, y + 2 * u), fill=metal)
        draw.ellipse((x - u, y - u, x + u, y + u), fill=(20, 20, 20))
    return _place(_surface(rng, size), _rounded_layer(board, 2 * u), rng, tilt=20)


def _cylinder(width: int, height: int, colour: Rgb, highlight: float) -> Image.Image:
    """A vertical cylinder's side, lit from the left: darker at the rims, a specular stripe."""
    x = np.linspace(-1, 1, width, dtype=np.float32)
    prof = 0.45 + 0.55 * np.sqrt(1 - x * x) + 0.5 * np.exp(-((x - highlight) / 0.08) ** 2)
    arr = np.asarray(colour, np.float32)[None, None, :] * prof[None, :, None] + 40 * np.exp(
        -((x - highlight) / 0.06) ** 2)[None, :, None]
    return _image(np.broadcast_to(arr, (height, width, 3)))


def _mug(rng: np.random.Generator, size: Size) -> Image.Image:
    img = _surface(rng, size)
    w, h = size
    mw = int(min(size) * rng.uniform(0.35, 0.55))
    mh, e = int(mw * rng.uniform(0.9, 1.25)), mw * 0.14
    x0 = w / 2 - mw / 2 + rng.uniform(-0.08, 0.05) * w
    y0 = h / 2 - mh / 2 + rng.uniform(-0.05, 0.08) * h
    colour = _colour(rng, 30, 240)
    img = _shadow(img, (x0 - mw * 0.05, y0 + mh - e * 1.5, x0 + mw * 1.4, y0 + mh + e * 1.6), 150)
    draw = ImageDraw.Draw(img)
    draw.ellipse((x0 + mw * 0.8, y0 + mh * 0.15, x0 + mw * 1.3, y0 + mh * 0.7), outline=_shade(colour, 0.8),
                 width=max(4, int(mw * 0.09)))
    mask = Image.new("L", (mw, mh + int(e)), 0)
    ImageDraw.Draw(mask).rectangle((0, 0, mw, mh - e), fill=255)
    ImageDraw.Draw(mask).ellipse((0, mh - 2 * e, mw - 1, mh), fill=255)
    img.paste(_cylinder(mw, mh + int(e), colour, rng.uniform(-0.6, -0.3)), (int(x0), int(y0)), mask)
    draw.ellipse((x0, y0 - e, x0 + mw, y0 + e), fill=_shade(colour, 1.15))
    inside = (60, 38, 24) if rng.random() < 0.5 else _shade(colour, 0.55)
    draw.ellipse((x0 + mw * 0.05, y0 - e * 0.8, x0 + mw * 0.95, y0 + e * 0.8), fill=inside)
    if rng.random() < 0.6:
        text = _word(rng).upper()
        ink = (250, 250, 250) if sum(colour) < 380 else (20, 20, 20)
        draw.text((x0 + mw * 0.15, y0 + mh * 0.4), text[:8], font=font(max(10, int(mw * 0.12))), fill=ink)
    return img


def _phone(rng: np.random.Generator, size: Size) -> Image.Image:
    ph = int(min(size) * rng.uniform(0.8, 1.2))
    pw = int(ph * rng.uniform(0.46, 0.52))
    body = _colour(rng, 15, 60) if rng.random() < 0.6 else _colour(rng, 170, 230)
    phone = Image.new("RGB", (pw, ph), body)
    b = pw * 0.045
    sw, sh = int(pw - 2 * b), int(ph - 2 * b)
    ys = np.linspace(0, 1, sh, dtype=np.float32)[:, None] * np.ones((1, sw), np.float32)
    screen = _image(_lerp(_colour(rng), _colour(rng), ys * 0.7 + _fractal(rng, (sw, sh), sw / 2, 3) * 0.3))
    draw, white = ImageDraw.Draw(screen), (248, 248, 248)
    icon, gap = sw * 0.16, sw * 0.072
    small = font(max(8, int(icon * 0.2)))
    for r in range(int(rng.integers(3, 6))):
        for c in range(4):
            x, y = gap + c * (icon + gap), sh * 0.08 + r * (icon + gap * 1.6)
            draw.rounded_rectangle((x, y, x + icon, y + icon), radius=icon * 0.22, fill=_colour(rng, 30, 250))
            draw.text((x, y + icon + gap * 0.2), _word(rng)[:6], font=small, fill=white)
    clock = f"{rng.integers(1, 13)}:{rng.integers(0, 60):02d}"
    draw.text((gap, sh * 0.015), clock, font=font(max(8, int(sw * 0.05))), fill=white)
    draw.rounded_rectangle((gap, sh - icon * 1.5, sw - gap, sh - icon * 0.2), radius=icon * 0.3,
                           fill=(200, 200, 210))
    phone.paste(_rounded_layer(screen, pw * 0.08), (int(b), int(b)), _rounded_layer(screen, pw * 0.08))
    ImageDraw.Draw(phone).ellipse((pw / 2 - b / 2, b * 1.3, pw / 2 + b / 2, b * 2.3), fill=(10, 10, 10))
    return _place(_surface(rng, size), _rounded_layer(phone, pw * 0.12), rng, tilt=25)


def _fruit(rng: np.random.Generator, size: Size) -> Image.Image:
    img = _surface(rng, size)
    w, h = size
    s = min(size)
    kinds = [((190, 30, 30), 1.0), ((120, 180, 50), 1.0), ((240, 140, 20), 1.0), ((235, 210, 60), 0.8),
             ((90, 30, 80), 0.95)]
    items = sorted((rng.uniform(0.25, 0.75) * h, rng.uniform(0.2, 0.8) * w, int(rng.integers(0, 5)),
                    rng.uniform(0.12, 0.24) * s) for _ in range(int(rng.integers(1, 6))))
    for cy, cx, k, r in items:
        colour, squash = kinds[k]
        rx, ry = int(r), int(r * squash)
        yy, xx = np.ogrid[-ry:ry, -rx:rx]
        d = np.hypot((xx / rx + 0.35), (yy / ry + 0.35)).astype(np.float32)
        lit = 1.25 - 0.55 * d + 0.6 * np.exp(-(d / 0.18) ** 2)
        arr = np.asarray(colour, np.float32)[None, None, :] * lit[:, :, None]
        ball = _grain(_image(arr), rng, 4)
        mask = Image.new("L", (2 * rx, 2 * ry), 0)
        ImageDraw.Draw(mask).ellipse((0, 0, 2 * rx - 1, 2 * ry - 1), fill=255)
        img = _shadow(img, (cx - rx * 0.8, cy + ry * 0.2, cx + rx * 1.3, cy + ry * 1.2), 150)
        img.paste(ball, (int(cx - rx), int(cy - ry)), mask)
        draw = ImageDraw.Draw(img)
        if k in (0, 1, 4):  # a stem and a leaf
            draw.line((cx, cy - ry * 0.8, cx + r * 0.1, cy - ry * 1.15), fill=(80, 55, 30),
                      width=max(3, int(r * 0.06)))
            draw.ellipse((cx + r * 0.1, cy - ry * 1.2, cx + r * 0.55, cy - ry * 1.0), fill=(50, 120, 40))
    return img


def _keyboard(rng: np.random.Generator, size: Size) -> Image.Image:
    kw = int(min(size) * rng.uniform(1.1, 1.7))
    key = kw / 13.5
    kh = int(key * 5.6)
    dark = rng.random() < 0.6
    base, cap = ((30, 30, 34), _colour(rng, 45, 75)) if dark else ((200, 200, 205), _colour(rng, 225, 250))
    board = Image.new("RGB", (kw, kh), base)
    draw, label = ImageDraw.Draw(board), font(max(8, int(key * 0.34)))
    ink = (235, 235, 235) if dark else (40, 40, 40)
    rows = ["1234567890-=", "QWERTYUIOP[]", "ASDFGHJKL;'", "ZXCVBNM,./"]
    for r, keys in enumerate([*rows, " "]):
        x = key * (0.3 + 0.25 * r)
        y = key * (0.25 + r * 1.05)
        for ch in keys:
            kwid = key * (6 if ch == " " else 1) - key * 0.12
            x += key * 3.5 if ch == " " else 0
            round_ = key * 0.12
            draw.rounded_rectangle((x, y + key * 0.06, x + kwid, y + key * 0.94), radius=round_,
                                   fill=_shade(cap, 0.7))
            draw.rounded_rectangle((x + key * 0.06, y, x + kwid - key * 0.06, y + key * 0.82), radius=round_,
                                   fill=cap)
            draw.text((x + key * 0.22, y + key * 0.14), ch, font=label, fill=ink)
            x += key
    return _place(_surface(rng, size), _grain(board, rng, 2), rng, tilt=18)


# --- one scene, six crops ---------------------------------------------------------------------


def _scene_crops(rng: np.random.Generator, views: tuple[str, ...]) -> dict[str, bytes]:
    scene = _landscape(rng) if rng.random() < 0.5 else _room(rng)
    sw, sh = scene.size
    photos = {}
    for view in views:
        w, h = _frame_size(rng)
        cw = sw * rng.uniform(0.3, 0.6)
        ch = cw * h / w
        if ch > sh * 0.9:
            cw, ch = cw * sh * 0.9 / ch, sh * 0.9
        x0, y0 = rng.uniform(0, sw - cw), rng.uniform(0.3, 1.0) * (sh - ch)  # mostly below the sky
        crop = scene.resize((w, h), Image.Resampling.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))
        photos[view] = _photograph(crop, rng)
    return photos


def _sky(rng: np.random.Generator, size: Size) -> Image.Image:
    day, dusk = ((60, 110, 190), (200, 220, 240)), ((40, 50, 110), (240, 150, 90))
    top, horizon = day if rng.random() < 0.7 else dusk
    t = np.linspace(0, 1, size[1], dtype=np.float32)[:, None] * np.ones((1, size[0]), np.float32)
    return _image(_lerp(top, horizon, t))


def _landscape(rng: np.random.Generator) -> Image.Image:
    w, h = 2400, 1600
    img = _sky(rng, (w, h))
    draw = ImageDraw.Draw(img)
    clouds = Image.new("L", (w, h), 0)
    for _ in range(int(rng.integers(2, 9))):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h * 0.35), rng.uniform(60, 220)
        ImageDraw.Draw(clouds).ellipse((cx - r * 2, cy - r / 2, cx + r * 2, cy + r / 2), fill=200)
    img.paste((245, 245, 248), (0, 0), clouds.filter(ImageFilter.GaussianBlur(40)))
    horizon = h * rng.uniform(0.4, 0.55)
    for layer in range(3):  # ridges, nearer ones darker
        xs = np.linspace(0, w, 60).tolist()
        ridge = horizon - np.abs(np.cumsum(rng.normal(0, 30, 60))) - rng.uniform(50, 250) / (layer + 1)
        colour = _shade((110, 120, 150), 1 - 0.22 * layer)
        draw.polygon([(0, h), *zip(xs, ridge.tolist(), strict=True), (w, h)], fill=colour)
    field_colour = _green(rng) if rng.random() < 0.7 else (int(rng.integers(110, 170)), 110, 70)
    ground = _grain(Image.new("RGB", (w, int(h - horizon)), _shade(field_colour, 1.2)), rng, 10)
    img.paste(ground, (0, int(horizon)))
    for _ in range(int(rng.integers(15, 45))):  # trees, larger when nearer
        y = rng.uniform(horizon, h)
        x, s = rng.uniform(0, w), 30 + 220 * (y - horizon) / (h - horizon)
        draw.rectangle((x - s * 0.06, y - s * 0.5, x + s * 0.06, y), fill=(70, 50, 30))
        green = _shade(_green(rng), 0.8)
        if rng.random() < 0.5:  # a conifer
            draw.polygon([(x, y - s * 1.6), (x - s * 0.4, y - s * 0.35), (x + s * 0.4, y - s * 0.35)],
                         fill=green)
        else:
            draw.ellipse((x - s * 0.45, y - s * 1.3, x + s * 0.45, y - s * 0.4), fill=green)
    for _ in range(int(rng.integers(0, 3))):  # a house
        x, y, s = rng.uniform(100, w - 300), rng.uniform(horizon + 50, h - 100), rng.uniform(120, 260)
        draw.rectangle((x, y - s * 0.7, x + s, y), fill=_colour(rng, 150, 240))
        draw.polygon([(x - s * 0.1, y - s * 0.7), (x + s * 0.5, y - s * 1.1), (x + s * 1.1, y - s * 0.7)],
                     fill=(120, 50, 40))
        draw.rectangle((x + s * 0.42, y - s * 0.4, x + s * 0.58, y), fill=(70, 45, 30))
    return _grain(img, rng, 3)


def _room(rng: np.random.Generator) -> Image.Image:
    w, h = 2400, 1600
    floor_y = int(h * rng.uniform(0.6, 0.72))
    img = _grain(Image.new("RGB", (w, h), _colour(rng, 150, 235)), rng, 3)
    img.paste(_wood(rng, (w, h - floor_y)), (0, floor_y))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, floor_y - 25, w, floor_y), fill=(235, 235, 230))
    wx = rng.uniform(100, w - 700)
    img.paste(_sky(rng, (500, 600)), (int(wx), int(floor_y * 0.15)))
    draw.rectangle((wx, floor_y * 0.15, wx + 500, floor_y * 0.15 + 600), outline=(245, 245, 245), width=24)
    draw.line((wx + 250, floor_y * 0.15, wx + 250, floor_y * 0.15 + 600), fill=(245, 245, 245), width=16)
    for _ in range(int(rng.integers(1, 4))):  # pictures
        x, y, s = rng.uniform(50, w - 400), rng.uniform(80, floor_y * 0.5), rng.uniform(180, 360)
        draw.rectangle((x, y, x + s, y + s * 0.75), fill=(40, 30, 20))
        art = _stripes(rng, (int(s - 30), int(s * 0.75 - 30))) if rng.random() < 0.5 else _noise(
            rng, (int(s - 30), int(s * 0.75 - 30)))
        img.paste(art, (int(x + 15), int(y + 15)))
    sofa, sx = _colour(rng, 40, 200), rng.uniform(200, w - 1200)
    draw.rounded_rectangle((sx, floor_y - 420, sx + 1000, floor_y - 150), radius=40, fill=_shade(sofa, 0.85))
    draw.rounded_rectangle((sx - 60, floor_y - 260, sx + 1060, floor_y + 40), radius=40, fill=sofa)
    for k in range(3):  # cushions
        x = sx + 60 + k * 300
        draw.rounded_rectangle((x, floor_y - 360, x + 240, floor_y - 200), radius=30,
                               fill=_colour(rng, 60, 240))
    px = rng.uniform(100, w - 200)  # a plant
    draw.polygon([(px - 70, floor_y + 120), (px + 70, floor_y + 120), (px + 50, floor_y + 300),
                  (px - 50, floor_y + 300)], fill=(170, 90, 60))
    for _ in range(14):
        a, r = rng.uniform(-math.pi, 0), rng.uniform(120, 320)
        lx, ly = px + math.cos(a) * r * 0.6, floor_y + 120 + math.sin(a) * r
        draw.ellipse((lx - 40, ly - 70, lx + 40, ly + 70), fill=_green(rng))
    return img


_PAINTERS: dict[str, Painter] = {
    "noise": _noise,
    "blank": _blank,
    "document": _document,
    "texture": _texture,
    "object": _object,
}
