"""Helpers shared by the benchmarks (they print Markdown tables; they are not tests)."""

from __future__ import annotations

import io
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
from PIL import Image


def photo(width: int, height: int, seed: int = 0, quality: int = 92, grain: float = 12.0) -> bytes:
    """A camera-like JPEG: smooth shading plus fine texture (compresses like a real photo)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 120 + 60 * np.sin(xs / 97.0) * np.cos(ys / 131.0)
    rgb = np.stack([base, base * 0.8 + 20, base * 0.6 + 40], axis=-1)
    rgb += rng.normal(0, grain, rgb.shape).astype(np.float32)  # more grain, bigger file
    buf = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def timed(fn: Callable[[], object], repeat: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def ms(xs: list[float], q: float = 50) -> float:
    return float(np.percentile(xs, q) * 1000) if q != 50 else statistics.median(xs) * 1000


def machine() -> str:
    import os

    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} logical cores, Python {platform.python_version()}"
