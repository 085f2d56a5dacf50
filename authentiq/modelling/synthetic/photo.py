"""Turn a clean render into a photo: framing, light, white balance, blur, noise, occlusion, JPEG."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from authentiq.modelling.synthetic.catalog import RGB

# Close-ups are taken with the kiosk's capture guide, so their scale varies little; the overall
# shot is framed by hand.
SCALE_JITTER = {"overall": 0.12}
DEFAULT_SCALE_JITTER = 0.04


def photograph(render: Image.Image, view: str, rng: np.random.Generator, background: RGB) -> bytes:
    img = _frame(render, view, rng, background)
    arr = np.asarray(img, dtype=np.float32)
    arr = _light(arr, rng)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    if rng.random() < 0.25:
        img = _occlude(img, rng)
    radius = rng.uniform(0.0, 1.1)
    if radius > 0.2:
        img = img.filter(ImageFilter.GaussianBlur(radius))
    arr = np.asarray(img, dtype=np.float32)
    arr += rng.standard_normal(arr.shape, dtype=np.float32) * np.float32(rng.uniform(0.5, 5.0))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=int(rng.integers(60, 96)))
    return buf.getvalue()


def _frame(render: Image.Image, view: str, rng: np.random.Generator, background: RGB) -> Image.Image:
    """Scale, rotation and a little perspective, through one quad transform."""
    w, h = render.size
    scale = 1 + rng.uniform(-1, 1) * SCALE_JITTER.get(view, DEFAULT_SCALE_JITTER)
    angle = math.radians(rng.uniform(-7, 7))
    shift = rng.uniform(-0.03, 0.03, size=2) * (w, h)
    cx, cy = w / 2 + shift[0], h / 2 + shift[1]
    corners = [(-w / 2, -h / 2), (-w / 2, h / 2), (w / 2, h / 2), (w / 2, -h / 2)]  # NW SW SE NE
    quad: list[float] = []
    for x, y in corners:
        x, y = x / scale, y / scale
        xr = x * math.cos(angle) - y * math.sin(angle)
        yr = x * math.sin(angle) + y * math.cos(angle)
        jx, jy = rng.uniform(-1, 1, size=2) * 0.025 * (w, h)
        quad += [cx + xr + jx, cy + yr + jy]
    return render.transform((w, h), Image.Transform.QUAD, quad, Image.Resampling.BILINEAR,
                            fillcolor=background)


def _light(arr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w, _ = arr.shape
    theta = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = ((xs / w - 0.5) * math.cos(theta) + (ys / h - 0.5) * math.sin(theta)).astype(np.float32)
    gain = rng.uniform(0.82, 1.12) + ramp * rng.uniform(0.0, 0.3)
    if rng.random() < 0.4:  # a soft shadow
        sx, sy, sr = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.2, 0.5) * w
        d2 = ((xs - sx) ** 2 + (ys - sy) ** 2) / (sr * sr)
        gain = gain * (1 - rng.uniform(0.15, 0.35) * np.exp(-d2))
    white_balance = 1 + rng.uniform(-0.03, 0.03, size=3).astype(np.float32)
    return np.asarray(arr * gain[:, :, None] * white_balance[None, None, :], dtype=np.float32)


def _occlude(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A fingertip entering from an edge."""
    w, h = img.size
    skin = (int(rng.integers(150, 235)), int(rng.integers(110, 180)), int(rng.integers(90, 150)))
    edge = int(rng.integers(0, 4))
    r = rng.uniform(0.10, 0.16) * w
    t = rng.uniform(0.15, 0.85)
    cx, cy = [(t * w, -r * 0.2), (t * w, h + r * 0.2), (-r * 0.2, t * h), (w + r * 0.2, t * h)][edge]
    out = img.copy()
    ImageDraw.Draw(out).ellipse((cx - r, cy - r * 1.4, cx + r, cy + r * 1.4), fill=skin)
    return out
