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
        [--concurrency 1,4,8,16] [--workers 1,2,3,2x2] [--rounds 3]

``--workers`` compares several services instead of serve's default: ``N`` is ``serve --workers
N`` (each worker with its share of the threads), ``NxT`` the same with T decoding threads each
(AUTHENTIQ_PREPROCESS_WORKERS; ONNX Runtime keeps its share), ``default`` serve's default;
``:KEY=VALUE`` adds a setting (``16:REUSE_PORT=false``: one listening socket shared by the
workers, as before SO_REUSEPORT). Their servers run side by side and
``--rounds`` interleaves the measurements; the tables give medians. Besides rates, every part
is also given per CPU-second it used: on a machine shared with other work that figure moves far
less than the rate, and the ratio service / L per CPU-second says how much of its CPU the
service spends on what the limit counts.
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
from contextlib import ExitStack
from dataclasses import dataclass, field
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from authentiq.cli.serving import decode_threads, default_workers
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


@dataclass
class Rate:
    """Items per second of wall time, and per CPU-second the processes used: on a shared
    machine the first drops when other work takes CPUs, the second much less."""

    per_s: float
    per_cpu_s: float


def _timed(prepare: Callable[..., Step], args: tuple[Any, ...], seconds: float,
           barrier: Barrier, results: Any) -> None:
    step, units = prepare(*args)
    for _ in range(3):
        step()  # warm-up: caches, ONNX Runtime's first runs
    barrier.wait()
    start, cpu = time.perf_counter(), time.process_time()  # every thread of this process
    done = 0
    while time.perf_counter() - start < seconds:
        step()
        done += units
    results.put((done, time.perf_counter() - start, time.process_time() - cpu))


def in_processes(n: int, prepare: Callable[..., Step], args: tuple[Any, ...], seconds: float) -> Rate:
    """``n`` processes doing ``prepare``'s step at the same time (a barrier starts them together
    once each has warmed up): their summed rate, and items per CPU-second."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_timed, args=(prepare, args, seconds, barrier, results))
             for _ in range(n)]
    for p in procs:
        p.start()
    done = [results.get(timeout=seconds + 300) for _ in procs]
    for p in procs:
        p.join()
    return Rate(sum(items / wall for items, wall, _ in done),
                sum(items for items, _, _ in done) / sum(cpu for _, _, cpu in done))


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


@dataclass(frozen=True)
class Config:
    """One way to run the service: ``serve --workers`` (None: serve's default), decoding
    threads per worker (None: serve's share; ONNX Runtime keeps serve's share either way) and
    other settings (AUTHENTIQ_* without the prefix)."""

    workers: int | None = None
    threads: int | None = None
    env: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Config:
        """``N``, ``NxT`` or ``default``, then ``:KEY=VALUE`` settings (``16:REUSE_PORT=false``)."""
        head, *pairs = text.split(":")
        workers, _, threads = head.partition("x")
        env = tuple(tuple(p.split("=", 1)) for p in pairs)  # type: ignore[misc]
        return cls(None if workers == "default" else int(workers),
                   int(threads) if threads else None, env)

    def label(self, cpus: int) -> str:
        workers = self.workers or default_workers(cpus)
        extra = "".join(f" {k}={v}" for k, v in self.env)
        return f"{workers} × {self.threads or decode_threads(cpus, workers)}{extra}"

    def serve_args(self) -> tuple[str, ...]:
        return ("--workers", str(self.workers)) if self.workers else ()

    def settings(self) -> dict[str, str]:
        threads = {"PREPROCESS_WORKERS": str(self.threads)} if self.threads else {}
        return threads | dict(self.env)


@dataclass
class Cell:
    """One configuration at one concurrency, over every round."""

    rounds: list[Level] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return float(np.median([lv.rate for lv in self.rounds]))

    def ms(self, q: float) -> float:
        latencies = [t for lv in self.rounds for t in lv.latencies]
        return float(np.percentile(latencies, q) * 1000) if latencies else float("nan")

    @property
    def server_busy(self) -> float:
        """CPUs the server's processes kept busy, on average."""
        return sum(lv.server_cpu for lv in self.rounds) / sum(lv.seconds for lv in self.rounds)

    @property
    def client_busy(self) -> float:
        return sum(lv.client_cpu for lv in self.rounds) / sum(lv.seconds for lv in self.rounds)

    @property
    def per_cpu_s(self) -> float:
        """Inspections per CPU-second of the server's processes."""
        return sum(lv.statuses[201] for lv in self.rounds) / sum(lv.server_cpu for lv in self.rounds)

    @property
    def failed(self) -> int:
        return sum(n for lv in self.rounds for s, n in lv.statuses.items() if s != 201)


def measure(configs: list[Config], items: list[tuple[Files, dict[str, str]]], levels: list[int],
            seconds: float, rounds: int, base: dict[str, str]) -> tuple[dict[tuple[int, int], Cell],
                                                                         list[float]]:
    """Every configuration's server runs at once (idle while another is measured); each round
    measures every concurrency on each in turn, the order of the configurations rotating, so
    that other work on the machine falls on all of them alike."""
    cells: dict[tuple[int, int], Cell] = {}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        servers = [stack.enter_context(serve(f"{tmp}/{i}", base | c.settings(), c.serve_args()))
                   for i, c in enumerate(configs)]
        raws = [[encoded(s.url, files, form) for files, form in items] for s in servers]
        for r in range(rounds):
            for c in levels:
                for k in range(len(configs)):
                    i = (k + r) % len(configs)
                    url, pid = servers[i].url, servers[i].proc.pid
                    asyncio.run(closed_loop(url, raws[i], c, min(2.0, seconds / 4), pid))  # warm
                    level = asyncio.run(closed_loop(url, raws[i], c, seconds, pid))
                    cells.setdefault((i, c), Cell()).rounds.append(level)
        memory = [sum(memory_mib(p) for p in process_tree(s.proc.pid)) for s in servers]
    return cells, memory


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
    parser.add_argument("--workers", help="services to compare, comma-separated: serve --workers "
                                          "N, or NxT for T threads each, or default; :KEY=VALUE adds a "
                                          "setting (default: serve's default)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every cell this often, interleaved; medians are reported")
    args = parser.parse_args()
    cpus = available_cpus()
    levels = [int(c) for c in args.concurrency.split(",")] if args.concurrency else \
        [1, 2 * cpus, 4 * cpus, 8 * cpus]
    configs = [Config.parse(c) for c in args.workers.split(",")] if args.workers else [Config()]
    width, _, height = args.photo.partition("x")
    if not (width.isdigit() and height.isdigit()):
        parser.error(f"--photo must look like 1600x1200, not {args.photo!r}")
    size = int(width), int(height)
    load_before = os.getloadavg()

    from authentiq.contract.model_spec import read_spec

    spec = read_spec(DEFAULT_MODEL)
    items = photographed(args.items, size, args.grain)
    views = [data for files, _ in items for _, (_, data, _) in files]
    decode = in_processes(cpus, decoding, (views, spec.tile_size), args.seconds)
    d = Rate(decode.per_s / VIEWS_PER_INSPECTION, decode.per_cpu_s / VIEWS_PER_INSPECTION)
    m_session = in_processes(1, model, (DEFAULT_MODEL, cpus, BATCH), args.seconds)
    m_per_cpu = in_processes(cpus, model, (DEFAULT_MODEL, 1, BATCH), args.seconds)
    m = max(m_session, m_per_cpu, key=lambda r: r.per_s)
    limit = Rate(1 / (1 / d.per_s + 1 / m.per_s), 1 / (1 / d.per_cpu_s + 1 / m.per_cpu_s))
    in_flight = 2 * max(levels)
    cells, memory = measure(configs, items, levels, args.seconds, args.rounds,
                            {"MAX_IN_FLIGHT_PER_CLIENT": str(in_flight)})

    print(f"# Ceiling: the pipeline's limit and the service ({machine()}; {cpus} CPUs available)\n")
    view_kb = np.mean([len(v) for v in views]) / 1e3
    print(f"Photos: {args.items} synthetic items × {VIEWS_PER_INSPECTION} views, {size[0]}×{size[1]} "
          f"JPEG q90, upscaled with sensor grain σ={args.grain:g} (mean {view_kb:.0f} kB a view, "
          f"{VIEWS_PER_INSPECTION * view_kb / 1e3:.1f} MB a request); {args.seconds:g} s per "
          f"measurement, {args.rounds} round(s); load average {load_before[0]:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after (other work on the machine shows here). \"per CPU-s\": "
          f"per CPU-second the measured processes used, which other work on the machine "
          f"disturbs far less than the rate.\n")
    print("| part | how | rate | inspections/s | per CPU-s |\n|---|---|---:|---:|---:|")
    print(f"| D | decode only (probe + decode_probed, DCT-scaled to 256 px), {cpus} processes | "
          f"{decode.per_s:.0f} views/s | {d.per_s:.1f} | {d.per_cpu_s:.1f} |")
    for label, r in ((f"one session × {cpus} threads", m_session),
                     (f"{cpus} single-threaded sessions", m_per_cpu)):
        print(f"| M | INT8 CPU model, batch {BATCH}, {label} | {r.per_s:.0f} mosaics/s | "
              f"{r.per_s:.1f} | {r.per_cpu_s:.1f} |")
    print(f"| L | 1 / (1/D + 1/M), M = the faster | | **{limit.per_s:.1f}** | {limit.per_cpu_s:.1f} |")
    workers = default_workers(cpus)
    print(f"\nThe service: `authentiq serve` with default settings (on {cpus} CPUs serve runs "
          f"{workers} workers × {decode_threads(cpus, workers)} decoding threads), SQLite and "
          f"blobs in a temporary folder, the shipped references; AUTHENTIQ_MAX_IN_FLIGHT_PER_CLIENT raised "
          f"to {in_flight} (one client address sends everything). The client is one asyncio "
          f"process on the same CPUs (its CPU in the table): the service had that much less CPU "
          f"than D and M. Every configuration's server was up during the whole run (idle while "
          f"not measured).\n")
    print("| workers × decoding threads | concurrency | inspections/s | p50 ms | p95 ms | non-201 | "
          "server CPUs busy | per server CPU-s | client CPUs busy |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for i, config in enumerate(configs):
        for c in levels:
            cell = cells[(i, c)]
            print(f"| {config.label(cpus)} | {c} | {cell.rate:.1f} | {cell.ms(50):.0f} | "
                  f"{cell.ms(95):.0f} | {cell.failed} | {cell.server_busy:.2f} | "
                  f"{cell.per_cpu_s:.2f} | {cell.client_busy:.2f} |")
    print("\n| workers × decoding threads | best inspections/s | at concurrency | p50 ms | p95 ms | "
          "service / L | the same per CPU-s | p50 ms at concurrency 1 | server memory (PSS) MiB |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for i, config in enumerate(configs):
        best_c = max(levels, key=lambda c: cells[(i, c)].rate)
        best = cells[(i, best_c)]
        one = f"{cells[(i, 1)].ms(50):.0f}" if 1 in levels else "-"
        print(f"| {config.label(cpus)} | {best.rate:.1f} | {best_c} | {best.ms(50):.0f} | "
              f"{best.ms(95):.0f} | **{best.rate / limit.per_s:.2f}** | "
              f"{best.per_cpu_s / limit.per_cpu_s:.2f} | {one} | {memory[i]:.0f} |")


if __name__ == "__main__":
    main()
