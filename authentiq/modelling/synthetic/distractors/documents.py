"""Printed pages of made-up words — a title or header bar, paragraphs, maybe a table — lying on a
surface."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from authentiq.modelling.synthetic.distractors.drawing import Rgb, Size, place, random_colour
from authentiq.modelling.synthetic.distractors.surfaces import paint_surface
from authentiq.modelling.synthetic.render import font

_SYLLABLES = ("an", "be", "con", "de", "ex", "for", "gen", "in", "la", "men", "ne", "or", "per", "qua",
              "re", "sub", "ta", "tion", "ul", "ver", "al", "ing", "com", "pro", "ment", "ty", "st")


def made_up_word(rng: np.random.Generator) -> str:
    picks = rng.integers(0, len(_SYLLABLES), size=int(rng.integers(1, 4)))
    return "".join(_SYLLABLES[int(i)] for i in picks)


def paint_document(rng: np.random.Generator, size: Size) -> Image.Image:
    ph = int(min(size) * rng.uniform(0.95, 1.45))
    page = _page(rng, (int(ph / 1.414), ph))
    return place(paint_surface(rng, size), page, rng, tilt=14)


def _page(rng: np.random.Generator, size: Size) -> Image.Image:
    """A printed page: a title or a header bar, paragraphs of words, maybe a table, a page number."""
    pw, ph = size
    tone = int(rng.integers(205, 238))
    page = Image.new("RGB", size, (tone, tone, tone - int(rng.integers(0, 12))))
    draw = ImageDraw.Draw(page)
    margin = pw * rng.uniform(0.07, 0.12)
    body = max(9, int(pw * rng.uniform(0.018, 0.03)))
    ink = random_colour(rng, 10, 60)
    title = " ".join(made_up_word(rng).capitalize() for _ in range(int(rng.integers(2, 5))))
    y = margin
    if rng.random() < 0.5:
        bar = random_colour(rng, 20, 170)
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
            line = made_up_word(rng).capitalize() if i == 0 else made_up_word(rng)
            length, word = text_font.getlength(line), " " + made_up_word(rng)
            while length + text_font.getlength(word) <= width:
                line, length, word = line + word, length + text_font.getlength(word), " " + made_up_word(rng)
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
    draw.rectangle((x0, y0, x0 + width, y0 + rh), fill=random_colour(rng, 180, 225))
    cell_font = font(max(8, int(body * 0.9)))
    for r in range(rows):
        for c in range(cols):
            text = made_up_word(rng) if c == 0 or r == 0 else f"{rng.uniform(0, 999):.2f}"
            draw.text((x0 + c * cw + body * 0.4, y0 + r * rh + body * 0.4), text[:12], font=cell_font,
                      fill=ink)
    for r in range(rows + 1):
        draw.line((x0, y0 + r * rh, x0 + width, y0 + r * rh), fill=ink, width=1)
    for c in range(cols + 1):
        draw.line((x0 + c * cw, y0, x0 + c * cw, y0 + rows * rh), fill=ink, width=1)
    return y0 + rows * rh + body * 1.5
