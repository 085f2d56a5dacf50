"""Helpers shared by the benchmarks (they print Markdown tables; they are not tests)."""

from __future__ import annotations

import io
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
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
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} logical cores, Python {platform.python_version()}"


@contextmanager
def serve(folder: str, settings: dict[str, str]) -> Iterator[str]:
    """``authentiq serve`` in a subprocess with its own SQLite and blobs under ``folder``;
    ``settings`` are AUTHENTIQ_* variables without the prefix. Yields the base URL."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "AUTHENTIQ_DATABASE_URL": f"sqlite:///{folder}/bench.db",
           "AUTHENTIQ_BLOB_DIR": f"{folder}/blobs",
           **{f"AUTHENTIQ_{k}": v for k, v in settings.items()}}
    proc = subprocess.Popen([sys.executable, "-m", "authentiq", "serve", "--port", str(port),
                             "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            time.sleep(0.1)
        else:
            raise RuntimeError("server did not become ready")
        yield url
    finally:
        proc.terminate()
        proc.wait(60)
