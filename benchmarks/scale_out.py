"""Deployment shapes side by side: one worker or two, SQLite or PostgreSQL, in-process ONNX Runtime
or a Triton server — the same closed-loop load on each, one after another in one run.

Each configuration starts real ``authentiq serve`` processes (two workers = two processes on one
PostgreSQL database, the load split between them as a load balancer would). Triton runs the
repository of ``authentiq export-triton --runtime python`` (Triton's Python backend with ONNX
Runtime) from the tritonserver that ``make test`` installs in .venv/tritonserver. Needs
PostgreSQL on 127.0.0.1:5432 (database ``authentiq_bench``, recreated per configuration).

    .venv/bin/python -m benchmarks.scale_out [--seconds 20] [--concurrency 8] [--workers 1,2]
    .venv/bin/python -m benchmarks.scale_out --sqlite-only --workers 1,2,4,8 --concurrency 48

``--sqlite-only`` (no PostgreSQL or Triton needed) gives each worker a SQLite file of its own:
it measures how the CPU side (decoding, heatmaps, the model) scales with worker processes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from authentiq.modelling.triton_export import export_triton
from authentiq.settings import Settings
from benchmarks._common import launch_triton, machine, serve
from benchmarks.load import Run, bodies, drive

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_BENCH = "postgresql+psycopg://postgres@127.0.0.1:5432/authentiq_bench"
TRITON_DIR = Path(__file__).resolve().parents[1] / ".venv" / "tritonserver"


def fresh_database() -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS authentiq_bench WITH (FORCE)")
        conn.execute("CREATE DATABASE authentiq_bench")


async def load(urls: list[str], payloads: list[tuple[bytes, str]], concurrency: int,
               seconds: float) -> Run:
    """The clients split evenly over the workers; one combined result."""
    share = max(1, concurrency // len(urls))
    runs = await asyncio.gather(*(drive(u, payloads, share, seconds) for u in urls))
    total = Run()
    for run in runs:
        total.statuses.update(run.statuses)
        total.latencies += run.latencies
        total.seconds = max(total.seconds, run.seconds)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--photo", default="1600x1200", help="size each view is upscaled to")
    parser.add_argument("--workers", default="1,2", help="worker processes to compare")
    parser.add_argument("--threads", type=int, help="AUTHENTIQ_PREPROCESS_WORKERS and _ORT_THREADS "
                                                    "per worker (default: the cores split evenly)")
    parser.add_argument("--sqlite-only", action="store_true",
                        help="only in-process ONNX Runtime, a SQLite file per worker")
    parser.add_argument("--shared-sqlite", action="store_true",
                        help="the SQLite workers share one database file (as `serve --workers` "
                             "on one host does)")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    width, height = (int(v) for v in args.photo.split("x"))
    payloads = bodies(8, (width, height))
    cores = os.cpu_count() or 1
    base = {"REFERENCE_SEED_DIR": "", "AUTH": "off", "RATE_LIMIT": "100000/minute"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        triton = None
        if not args.sqlite_only and (TRITON_DIR / "pytriton").is_dir():
            export_triton(Path(tmp) / "models", Settings(max_batch_size=8), runtime="python")
            triton = launch_triton(TRITON_DIR, Path(tmp) / "models", Path(tmp) / "triton.log")
            stack.callback(triton.stop)
        def name(n: int) -> str:
            return f"{n} worker{'s' if n > 1 else ''}"

        sqlite = "one SQLite" if args.shared_sqlite else "SQLite each"
        configs = [(f"{name(n)}, {sqlite}, ONNX Runtime in process", n, "sqlite", "onnxruntime")
                   for n in (counts if args.sqlite_only else counts[:1])]
        if not args.sqlite_only:
            configs += [(f"{name(n)}, PostgreSQL, ONNX Runtime in process", n, "postgres",
                         "onnxruntime") for n in counts]
        if triton is not None:
            configs += [(f"{name(n)}, PostgreSQL, Triton (gRPC)", n, "postgres", "triton")
                        for n in counts]
        for label, workers, database, backend in configs:
            share = str(args.threads or max(2, cores // workers))  # cores split between workers
            settings = base | {"PREPROCESS_WORKERS": share, "ORT_THREADS": share}
            if database == "postgres":
                fresh_database()
                settings["DATABASE_URL"] = PG_BENCH
            elif args.shared_sqlite:
                settings["DATABASE_URL"] = f"sqlite:///{tmp}/{label}/shared.db"
            if backend == "triton":
                assert triton is not None
                settings |= {"BACKEND": "triton", "TRITON_URL": triton.grpc_url}
            with ExitStack() as servers:
                one = ("--workers", "1")  # a process per worker; the load is split by us
                urls = [servers.enter_context(serve(f"{tmp}/{label}/{i}", settings, one)).url
                        for i in range(workers)]
                asyncio.run(load(urls, payloads[:2], 2, 3))  # warm up
                run = asyncio.run(load(urls, payloads, args.concurrency, args.seconds))
            lat = np.array(run.latencies) * 1000
            rows.append((label, run.ok / run.seconds, np.median(lat), np.percentile(lat, 95),
                         sum(n for s, n in run.statuses.items() if s != 201)))
    threads = args.threads or "cores ÷ workers"
    print(f"\n{machine()}; {args.concurrency} closed-loop clients, {args.seconds:.0f} s each, "
          f"6 views of {args.photo} JPEG per inspection; threads per worker: {threads}\n")
    print("| deployment | inspections/s | p50 ms | p95 ms | non-201 |")
    print("|---|---:|---:|---:|---:|")
    for label, rate, p50, p95, bad in rows:
        print(f"| {label} | {rate:.2f} | {p50:.0f} | {p95:.0f} | {bad} |")


if __name__ == "__main__":
    main()
