"""The phone camera every distractor photo goes through: frame size, blur, uneven light, sensor noise,
JPEG or PNG."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageFilter

from authentiq.modelling.synthetic.distractors.drawing import Size, to_image


def frame_size(rng: np.random.Generator) -> Size:
    """640–1600 px on the long side; landscape 4:3, portrait 3:4 or square."""
    long = int(rng.integers(640, 1601))
    shape = int(rng.integers(0, 3))
    short = long if shape == 2 else round(long * 3 / 4)
    return (short, long) if shape == 1 else (long, short)


def photograph(img: Image.Image, rng: np.random.Generator, *, noise: float | None = None) -> bytes:
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
    img = to_image(arr)
    buf = io.BytesIO()
    if rng.random() < 0.1:  # a screenshot or an edited photo
        img.save(buf, "PNG", compress_level=1)
    else:
        img.save(buf, "JPEG", quality=int(rng.integers(60, 96)))
    return buf.getvalue()
