"""Load on the real HTTP service: batching on vs off at several concurrencies, then the overload paths.

Starts two ``authentiq serve`` processes side by side (SQLite and blobs in a temporary folder),
one with batching off (``max_batch_size=1``) and one with the defaults (batch 8, adaptive wait),
and drives them in turn with closed-loop clients that each send one inspection after another:
six real JPEG views of synthetic items (rendered, upscaled to phone-photo size). Then it drives a
third server into its queue bound and a fourth with short deadlines, and checks that the 503s and
504s the clients saw match the server's own metrics.

    .venv/bin/python -m benchmarks.load [--seconds 15] [--concurrency 1,8,32,64] [--photo 1600x1200]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field

import httpx
import numpy as np

from authentiq.modelling.synthetic import make_item
from benchmarks._common import jpeg_views, machine, serve

BATCH_BUCKETS = (1, 2, 3, 4, 6, 8)


@dataclass
class Run:
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # successful requests only
    statuses: Counter[int] = field(default_factory=Counter)
    retry_after: int = 0  # 503s that carried Retry-After

    @property
    def ok(self) -> int:
        return self.statuses[201]

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q) * 1000) if self.latencies else float("nan")


def bodies(n_items: int, photo: tuple[int, int], grain: float = 0.0) -> list[tuple[bytes, str]]:
    """Encoded multipart bodies (built once, so the client spends no CPU on encoding);
    ``grain``: sensor noise in the photos (:func:`benchmarks._common.jpeg_views`)."""
    out = []
    for seed in range(n_items):
        item = make_item(500_000 + seed, counterfeit=seed % 2 == 1)
        files = jpeg_views(item, photo, grain=grain, seed=seed)
        request = httpx.Request("POST", "http://x/v1/inspections", files=files,
                                data={"brand": item.brand, "model": item.model})
        out.append((request.read(), request.headers["content-type"]))
    return out


async def drive(url: str, payloads: list[tuple[bytes, str]], concurrency: int, seconds: float,
                params: dict[str, str] | None = None) -> Run:
    run = Run()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        end = time.perf_counter() + seconds

        async def worker(k: int) -> None:
            i = k
            while time.perf_counter() < end:
                body, ctype = payloads[i % len(payloads)]
                i += concurrency
                t = time.perf_counter()
                r = await client.post("/v1/inspections", content=body, params=params,
                                      headers={"content-type": ctype})
                run.statuses[r.status_code] += 1
                if r.status_code == 201:
                    run.latencies.append(time.perf_counter() - t)
                elif r.status_code == 503 and "retry-after" in r.headers:
                    run.retry_after += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        run.seconds = time.perf_counter() - started
    return run


def metrics(url: str) -> dict[str, float]:
    samples = {}
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def batch_sizes(before: dict[str, float], after: dict[str, float]) -> tuple[float, str]:
    """Mean batch size and the share of batches per size bucket, between two snapshots."""
    def diff(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    count, total = diff("authentiq_batch_size_count"), diff("authentiq_batch_size_sum")
    if not count:
        return float("nan"), "-"
    cumulative = [diff(f'authentiq_batch_size_bucket{{le="{float(b)}"}}') for b in BATCH_BUCKETS]
    parts, prev, low = [], 0.0, 1
    for b, c in zip(BATCH_BUCKETS, cumulative, strict=True):
        if c - prev:
            label = str(b) if b == low else f"{low}-{b}"
            parts.append(f"{label}: {100 * (c - prev) / count:.0f}%")
        prev, low = c, b + 1
    return total / count, ", ".join(parts)


def counter(samples: dict[str, float], name: str, label: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``label`` (e.g. 'status="503"')."""
    return sum(v for k, v in samples.items() if k.startswith(name + "{") and label in k)


async def side_by_side(urls: dict[str, str], payloads: list[tuple[bytes, str]],
                       levels: list[int], seconds: float) -> None:
    print("| concurrency | batching | inspections/s | p50 ms | p95 ms | p99 ms | failed | "
          "mean batch | batch sizes |")
    print("|---|---|---|---|---|---|---|---|---|")
    ratios = []
    for c in levels:
        runs = {}
        for mode, url in urls.items():
            await drive(url, payloads, c, min(3.0, seconds))  # warm-up at this concurrency
            before = metrics(url)
            run = await drive(url, payloads, c, seconds)
            mean, dist = batch_sizes(before, metrics(url))
            failed = sum(n for s, n in run.statuses.items() if s != 201)
            print(f"| {c} | {mode} | {run.ok / run.seconds:.1f} | {run.pct(50):.0f} | "
                  f"{run.pct(95):.0f} | {run.pct(99):.0f} | {failed} | {mean:.2f} | {dist} |")
            runs[mode] = run
        on, off = runs["on"], runs["off"]
        ratios.append((c, (on.ok / on.seconds) / (off.ok / off.seconds),
                       on.pct(95) - off.pct(95), on.pct(99)))
    print("\n| concurrency | throughput on/off | p95 on − off ms | p99 on ms |\n|---|---|---|---|")
    for c, ratio, dp95, p99 in ratios:
        print(f"| {c} | {ratio:.2f}× | {dp95:+.1f} | {p99:.0f} |")


async def overload(url: str, payloads: list[tuple[bytes, str]], concurrency: int, seconds: float,
                   what: str, params: dict[str, str] | None = None) -> None:
    before = metrics(url)
    run = await drive(url, payloads, concurrency, seconds, params)
    after = metrics(url)

    def d(name: str, label: str, value: str) -> int:
        match = f'{label}="{value}"'
        return int(counter(after, name, match) - counter(before, name, match))

    rejected, http = "authentiq_batcher_rejections_total", "authentiq_http_requests_total"
    other = sum(n for s, n in run.statuses.items() if s not in (201, 503, 504))
    cells = [what, concurrency, run.ok, f"{run.statuses[503]} ({run.retry_after} with Retry-After)",
             d(rejected, "reason", "queue_full"), d(http, "status", "503"), run.statuses[504],
             d(rejected, "reason", "deadline"), d(http, "status", "504"), other]
    print("| " + " | ".join(str(c) for c in cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--concurrency", default="1,8,32,64")
    parser.add_argument("--photo", default="1600x1200", help="view size in pixels, WxH")
    parser.add_argument("--items", type=int, default=8)
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    w, h = (int(v) for v in args.photo.split("x"))
    payloads = bodies(args.items, (w, h))
    size = np.mean([len(b) for b, _ in payloads]) / 1e6
    print(f"# Load through HTTP, CPU default ({machine()})\n")
    print(f"{args.items} items, 6 views × {w}×{h} JPEG ({size:.1f} MB per request), "
          f"{args.seconds:.0f} s per cell after a warm-up; closed loop (each client sends its next "
          f"inspection when the last one returns). Batching off: max_batch_size=1; on: "
          f"max_batch_size=8, max_queue_delay 2 ms, adaptive wait.\n")
    with ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        # one client address drives all the load here: let it have every request in flight
        one = {"MAX_IN_FLIGHT_PER_CLIENT": str(max(levels) * 2)}

        def server(name: str, settings: dict[str, str]) -> str:
            # one process: the batch sizes and overload counts come from its /metrics
            return stack.enter_context(serve(f"{tmp}/{name}", settings, ("--workers", "1"))).url

        urls = {"off": server("off", {"MAX_BATCH_SIZE": "1", **one}), "on": server("on", one)}
        asyncio.run(side_by_side(urls, payloads, levels, args.seconds))
        full = server("full", {"MAX_QUEUE_SIZE": "2", **one})
        late = server("late", one)
        print("\n## Overload paths: client-side counts vs the server's metrics\n")
        print("| scenario | concurrency | 201 | 503 seen | queue_full metric | 503 metric | "
              "504 seen | deadline metric | 504 metric | other |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        asyncio.run(overload(full, payloads, 64, args.seconds, "max_queue_size=2"))
        asyncio.run(overload(late, payloads, 32, args.seconds, "timeout_ms=500",
                             {"timeout_ms": "500"}))


if __name__ == "__main__":
    main()
