"""One inspection end to end through real HTTP on the CPU default (6 views of 1600×1200 JPEG).

Starts ``authentiq serve`` in a subprocess (SQLite and blobs in a temporary folder), then:
1. sequential requests: p50/p95 latency and the median split by stage;
2. overlap: the same N requests sent concurrently vs one after another, and /healthz latency
   while inspections run (a blocked event loop would show both).

    .venv/bin/python -m benchmarks.inspection [--requests 30] [--concurrency 4] [--phone | --grain G]
        [--set KEY=VALUE ...]

``--phone`` sends benchmarks.ceiling's photos instead (a synthetic item's six views upscaled to
1600×1200 with sensor grain σ = 4: ~310 kB each, 1.9 MB a request), ``--grain 0`` the same
upscaled plainly (~155 kB each, like ``benchmarks.ceiling --grain 0``); ``--set`` passes a setting
to the server (AUTHENTIQ_ without the prefix), e.g. ``--set ORT_THREADS=2``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time

import httpx
import numpy as np

from authentiq.modelling.synthetic import make_item
from benchmarks._common import jpeg_views, machine, photo, serve

VIEWS = ("overall", "logo", "stitching", "hardware", "label", "interior")
STAGES = ("decode_ms", "quality_ms", "stitch_ms", "queue_ms", "inference_ms", "reference_search_ms",
          "persist_ms", "total_ms")


FORM = {"brand": "Castellan", "model": "Riva"}


async def inspect(client: httpx.AsyncClient, files: list, i: int) -> tuple[float, dict]:  # type: ignore[type-arg]
    t = time.perf_counter()
    r = await client.post("/v1/inspections", files=files, data={**FORM, "client_ref": f"bench-{i}"})
    r.raise_for_status()
    return time.perf_counter() - t, r.json()


async def run(url: str, n: int, concurrency: int, grain: float | None) -> None:
    if grain is not None:
        item = make_item(500_000, counterfeit=False)
        FORM.update(brand=item.brand, model=item.model)
        files = jpeg_views(item, (1600, 1200), grain=grain)
    else:
        files = [(v, (f"{v}.jpg", photo(1600, 1200, seed=k), "image/jpeg")) for k, v in enumerate(VIEWS)]
    size = sum(len(f[1][1]) for f in files)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for i in range(3):
            await inspect(client, files, -i)  # warm-up
        seq = [await inspect(client, files, i) for i in range(n)]
        lat = [s for s, _ in seq]
        print(f"## Sequential: {n} inspections, 6 views × 1600×1200 JPEG ({size / 1e6:.1f} MB per request)\n")
        p50, p95 = np.median(lat) * 1000, np.percentile(lat, 95) * 1000
        print(f"| p50 ms | p95 ms |\n|---|---|\n| {p50:.1f} | {p95:.1f} |\n")
        print("| stage (server side) | median ms |\n|---|---|")
        for stage in STAGES:
            print(f"| {stage.removesuffix('_ms')} | {np.median([b['timings'][stage] for _, b in seq]):.1f} |")
        outside = np.median([s * 1000 - b["timings"]["total_ms"] for s, b in seq])
        print(f"| outside the pipeline (client's wall − total: HTTP, multipart, JSON) | {outside:.1f} |")
        print("\ndecode and quality are summed over the 6 views (they run in parallel in the worker pool).\n")

        t = time.perf_counter()
        for i in range(concurrency):
            await inspect(client, files, 1000 + i)
        one_by_one = time.perf_counter() - t
        idle = []
        for _ in range(20):
            t = time.perf_counter()
            await client.get("/healthz")
            idle.append(time.perf_counter() - t)
        busy: list[float] = []

        async def probe(stop: asyncio.Event) -> None:
            while not stop.is_set():
                t = time.perf_counter()
                await client.get("/healthz")
                busy.append(time.perf_counter() - t)
                await asyncio.sleep(0.01)

        stop = asyncio.Event()
        prober = asyncio.create_task(probe(stop))
        t = time.perf_counter()
        await asyncio.gather(*(inspect(client, files, 2000 + i) for i in range(concurrency)))
        together = time.perf_counter() - t
        stop.set()
        await prober
        print(f"## Overlap: {concurrency} inspections\n")
        print("| how | wall ms |\n|---|---|")
        print(f"| one after another | {one_by_one * 1000:.0f} |\n| concurrently | {together * 1000:.0f} |")
        print(f"\nconcurrent / sequential wall time: {together / one_by_one:.2f}")
        print(f"/healthz median latency: idle {np.median(idle) * 1000:.1f} ms, during the concurrent "
              f"inspections {np.median(busy) * 1000:.1f} ms (p95 {np.percentile(busy, 95) * 1000:.1f} ms, "
              f"{len(busy)} probes)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=4)
    photos = parser.add_mutually_exclusive_group()
    photos.add_argument("--phone", action="store_const", const=4.0, dest="grain",
                        help="benchmarks.ceiling's photos (--grain 4)")
    photos.add_argument("--grain", type=float, default=None,
                        help="benchmarks.ceiling's photos with this sensor grain σ (0: a plain upscale)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a server setting (AUTHENTIQ_ without the prefix)")
    args = parser.parse_args()
    settings = dict(pair.split("=", 1) for pair in args.set)
    print(f"# Inspection through HTTP, CPU default ({machine()}) {settings or ''}\n")
    with tempfile.TemporaryDirectory() as tmp, serve(tmp, settings) as server:
        asyncio.run(run(server.url, args.requests, args.concurrency, args.grain))


if __name__ == "__main__":
    main()
