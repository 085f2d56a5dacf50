"""Draw the six views of one item from its specification (clean renders, before the camera)."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from authentiq.modelling.synthetic.catalog import RENDER_SIZE, RGB, Spec

W, H = RENDER_SIZE


@lru_cache(maxsize=16)
def font(size: int) -> ImageFont.FreeTypeFont:
    loaded = ImageFont.load_default(size=size)
    if not isinstance(loaded, ImageFont.FreeTypeFont):  # pragma: no cover - Pillow without FreeType
        raise RuntimeError("Pillow was built without FreeType; the synthetic generator needs it")
    return loaded


def leather(size: tuple[int, int], rgb: RGB, rng: np.random.Generator, grain: float = 9.0) -> Image.Image:
    """A flat colour with coarse and fine grain."""
    w, h = size
    coarse = Image.fromarray(rng.normal(0, 1, (h // 8 + 2, w // 8 + 2)).astype(np.float32), "F")
    coarse_arr = np.asarray(coarse.resize((w, h), Image.Resampling.BILINEAR))
    fine = rng.standard_normal((h, w), dtype=np.float32)
    shade = coarse_arr * grain + fine * (grain / 3)
    arr = np.asarray(rgb, dtype=np.float32)[None, None, :] + shade[:, :, None]
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def shade(rgb: RGB, k: float) -> RGB:
    return (int(min(255, rgb[0] * k)), int(min(255, rgb[1] * k)), int(min(255, rgb[2] * k)))


def draw_mark(draw: ImageDraw.ImageDraw, mark: str, cx: float, cy: float, r: float,
              fill: RGB | tuple[int, int, int, int], geometry: float = 1.0) -> None:
    """The brand glyph. ``geometry`` distorts inner proportions (1.0 = genuine)."""
    width = max(1, round(r / 6))
    if mark == "quatrefoil":
        d, pr = 0.5 * r * geometry, 0.42 * r
        for ang in (0, 90, 180, 270):
            x = cx + d * math.cos(math.radians(ang))
            y = cy + d * math.sin(math.radians(ang))
            draw.ellipse((x - pr, y - pr, x + pr, y + pr), outline=fill, width=width)
        draw.ellipse((cx - r * 0.14, cy - r * 0.14, cx + r * 0.14, cy + r * 0.14), fill=fill)
    elif mark == "rings":
        rr, off = 0.58 * r, 0.38 * r * geometry
        for sx in (-1, 1):
            x = cx + sx * off
            draw.ellipse((x - rr, cy - rr, x + rr, cy + rr), outline=fill, width=width + 1)
    elif mark == "chevron":
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], outline=fill,
                     width=width)
        depth = 0.45 * r * geometry
        draw.line([(cx - 0.55 * r, cy + 0.2 * r - depth / 2), (cx, cy + 0.2 * r + depth / 2),
                   (cx + 0.55 * r, cy + 0.2 * r - depth / 2)], fill=fill, width=width + 1)
    else:
        raise ValueError(f"unknown mark {mark!r}")


def draw_spaced_text(draw: ImageDraw.ImageDraw, text: str, cx: float, y: float, size: int,
                     fill: RGB | tuple[int, int, int, int], spacing: float, stroke: int = 0) -> None:
    f = font(size)
    widths = [f.getlength(ch) for ch in text]
    total = sum(widths) + spacing * (len(text) - 1)
    x = cx - total / 2
    for ch, w in zip(text, widths, strict=True):
        draw.text((x, y), ch, font=f, fill=fill, stroke_width=stroke, stroke_fill=fill)
        x += w + spacing


def serial_text(fmt: str, rng: np.random.Generator) -> str:
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    out = []
    for ch in fmt:
        if ch == "L":
            out.append(letters[int(rng.integers(0, len(letters)))])
        elif ch == "D":
            out.append(str(int(rng.integers(0, 10))))
        else:
            out.append(ch)
    return "".join(out)


# --- the six views ------------------------------------------------------------------------


def overall(spec: Spec, rng: np.random.Generator, background: RGB) -> Image.Image:
    img = Image.new("RGB", (W, H), background)
    cx, cy = W / 2 + rng.uniform(-8, 8), H / 2 + 20
    bw, bh = 250.0, 190.0
    if spec.shape == "tote":
        poly = [(cx - bw / 2, cy - bh / 2), (cx + bw / 2, cy - bh / 2),
                (cx + bw / 2 - 30, cy + bh / 2), (cx - bw / 2 + 30, cy + bh / 2)]
    elif spec.shape == "bucket":
        poly = [(cx - bw / 2 + 25, cy - bh / 2), (cx + bw / 2 - 25, cy - bh / 2),
                (cx + bw / 2, cy + bh / 2), (cx - bw / 2, cy + bh / 2)]
    else:  # satchel
        poly = [(cx - bw / 2, cy - bh / 2 + 20), (cx + bw / 2, cy - bh / 2 + 20),
                (cx + bw / 2, cy + bh / 2), (cx - bw / 2, cy + bh / 2)]
    draw = ImageDraw.Draw(img)
    # handle
    draw.arc((cx - 80, cy - bh / 2 - 90, cx + 80, cy - bh / 2 + 60), 180, 360,
             fill=spec.trim_rgb, width=12)
    mask = Image.new("L", (W, H), 0)
    ImageDraw.Draw(mask).polygon(poly, fill=255)
    body = leather((W, H), spec.body_rgb, rng)
    pattern = ImageDraw.Draw(body)
    sp = spec.pattern_spacing
    for side in (-1, 1):
        offset = spec.seam_offset if side > 0 else 0.0
        for j in range(-4, 5):
            for k in range(0, 6):
                x = cx + side * (sp / 2 + k * sp)
                y = cy + j * sp + offset + (sp / 2 if k % 2 else 0)
                draw_mark(pattern, spec.mark, x, y, sp * 0.3, spec.pattern_rgb, spec.glyph_scale)
    img.paste(body, (0, 0), mask)
    draw.line([(cx, cy - bh / 2 + (20 if spec.shape == "satchel" else 0)), (cx, cy + bh / 2)],
              fill=spec.trim_rgb, width=4)
    draw.line([*poly, poly[0]], fill=spec.trim_rgb, width=5)
    metal = metal_rgb(spec.metal)
    for sx in (-1, 1):
        x, y = cx + sx * 80, cy - bh / 2 + (20 if spec.shape == "satchel" else 0)
        draw.ellipse((x - 9, y - 9, x + 9, y + 9), fill=metal, outline=shade(metal, 0.6))
    return img


def logo(spec: Spec, rng: np.random.Generator, background: RGB) -> Image.Image:
    img = leather((W, H), spec.body_rgb, rng)
    layer = Image.new("RGBA", (W, H), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    fill = (*spec.pattern_rgb, 255)
    draw_mark(draw, spec.mark, W / 2, H / 2 - 40, 72, fill, spec.glyph_scale)
    draw_spaced_text(draw, spec.wordmark, W / 2, H / 2 + 50, 34, fill, spec.letter_spacing,
                     spec.font_stroke)
    if spec.print_blur > 0:
        layer = layer.filter(ImageFilter.GaussianBlur(spec.print_blur))
    img.paste(layer, (0, 0), layer)
    return img


def stitching(spec: Spec, rng: np.random.Generator, background: RGB) -> Image.Image:
    img = leather((W, H), spec.body_rgb, rng)
    draw = ImageDraw.Draw(img)
    edge_y = H * 0.72
    draw.rectangle((0, edge_y, W, H), fill=spec.trim_rgb)
    draw.line([(0, edge_y), (W, edge_y)], fill=shade(spec.trim_rgb, 0.6), width=3)
    pitch = spec.stitch_pitch
    length = pitch * 0.62
    ang = math.radians(spec.stitch_angle)
    dx, dy = math.cos(ang) * length / 2, math.sin(ang) * length / 2
    hole = shade(spec.body_rgb, 0.45)
    for row_y in (H * 0.38, H * 0.38 + 52):
        x = -pitch + rng.uniform(0, pitch)
        while x < W + pitch:
            px = x + rng.normal(0, spec.stitch_jitter) * pitch
            draw.line([(px - dx, row_y - dy), (px + dx, row_y + dy)], fill=spec.thread_rgb, width=6)
            draw.ellipse((px + dx - 2, row_y + dy - 2, px + dx + 2, row_y + dy + 2), fill=hole)
            x += pitch
    return img


def metal_rgb(metal: str) -> RGB:
    return (212, 178, 96) if metal == "gold" else (196, 198, 204)


def hardware(spec: Spec, rng: np.random.Generator, background: RGB) -> Image.Image:
    img = leather((W, H), spec.trim_rgb, rng)
    base = np.asarray(metal_rgb(spec.metal), dtype=np.float32)
    pw, ph = 330, 130
    x0, y0 = (W - pw) // 2, (H - ph) // 2
    ys = np.linspace(-1, 1, ph, dtype=np.float32)[:, None]
    band = 1.0 + 0.22 * np.exp(-((ys - rng.uniform(-0.5, 0.0)) ** 2) / 0.08) - 0.12 * ys
    plate = np.clip(base[None, None, :] * band[:, :, None] * np.ones((1, pw, 1), np.float32), 0, 255)
    plate_img = Image.fromarray(plate.astype(np.uint8), "RGB")
    mask = Image.new("L", (pw, ph), 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, pw - 1, ph - 1), radius=22, fill=255)
    img.paste(plate_img, (x0, y0), mask)
    draw = ImageDraw.Draw(img)
    metal = metal_rgb(spec.metal)
    c = spec.engraving_contrast
    dark = shade(metal, 1 - 0.6 * c)
    light = shade(metal, 1 + 0.25 * c)
    d = spec.engraving_depth
    size = 36 if len(spec.wordmark) <= 9 else 28
    cy = H / 2 - size / 2 - 4
    draw_spaced_text(draw, spec.wordmark, W / 2 + d, cy + d, size, light, spec.letter_spacing)
    draw_spaced_text(draw, spec.wordmark, W / 2, cy, size, dark, spec.letter_spacing)
    for sx in (-1, 1):
        x = W / 2 + sx * (pw / 2 - 24)
        draw.ellipse((x - 8, H / 2 - 8, x + 8, H / 2 + 8), fill=shade(metal, 0.8),
                     outline=shade(metal, 0.5), width=2)
        draw.line([(x - 5, H / 2), (x + 5, H / 2)], fill=shade(metal, 0.45), width=2)
    return img


def label(spec: Spec, rng: np.random.Generator, background: RGB) -> Image.Image:
    img = leather((W, H), spec.trim_rgb, rng)
    tab = leather((340, 210), spec.label_rgb, rng, grain=5)
    mask = Image.new("L", (340, 210), 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, 339, 209), radius=14, fill=255)
    img.paste(tab, ((W - 340) // 2, (H - 210) // 2), mask)
    draw = ImageDraw.Draw(img)
    ink = shade(spec.label_rgb, 0.5)
    if sum(spec.label_rgb) < 300:
        ink = shade(spec.label_rgb, 1.9)
    draw_spaced_text(draw, spec.wordmark, W / 2, H / 2 - 84, 28, ink, 2)
    draw_spaced_text(draw, spec.country, W / 2, H / 2 - 38, 20, ink, 1)
    draw_spaced_text(draw, serial_text(spec.serial_format, rng), W / 2, H / 2 + 2, 44, ink, 4)
    return img


def interior(spec: Spec, rng: np.random.Generator, background: RGB) -> Image.Image:
    img = Image.new("RGB", (W, H), spec.lining_rgb)
    draw = ImageDraw.Draw(img)
    p = spec.lining_period
    dark = shade(spec.lining_rgb, 0.78)
    if spec.lining_weave == "twill":
        for k in range(-int(H / p) - 2, int((W + H) / p) + 2):
            x = k * p
            draw.line([(x, 0), (x - H, H)], fill=dark, width=max(1, int(p / 3)))
    elif spec.lining_weave == "dots":
        r = p * 0.22
        for y in np.arange(p / 2, H, p):
            for x in np.arange(p / 2, W, p):
                draw.ellipse((x - r, y - r, x + r, y + r), fill=dark)
    else:
        for x in np.arange(0, W, p):
            draw.line([(x, 0), (x, H)], fill=dark, width=1)
        for y in np.arange(0, H, p):
            draw.line([(0, y), (W, y)], fill=dark, width=1)
    # a sewn-in brand tag
    tx, ty = W / 2 + rng.uniform(-60, 20), H / 2 + rng.uniform(-40, 10)
    draw.rectangle((tx, ty, tx + 120, ty + 44), fill=(236, 232, 222), outline=shade(spec.lining_rgb, 0.6))
    draw_spaced_text(draw, spec.wordmark, tx + 60, ty + 12, 14, (60, 50, 40), 1)
    noise = rng.standard_normal((H, W, 1), dtype=np.float32) * np.float32(4)
    arr = np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


RENDERERS = {
    "overall": overall,
    "logo": logo,
    "stitching": stitching,
    "hardware": hardware,
    "label": label,
    "interior": interior,
}
