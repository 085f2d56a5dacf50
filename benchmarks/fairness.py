"""Fairness between clients and bounded decoding, on a real ``authentiq serve``.

Two API keys. The *normal* client sends one inspection after another (six 1600×1200 JPEGs).
The *heavy* client sends, as fast as its rate limit allows (open loop, ``AUTHENTIQ_RATE_LIMIT``
default 600/minute = 10 requests/s), the most expensive inspections the service accepts: two
flat RGBA PNGs of ~0.1 MB that each decode to just under the per-view budget (together just
under the per-request budget) plus small JPEGs for the other views. Phases: the normal client
alone (idle), then both. Prints the normal client's latency percentiles idle vs loaded (side by
side in one run), what the heavy client got, and the server's peak RSS (VmHWM) and RSS after.

    .venv/bin/python -m benchmarks.fairness [--requests 40] [--heavy-rate 10]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from authentiq.modelling.synthetic import make_item
from authentiq.settings import Settings
from benchmarks._common import jpeg_views, machine, serve, serve_env

PHOTO = (1600, 1200)


def item_views(seed: int) -> tuple[list[tuple[str, tuple[str, bytes, str]]], dict[str, str]]:
    item = make_item(700_000 + seed)
    return jpeg_views(item, PHOTO), {"brand": item.brand, "model": item.model}


def heavy_views(settings: Settings) -> tuple[list[tuple[str, tuple[str, bytes, str]]], dict[str, str], int]:
    """Two PNGs as large as the budgets allow (RGBA: 4 bytes a pixel), small JPEGs elsewhere."""
    files, form = item_views(99)
    per_view = min(settings.max_decoded_bytes_per_view,
                   (settings.max_decoded_bytes_per_request - 8 * 2**20) // 2)
    side = min(math.isqrt(per_view // 4), math.isqrt(settings.max_pixels))
    buf = io.BytesIO()
    Image.new("RGBA", (side, side), (120, 90, 60, 255)).save(buf, "PNG")
    png = buf.getvalue()
    small = []
    for view, (name, data, kind) in files:
        if view in ("overall", "logo"):
            small.append((view, ("big.png", png, "image/png")))
        else:
            img = Image.open(io.BytesIO(data)).resize((400, 300))
            out = io.BytesIO()
            img.save(out, "JPEG", quality=85)
            small.append((view, (name, out.getvalue(), kind)))
    return small, form, side


def encoded(files: list[tuple[str, tuple[str, bytes, str]]], form: dict[str, str]) -> tuple[bytes, str]:
    request = httpx.Request("POST", "http://x/v1/inspections", files=files, data=form)
    return request.read(), request.headers["content-type"]


def create_key(env: dict[str, str], name: str) -> str:
    out = subprocess.run([sys.executable, "-m", "authentiq", "keys", "create", name, "--scopes",
                          "submit,review,admin"], env=env, capture_output=True, text=True, check=True)
    return out.stdout.splitlines()[1].strip()


def status(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB → MiB
    return float("nan")


async def normal_client(url: str, key: str, bodies: list[tuple[bytes, str]], n: int) -> list[float]:
    latencies = []
    async with httpx.AsyncClient(timeout=120, headers={"X-API-Key": key}) as client:
        for i in range(n):
            body, kind = bodies[i % len(bodies)]
            t = time.perf_counter()
            r = await client.post(url + "/v1/inspections", content=body,
                                  headers={"content-type": kind})
            if r.status_code != 201:
                raise RuntimeError(f"normal client got {r.status_code}: {r.text[:300]}")
            latencies.append(time.perf_counter() - t)
    return latencies


async def heavy_client(url: str, key: str, body: tuple[bytes, str], rate: float,
                       stop: asyncio.Event, seen: Counter[int]) -> None:
    async with httpx.AsyncClient(timeout=120, headers={"X-API-Key": key},
                                 limits=httpx.Limits(max_connections=200)) as client:
        async def one() -> None:
            try:
                r = await client.post(url + "/v1/inspections", content=body[0],
                                      headers={"content-type": body[1]})
                seen[r.status_code] += 1
            except httpx.HTTPError:
                seen[0] += 1

        tasks = []
        while not stop.is_set():
            tasks.append(asyncio.create_task(one()))
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*tasks)


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q) * 1000)


async def run(args: argparse.Namespace, url: str, pid: int, keys: list[str], settings: Settings) -> None:
    normal = [encoded(*item_views(s)) for s in range(4)]
    heavy_files, heavy_form, side = heavy_views(settings)
    heavy = encoded(heavy_files, heavy_form)
    await normal_client(url, keys[0], normal, 3)  # warm-up
    idle = await normal_client(url, keys[0], normal, args.requests)
    rss_idle = status(pid, "VmRSS")
    stop, seen = asyncio.Event(), Counter[int]()
    flood = asyncio.create_task(heavy_client(url, keys[1], heavy, args.heavy_rate, stop, seen))
    await asyncio.sleep(2)  # the heavy client's work is in flight
    loaded = await normal_client(url, keys[0], normal, args.requests)
    stop.set()
    await flood
    await asyncio.sleep(2)
    print(f"\nfairness: {machine()}; heavy client {args.heavy_rate:g} requests/s, each with two "
          f"{side}×{side} RGBA PNGs ({len(heavy[0]) / 1e3:.0f} kB request, "
          f"{2 * side * side * 4 / 2**20:.0f} MiB decoded); normal client six "
          f"{PHOTO[0]}×{PHOTO[1]} JPEGs, one request after another, {args.requests} per phase\n")
    print("| normal client | p50 ms | p95 ms | max ms |\n|---|---:|---:|---:|")
    for label, xs in (("alone (idle)", idle), ("while the heavy client floods", loaded)):
        print(f"| {label} | {pct(xs, 50):.0f} | {pct(xs, 95):.0f} | {max(xs) * 1000:.0f} |")
    print(f"\np95 loaded / idle: {pct(loaded, 95) / pct(idle, 95):.2f}×")
    print("\n| heavy client's answers | count |\n|---|---:|")
    for code, count in sorted(seen.items()):
        print(f"| {code or 'transport error'} | {count} |")
    print(f"\nserver RSS: idle {rss_idle:.0f} MiB, peak (VmHWM) {status(pid, 'VmHWM'):.0f} MiB, "
          f"2 s after the flood {status(pid, 'VmRSS'):.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=40, help="normal requests per phase")
    parser.add_argument("--heavy-rate", type=float, default=10.0,
                        help="heavy requests per second (default: the default rate limit)")
    args = parser.parse_args()
    settings = Settings()
    with tempfile.TemporaryDirectory() as tmp:
        env = serve_env(tmp, {})
        keys = [create_key(env, "normal"), create_key(env, "heavy")]
        # one process: the admission gate, the rate limit (in memory) and the RSS are per process
        with serve(tmp, {}, ("--workers", "1")) as server:
            asyncio.run(run(args, server.url, server.proc.pid, keys, settings))

if __name__ == "__main__":
    main()
