"""One large scene — a landscape or a living room — photographed as a different crop for each view."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from authentiq.modelling.synthetic.distractors.camera import frame_size, photograph
from authentiq.modelling.synthetic.distractors.drawing import (
    Size,
    add_grain,
    lerp,
    random_colour,
    random_green,
    shade,
    to_image,
)
from authentiq.modelling.synthetic.distractors.surfaces import paint_noise, paint_stripes, paint_wood


def scene_crops(rng: np.random.Generator, views: tuple[str, ...]) -> dict[str, bytes]:
    scene = _landscape(rng) if rng.random() < 0.5 else _room(rng)
    sw, sh = scene.size
    photos = {}
    for view in views:
        w, h = frame_size(rng)
        cw = sw * rng.uniform(0.3, 0.6)
        ch = cw * h / w
        if ch > sh * 0.9:
            cw, ch = cw * sh * 0.9 / ch, sh * 0.9
        x0, y0 = rng.uniform(0, sw - cw), rng.uniform(0.3, 1.0) * (sh - ch)  # mostly below the sky
        crop = scene.resize((w, h), Image.Resampling.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))
        photos[view] = photograph(crop, rng)
    return photos


def _sky(rng: np.random.Generator, size: Size) -> Image.Image:
    day, dusk = ((60, 110, 190), (200, 220, 240)), ((40, 50, 110), (240, 150, 90))
    top, horizon = day if rng.random() < 0.7 else dusk
    t = np.linspace(0, 1, size[1], dtype=np.float32)[:, None] * np.ones((1, size[0]), np.float32)
    return to_image(lerp(top, horizon, t))


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
        colour = shade((110, 120, 150), 1 - 0.22 * layer)
        draw.polygon([(0, h), *zip(xs, ridge.tolist(), strict=True), (w, h)], fill=colour)
    field_colour = random_green(rng) if rng.random() < 0.7 else (int(rng.integers(110, 170)), 110, 70)
    ground = add_grain(Image.new("RGB", (w, int(h - horizon)), shade(field_colour, 1.2)), rng, 10)
    img.paste(ground, (0, int(horizon)))
    for _ in range(int(rng.integers(15, 45))):  # trees, larger when nearer
        y = rng.uniform(horizon, h)
        x, s = rng.uniform(0, w), 30 + 220 * (y - horizon) / (h - horizon)
        draw.rectangle((x - s * 0.06, y - s * 0.5, x + s * 0.06, y), fill=(70, 50, 30))
        green = shade(random_green(rng), 0.8)
        if rng.random() < 0.5:  # a conifer
            draw.polygon([(x, y - s * 1.6), (x - s * 0.4, y - s * 0.35), (x + s * 0.4, y - s * 0.35)],
                         fill=green)
        else:
            draw.ellipse((x - s * 0.45, y - s * 1.3, x + s * 0.45, y - s * 0.4), fill=green)
    for _ in range(int(rng.integers(0, 3))):  # a house
        x, y, s = rng.uniform(100, w - 300), rng.uniform(horizon + 50, h - 100), rng.uniform(120, 260)
        draw.rectangle((x, y - s * 0.7, x + s, y), fill=random_colour(rng, 150, 240))
        draw.polygon([(x - s * 0.1, y - s * 0.7), (x + s * 0.5, y - s * 1.1), (x + s * 1.1, y - s * 0.7)],
                     fill=(120, 50, 40))
        draw.rectangle((x + s * 0.42, y - s * 0.4, x + s * 0.58, y), fill=(70, 45, 30))
    return add_grain(img, rng, 3)


def _room(rng: np.random.Generator) -> Image.Image:
    w, h = 2400, 1600
    floor_y = int(h * rng.uniform(0.6, 0.72))
    img = add_grain(Image.new("RGB", (w, h), random_colour(rng, 150, 235)), rng, 3)
    img.paste(paint_wood(rng, (w, h - floor_y)), (0, floor_y))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, floor_y - 25, w, floor_y), fill=(235, 235, 230))
    wx = rng.uniform(100, w - 700)
    img.paste(_sky(rng, (500, 600)), (int(wx), int(floor_y * 0.15)))
    draw.rectangle((wx, floor_y * 0.15, wx + 500, floor_y * 0.15 + 600), outline=(245, 245, 245), width=24)
    draw.line((wx + 250, floor_y * 0.15, wx + 250, floor_y * 0.15 + 600), fill=(245, 245, 245), width=16)
    for _ in range(int(rng.integers(1, 4))):  # pictures
        x, y, s = rng.uniform(50, w - 400), rng.uniform(80, floor_y * 0.5), rng.uniform(180, 360)
        draw.rectangle((x, y, x + s, y + s * 0.75), fill=(40, 30, 20))
        art = paint_stripes(rng, (int(s - 30), int(s * 0.75 - 30))) if rng.random() < 0.5 else paint_noise(
            rng, (int(s - 30), int(s * 0.75 - 30)))
        img.paste(art, (int(x + 15), int(y + 15)))
    sofa, sx = random_colour(rng, 40, 200), rng.uniform(200, w - 1200)
    draw.rounded_rectangle((sx, floor_y - 420, sx + 1000, floor_y - 150), radius=40, fill=shade(sofa, 0.85))
    draw.rounded_rectangle((sx - 60, floor_y - 260, sx + 1060, floor_y + 40), radius=40, fill=sofa)
    for k in range(3):  # cushions
        x = sx + 60 + k * 300
        draw.rounded_rectangle((x, floor_y - 360, x + 240, floor_y - 200), radius=30,
                               fill=random_colour(rng, 60, 240))
    px = rng.uniform(100, w - 200)  # a plant
    draw.polygon([(px - 70, floor_y + 120), (px + 70, floor_y + 120), (px + 50, floor_y + 300),
                  (px - 50, floor_y + 300)], fill=(170, 90, 60))
    for _ in range(14):
        a, r = rng.uniform(-math.pi, 0), rng.uniform(120, 320)
        lx, ly = px + math.cos(a) * r * 0.6, floor_y + 120 + math.sin(a) * r
        draw.ellipse((lx - 40, ly - 70, lx + 40, ly + 70), fill=random_green(rng))
    return img
