"""The pipeline's physical limit on this machine, and how close ``authentiq serve`` gets to it
(issue 20), in one run.

- **D**: the CPUs only decoding: the service's own decode path (``preprocess.probe`` +
  ``decode_probed``: Pillow, DCT-scaled to the 256 px analysis size), one process per CPU, the
  six photos of an inspection over and over → views/s, and ÷ 6 inspections/s.
- **M**: the shipped INT8 CPU model alone through the service's ONNX Runtime backend (its
  session options) at batch 8 → mosaics/s; both ways the service can run it: one session with a
  thread per CPU (one server process), and one single-threaded session per CPU (a worker per
  CPU). M is the better of the two.
- **L** = 1 / (1/D + 1/M): inspections/s if the CPUs did nothing but decode and run the model.
- **the service**: ``authentiq serve`` with its default settings (SQLite and blobs in a temporary
  folder), closed-loop clients sending pre-encoded requests over keep-alive connections, at a
  few concurrencies; the best rate, its p50/p95, the ratio service / L, and p50 at concurrency 1.

The photos: synthetic items (real product content: the quality check, the view gate and the
reference search see what they see in service) upscaled to phone-photo size with sensor-like
grain, so that their JPEG size and decoding cost are a phone photo's; a plain upscale (``--grain
0``, what benchmarks.load sends) is half the size and decodes faster than any camera's output.

    .venv/bin/python -m benchmarks.ceiling [--seconds 10] [--photo 1600x1200] [--grain 4]
        [--concurrency 1,4,8,16] [--workers 1,2,3]

``--workers`` runs the service once per count (``serve --workers N``, each worker with its share
of the threads) instead of once with serve's default; ``--threads`` sets
AUTHENTIQ_PREPROCESS_WORKERS and AUTHENTIQ_ORT_THREADS for every worker.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from authentiq.cli.serving import default_workers, thread_share
from authentiq.modelling.synthetic import make_item
from authentiq.settings import DEFAULT_MODEL, available_cpus
from benchmarks._common import jpeg_views, machine, memory_mib, process_tree, serve

VIEWS_PER_INSPECTION = 6
BATCH = 8

Step = tuple[Callable[[], object], int]  # one unit of work, and how many items it does


# --- the parts alone: one process per CPU, started together ---------------------------------

def decoding(views: list[bytes], tile_size: int) -> Step:
    from authentiq.pipeline.preprocess import decode_probed, probe

    photos = itertools.cycle(views)
    return (lambda: decode_probed(probe(next(photos)), tile_size=tile_size)), 1


def model(path: Path, threads: int, batch: int) -> Step:
    from authentiq.inference.backends.onnxruntime import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(path, intra_op_threads=threads, max_batch_size=batch)
    h, w = backend.spec.input_hw
    x = np.random.default_rng(0).normal(0, 1, (batch, 3, h, w)).astype(np.float32)
    return (lambda: backend.run(x)), batch


def _timed(prepare: Callable[..., Step], args: tuple[Any, ...], seconds: float,
           barrier: Barrier, results: Any) -> None:
    step, units = prepare(*args)
    for _ in range(3):
        step()  # warm-up: caches, ONNX Runtime's first runs
    barrier.wait()
    start = time.perf_counter()
    done = 0
    while time.perf_counter() - start < seconds:
        step()
        done += units
    results.put(done / (time.perf_counter() - start))


def in_processes(n: int, prepare: Callable[..., Step], args: tuple[Any, ...], seconds: float) -> float:
    """Items per second of ``n`` processes doing ``prepare``'s step at the same time (a barrier
    starts them together once each has warmed up), summed."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_timed, args=(prepare, args, seconds, barrier, results))
             for _ in range(n)]
    for p in procs:
        p.start()
    rates = [results.get(timeout=seconds + 300) for _ in procs]
    for p in procs:
        p.join()
    return float(sum(rates))


# --- the service: closed-loop clients on keep-alive connections -----------------------------

class Connection:
    """One keep-alive HTTP/1.1 connection that sends pre-encoded requests and reads the status
    and body of each answer: no HTTP library, no encoding, so the client's CPU stays small."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def send(self, raw: bytes) -> int:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        writer.write(raw)
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).lower()
        start = head.index(b"\r\ncontent-length:") + len(b"\r\ncontent-length:")
        await reader.readexactly(int(head[start:head.index(b"\r\n", start)]))
        if b"\r\nconnection: close" in head:
            self.close()
        return int(head[9:12])

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


@dataclass
class Level:
    concurrency: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # 201s only
    statuses: Counter[int] = field(default_factory=Counter)
    client_cpu: float = 0.0  # CPU seconds of this process (the client) during the run
    server_cpu: float = 0.0  # CPU seconds of the server's processes during the run

    @property
    def rate(self) -> float:
        return self.statuses[201] / self.seconds

    def ms(self, q: float) -> float:
        return float(np.percentile(self.latencies, q) * 1000) if self.latencies else float("nan")


Files = list[tuple[str, tuple[str, bytes, str]]]


def photographed(items: int, size: tuple[int, int], grain: float) -> list[tuple[Files, dict[str, str]]]:
    """Each item's six views as phone-size JPEGs, with the brand and model it claims."""
    out = []
    for seed in range(items):
        item = make_item(500_000 + seed, counterfeit=seed % 2 == 1)
        out.append((jpeg_views(item, size, grain=grain, seed=seed),
                    {"brand": item.brand, "model": item.model}))
    return out


def encoded(url: str, files: Files, form: dict[str, str]) -> bytes:
    """A whole HTTP/1.1 inspection request, ready to write to a socket."""
    request = httpx.Request("POST", url + "/v1/inspections", files=files, data=form)
    body = request.read()
    head = (f"POST /v1/inspections HTTP/1.1\r\nhost: {request.url.netloc.decode()}\r\n"
            f"content-type: {request.headers['content-type']}\r\n"
            f"content-length: {len(body)}\r\n\r\n")
    return head.encode() + body


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / os.sysconf("SC_CLK_TCK")


async def closed_loop(url: str, raw: list[bytes], concurrency: int, seconds: float,
                      server_pid: int) -> Level:
    host, port = url.removeprefix("http://").split(":")
    level = Level(concurrency)
    pids = process_tree(server_pid)
    end = time.perf_counter() + seconds

    async def client(k: int) -> None:
        connection = Connection(host, int(port))
        i = k
        try:
            while time.perf_counter() < end:
                t = time.perf_counter()
                status = await connection.send(raw[i % len(raw)])
                level.statuses[status] += 1
                if status == 201:
                    level.latencies.append(time.perf_counter() - t)
                i += concurrency
        finally:
            connection.close()

    cpu, server, start = time.process_time(), cpu_seconds(pids), time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(concurrency)))
    level.seconds = time.perf_counter() - start
    level.client_cpu, level.server_cpu = time.process_time() - cpu, cpu_seconds(pids) - server
    return level


def sweep(url: str, server_pid: int, raw: list[bytes], levels: list[int], seconds: float) -> list[Level]:
    out = []
    for c in levels:
        asyncio.run(closed_loop(url, raw, c, min(3.0, seconds / 3), server_pid))  # warm-up
        out.append(asyncio.run(closed_loop(url, raw, c, seconds, server_pid)))
    return out


# --- the run --------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="per measurement")
    parser.add_argument("--photo", default="1600x1200", help="view size in pixels, WxH")
    parser.add_argument("--grain", type=float, default=4.0,
                        help="sensor noise σ in 8-bit levels (0: a plain upscale)")
    parser.add_argument("--items", type=int, default=8, help="distinct items the clients cycle through")
    parser.add_argument("--concurrency", help="clients, comma-separated (default: 1, 2, 4 and 8 "
                                              "per CPU)")
    parser.add_argument("--workers", help="serve --workers, comma-separated: one service run "
                                          "each (default: one run with serve's default)")
    parser.add_argument("--threads", type=int, help="AUTHENTIQ_PREPROCESS_WORKERS and "
                                                    "AUTHENTIQ_ORT_THREADS of every worker")
    args = parser.parse_args()
    cpus = available_cpus()
    levels = [int(c) for c in args.concurrency.split(",")] if args.concurrency else \
        [1, 2 * cpus, 4 * cpus, 8 * cpus]
    counts = [int(n) for n in args.workers.split(",")] if args.workers else [None]
    width, _, height = args.photo.partition("x")
    if not (width.isdigit() and height.isdigit()):
        parser.error(f"--photo must look like 1600x1200, not {args.photo!r}")
    size = int(width), int(height)
    load_before = os.getloadavg()

    from authentiq.contract.model_spec import read_spec

    spec = read_spec(DEFAULT_MODEL)
    items = photographed(args.items, size, args.grain)
    views = [data for files, _ in items for _, (_, data, _) in files]
    d_views = in_processes(cpus, decoding, (views, spec.tile_size), args.seconds)
    d = d_views / VIEWS_PER_INSPECTION
    m_session = in_processes(1, model, (DEFAULT_MODEL, cpus, BATCH), args.seconds)
    m_per_cpu = in_processes(cpus, model, (DEFAULT_MODEL, 1, BATCH), args.seconds)
    m = max(m_session, m_per_cpu)
    limit = 1 / (1 / d + 1 / m)

    runs: list[tuple[int, int, list[Level], float]] = []
    settings = {"MAX_IN_FLIGHT_PER_CLIENT": str(2 * max(levels))}
    if args.threads:
        settings |= {"PREPROCESS_WORKERS": str(args.threads), "ORT_THREADS": str(args.threads)}
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            workers = n or default_workers(cpus)
            serve_args = ("--workers", str(n)) if n else ()
            with serve(f"{tmp}/{workers}", settings, serve_args) as server:
                raw = [encoded(server.url, files, form) for files, form in items]
                result = sweep(server.url, server.proc.pid, raw, levels, args.seconds)
                memory = sum(memory_mib(p) for p in process_tree(server.proc.pid))
            runs.append((workers, args.threads or thread_share(cpus, workers), result, memory))

    print(f"# Ceiling: the pipeline's limit and the service ({machine()}; {cpus} CPUs available)\n")
    view_kb = np.mean([len(v) for v in views]) / 1e3
    print(f"Photos: {args.items} synthetic items × {VIEWS_PER_INSPECTION} views, {size[0]}×{size[1]} "
          f"JPEG q90, upscaled with sensor grain σ={args.grain:g} (mean {view_kb:.0f} kB a view, "
          f"{VIEWS_PER_INSPECTION * view_kb / 1e3:.1f} MB a request); {args.seconds:g} s per "
          f"measurement; load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after "
          f"(other work on the machine shows here).\n")
    print("| part | how | rate | inspections/s |\n|---|---|---:|---:|")
    print(f"| D | decode only (probe + decode_probed, DCT-scaled to 256 px), {cpus} processes | "
          f"{d_views:.0f} views/s | {d:.1f} |")
    print(f"| M | INT8 CPU model, batch {BATCH}, one session × {cpus} threads | "
          f"{m_session:.0f} mosaics/s | {m_session:.1f} |")
    print(f"| M | INT8 CPU model, batch {BATCH}, {cpus} single-threaded sessions | "
          f"{m_per_cpu:.0f} mosaics/s | {m_per_cpu:.1f} |")
    print(f"| L | 1 / (1/D + 1/M), M = {m:.0f} | | **{limit:.1f}** |")
    print(f"\nThe service: `authentiq serve` with default settings (serve's default on "
          f"{cpus} CPUs: {default_workers(cpus)} workers × {thread_share(cpus, default_workers(cpus))} "
          f"threads), SQLite and blobs in a temporary folder, the shipped references; "
          f"AUTHENTIQ_MAX_IN_FLIGHT_PER_CLIENT raised to {2 * max(levels)} (one client address "
          f"sends everything). The client is one asyncio process on the same CPUs (its CPU time "
          f"is in the table): the service had that much less CPU than D and M.\n")
    print("| workers × threads | concurrency | inspections/s | p50 ms | p95 ms | non-201 | "
          "server CPUs busy | client CPUs busy |\n|---|---:|---:|---:|---:|---:|---:|---:|")
    for workers, threads, result, _ in runs:
        for lv in result:
            bad = sum(v for s, v in lv.statuses.items() if s != 201)
            print(f"| {workers} × {threads} | {lv.concurrency} | {lv.rate:.1f} | {lv.ms(50):.0f} | "
                  f"{lv.ms(95):.0f} | {bad} | {lv.server_cpu / lv.seconds:.2f} | "
                  f"{lv.client_cpu / lv.seconds:.2f} |")
    print("\n| workers × threads | best inspections/s | at concurrency | p50 ms | p95 ms | "
          "service / L | p50 ms at concurrency 1 | server memory (PSS) MiB |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|")
    for workers, threads, result, memory in runs:
        best = max(result, key=lambda lv: lv.rate)
        one = next((f"{lv.ms(50):.0f}" for lv in result if lv.concurrency == 1), "-")
        print(f"| {workers} × {threads} | {best.rate:.1f} | {best.concurrency} | {best.ms(50):.0f} | "
              f"{best.ms(95):.0f} | **{best.rate / limit:.2f}** | {one} | {memory:.0f} |")


if __name__ == "__main__":
    main()
