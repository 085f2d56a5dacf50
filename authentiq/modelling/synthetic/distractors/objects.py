"""Everyday objects on a table: a circuit board, a mug, a phone, fruit, a keyboard."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from authentiq.modelling.synthetic.distractors.documents import made_up_word
from authentiq.modelling.synthetic.distractors.drawing import (
    Rgb,
    Size,
    add_grain,
    cast_shadow,
    fractal_noise,
    lerp,
    place,
    random_colour,
    rounded_layer,
    shade,
    to_image,
)
from authentiq.modelling.synthetic.distractors.surfaces import paint_surface
from authentiq.modelling.synthetic.render import font


def paint_object(rng: np.random.Generator, size: Size) -> Image.Image:
    painter = [_circuit_board, _mug, _phone, _fruit, _keyboard][int(rng.integers(0, 5))]
    return painter(rng, size)


def _circuit_board(rng: np.random.Generator, size: Size) -> Image.Image:
    bw = int(min(size) * rng.uniform(0.9, 1.4))
    bh = int(bw * rng.uniform(0.55, 0.8))
    boards = [(24, 104, 52), (18, 84, 44), (30, 60, 120), (28, 28, 30)]
    colour = boards[int(rng.choice(4, p=[0.5, 0.2, 0.15, 0.15]))]
    board = add_grain(Image.new("RGB", (bw, bh), colour), rng, 4)
    draw, u = ImageDraw.Draw(board), bw / 100
    trace, metal, parts = shade(colour, 1.6), (196, 190, 170), [(210, 190, 150), (30, 30, 30), (140, 90, 60)]
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
    return place(paint_surface(rng, size), rounded_layer(board, 2 * u), rng, tilt=20)


def _cylinder(width: int, height: int, colour: Rgb, highlight: float) -> Image.Image:
    """A vertical cylinder's side, lit from the left: darker at the rims, a specular stripe."""
    x = np.linspace(-1, 1, width, dtype=np.float32)
    prof = 0.45 + 0.55 * np.sqrt(1 - x * x) + 0.5 * np.exp(-((x - highlight) / 0.08) ** 2)
    arr = np.asarray(colour, np.float32)[None, None, :] * prof[None, :, None] + 40 * np.exp(
        -((x - highlight) / 0.06) ** 2)[None, :, None]
    return to_image(np.broadcast_to(arr, (height, width, 3)))


def _mug(rng: np.random.Generator, size: Size) -> Image.Image:
    img = paint_surface(rng, size)
    w, h = size
    mw = int(min(size) * rng.uniform(0.35, 0.55))
    mh, e = int(mw * rng.uniform(0.9, 1.25)), mw * 0.14
    x0 = w / 2 - mw / 2 + rng.uniform(-0.08, 0.05) * w
    y0 = h / 2 - mh / 2 + rng.uniform(-0.05, 0.08) * h
    colour = random_colour(rng, 30, 240)
    img = cast_shadow(img, (x0 - mw * 0.05, y0 + mh - e * 1.5, x0 + mw * 1.4, y0 + mh + e * 1.6), 150)
    draw = ImageDraw.Draw(img)
    draw.ellipse((x0 + mw * 0.8, y0 + mh * 0.15, x0 + mw * 1.3, y0 + mh * 0.7), outline=shade(colour, 0.8),
                 width=max(4, int(mw * 0.09)))
    mask = Image.new("L", (mw, mh + int(e)), 0)
    ImageDraw.Draw(mask).rectangle((0, 0, mw, mh - e), fill=255)
    ImageDraw.Draw(mask).ellipse((0, mh - 2 * e, mw - 1, mh), fill=255)
    img.paste(_cylinder(mw, mh + int(e), colour, rng.uniform(-0.6, -0.3)), (int(x0), int(y0)), mask)
    draw.ellipse((x0, y0 - e, x0 + mw, y0 + e), fill=shade(colour, 1.15))
    inside = (60, 38, 24) if rng.random() < 0.5 else shade(colour, 0.55)
    draw.ellipse((x0 + mw * 0.05, y0 - e * 0.8, x0 + mw * 0.95, y0 + e * 0.8), fill=inside)
    if rng.random() < 0.6:
        text = made_up_word(rng).upper()
        ink = (250, 250, 250) if sum(colour) < 380 else (20, 20, 20)
        draw.text((x0 + mw * 0.15, y0 + mh * 0.4), text[:8], font=font(max(10, int(mw * 0.12))), fill=ink)
    return img


def _phone(rng: np.random.Generator, size: Size) -> Image.Image:
    ph = int(min(size) * rng.uniform(0.8, 1.2))
    pw = int(ph * rng.uniform(0.46, 0.52))
    body = random_colour(rng, 15, 60) if rng.random() < 0.6 else random_colour(rng, 170, 230)
    phone = Image.new("RGB", (pw, ph), body)
    b = pw * 0.045
    sw, sh = int(pw - 2 * b), int(ph - 2 * b)
    ys = np.linspace(0, 1, sh, dtype=np.float32)[:, None] * np.ones((1, sw), np.float32)
    top, bottom = random_colour(rng), random_colour(rng)
    screen = to_image(lerp(top, bottom, ys * 0.7 + fractal_noise(rng, (sw, sh), sw / 2, 3) * 0.3))
    draw, white = ImageDraw.Draw(screen), (248, 248, 248)
    icon, gap = sw * 0.16, sw * 0.072
    small = font(max(8, int(icon * 0.2)))
    for r in range(int(rng.integers(3, 6))):
        for c in range(4):
            x, y = gap + c * (icon + gap), sh * 0.08 + r * (icon + gap * 1.6)
            draw.rounded_rectangle((x, y, x + icon, y + icon), radius=icon * 0.22,
                                   fill=random_colour(rng, 30, 250))
            draw.text((x, y + icon + gap * 0.2), made_up_word(rng)[:6], font=small, fill=white)
    clock = f"{rng.integers(1, 13)}:{rng.integers(0, 60):02d}"
    draw.text((gap, sh * 0.015), clock, font=font(max(8, int(sw * 0.05))), fill=white)
    draw.rounded_rectangle((gap, sh - icon * 1.5, sw - gap, sh - icon * 0.2), radius=icon * 0.3,
                           fill=(200, 200, 210))
    phone.paste(rounded_layer(screen, pw * 0.08), (int(b), int(b)), rounded_layer(screen, pw * 0.08))
    ImageDraw.Draw(phone).ellipse((pw / 2 - b / 2, b * 1.3, pw / 2 + b / 2, b * 2.3), fill=(10, 10, 10))
    return place(paint_surface(rng, size), rounded_layer(phone, pw * 0.12), rng, tilt=25)


def _fruit(rng: np.random.Generator, size: Size) -> Image.Image:
    img = paint_surface(rng, size)
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
        ball = add_grain(to_image(arr), rng, 4)
        mask = Image.new("L", (2 * rx, 2 * ry), 0)
        ImageDraw.Draw(mask).ellipse((0, 0, 2 * rx - 1, 2 * ry - 1), fill=255)
        img = cast_shadow(img, (cx - rx * 0.8, cy + ry * 0.2, cx + rx * 1.3, cy + ry * 1.2), 150)
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
    base, cap = (((30, 30, 34), random_colour(rng, 45, 75)) if dark
                 else ((200, 200, 205), random_colour(rng, 225, 250)))
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
                                   fill=shade(cap, 0.7))
            draw.rounded_rectangle((x + key * 0.06, y, x + kwid - key * 0.06, y + key * 0.82), radius=round_,
                                   fill=cap)
            draw.text((x + key * 0.22, y + key * 0.14), ch, font=label, fill=ink)
            x += key
    return place(paint_surface(rng, size), add_grain(board, rng, 2), rng, tilt=18)
