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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from authentiq.modelling.synthetic import SyntheticItem


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


def jpeg_views(item: SyntheticItem, size: tuple[int, int], *, quality: int = 90,
               grain: float = 0.0, seed: int = 0) -> list[tuple[str, tuple[str, bytes, str]]]:
    """A synthetic item's views as multipart files of phone-photo size: each rendered view
    upscaled to ``size`` (bicubic) and saved as JPEG. ``grain``: Gaussian sensor noise (σ in
    8-bit levels) added before encoding — a plain upscale is smoother than any camera's output,
    so its JPEG is smaller and faster to decode than a real photo of that size."""
    rng = np.random.default_rng(seed)
    files = []
    for view, data in item.views.items():
        img = Image.open(io.BytesIO(data)).convert("RGB").resize(size, Image.Resampling.BICUBIC)
        if grain:
            noisy = np.asarray(img, np.float32) + rng.normal(0, grain, (size[1], size[0], 3))
            img = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=quality)
        files.append((view, (f"{view}.jpg", buf.getvalue(), "image/jpeg")))
    return files


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


def serve_env(folder: str, settings: dict[str, str]) -> dict[str, str]:
    """The environment of a benchmark's server (and of CLI commands meant for the same
    database): SQLite and blobs under ``folder``; ``settings`` are AUTHENTIQ_* variables without
    the prefix."""
    return {**os.environ, "AUTHENTIQ_DATABASE_URL": f"sqlite:///{folder}/bench.db",
            "AUTHENTIQ_BLOB_DIR": f"{folder}/blobs",
            **{f"AUTHENTIQ_{k}": v for k, v in settings.items()}}


@dataclass
class Served:
    """A running ``authentiq serve``: its base URL and process (the parent of its workers when
    it runs several)."""

    url: str
    proc: subprocess.Popen[bytes]


@contextmanager
def serve(folder: str, settings: dict[str, str], args: Sequence[str] = ()) -> Iterator[Served]:
    """``authentiq serve`` in a subprocess with its own SQLite and blobs under ``folder``
    (:func:`serve_env`); ``args``: more ``serve`` arguments (``--workers 2``). Ready once
    /readyz answers 200; stopped with SIGTERM on leaving."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "authentiq", "serve", "--port", str(port),
                             "--log-level", "warning", *args], env=serve_env(folder, settings),
                            stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(1200):
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
        yield Served(url, proc)
    finally:
        proc.terminate()
        proc.wait(60)


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a server's worker processes), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children.get(p, [])
    return tree


def memory_mib(pid: int, field: str = "Pss") -> float:
    """``field`` of /proc/PID/smaps_rollup (Pss: resident memory with shared pages split
    between the processes that share them, so a tree's sum counts each page once), in MiB."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def free_port() -> int:
    """A free local port (the server binds it a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class TritonServer:
    """A tritonserver process: the binary that the nvidia-pytriton wheel carries, with Triton's
    Python backend (`make test` installs it in .venv/tritonserver)."""

    grpc_url: str
    http_url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def launch_triton(install: Path, repository: Path, log: Path, *args: str,
                  grpc_port: int = 0) -> TritonServer:
    """Start tritonserver (from the nvidia-pytriton wheel installed at ``install``) on free
    local ports and wait until it is ready; FileNotFoundError when it is not installed."""
    import shutil
    import sysconfig

    root = install / "pytriton" / "tritonserver"
    if not (root / "bin" / "tritonserver").is_file():
        raise FileNotFoundError(f"no tritonserver under {install}")
    # The Python backend's stub must embed this interpreter's libpython (the wheel has one per
    # Python version) and find this environment's packages (numpy, onnxruntime).
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "backends" / "python" / "triton_python_backend_stub"
    source = root / "python_backend_stubs" / python / stub.name
    if not stub.is_file() or stub.read_bytes() != source.read_bytes():
        shutil.copy2(source, stub)
    env = {**os.environ,
           "LD_LIBRARY_PATH": ":".join(filter(None, [sysconfig.get_config_var("LIBDIR"),
                                                      os.environ.get("LD_LIBRARY_PATH")])),
           "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    http, grpc, metrics = free_port(), grpc_port or free_port(), free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(root / "bin" / "tritonserver"), "--model-repository", str(repository),
             "--backend-directory", str(root / "backends"), "--http-port", str(http),
             "--grpc-port", str(grpc), "--metrics-port", str(metrics),
             "--http-address", "127.0.0.1", "--grpc-address", "127.0.0.1", *args],
            env=env, stdout=out, stderr=subprocess.STDOUT)
    server = TritonServer(f"127.0.0.1:{grpc}", f"http://127.0.0.1:{http}", proc, log)
    end = time.monotonic() + 90
    while time.monotonic() < end and proc.poll() is None:
        try:
            if httpx.get(server.http_url + "/v2/health/ready", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError("tritonserver did not become ready: " + log.read_text()[-3000:])
