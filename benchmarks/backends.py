"""Backend overhead: raw ONNX Runtime vs our backend vs our backend behind the batcher, on the CPU.

For each flavour and batch size B: (1) ``session.run`` on a prepared batch — ONNX Runtime alone,
outside the service; (2) ``OnnxRuntimeBackend.run`` on the same batch; (3) B concurrent
``Batcher.submit`` calls that become one batch (collate + backend + split, off the event loop).
The three are measured interleaved, round by round, so that noise hits them alike.

    .venv/bin/python -m benchmarks.backends [--rounds 15] [--threads 0]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from authentiq.contract.model_spec import INPUT_NAME, OUTPUT_NAMES
from authentiq.inference.backends.onnxruntime import OnnxRuntimeBackend
from authentiq.inference.batcher import Batcher
from authentiq.settings import BatcherSettings
from benchmarks._common import machine

ENGINES = Path(__file__).resolve().parents[1] / "engines"


def measure(rounds: int, paths: dict[str, Callable[[], object]]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in paths}
    for fn in paths.values():  # warm-up
        fn()
    for _ in range(rounds):
        for name, fn in paths.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--batches", default="1,8,32")
    args = parser.parse_args()
    print(f"# Backend overhead on the CPU ({machine()}, ORT threads={args.threads or 'all'})\n")
    print("| flavour | batch | ORT alone mosaics/s | backend mosaics/s | via batcher mosaics/s | "
          "batcher p50 ms | batcher / ORT alone |")
    print("|---|---|---|---|---|---|---|")
    loop = asyncio.new_event_loop()
    for flavour in ("fp32", "int8-cpu"):
        backend = OnnxRuntimeBackend(ENGINES / f"authentiq-default.{flavour}.onnx",
                                     intra_op_threads=args.threads, max_batch_size=32)
        h, w = backend.spec.input_hw
        for b in (int(x) for x in args.batches.split(",")):
            rows = [np.random.default_rng(i).normal(0, 1, (3, h, w)).astype(np.float32)
                    for i in range(b)]
            batch = np.stack(rows)
            batcher = Batcher(backend, BatcherSettings(max_batch_size=32, max_queue_delay_ms=1,
                                                       adaptive_batching=False,
                                                       preferred_batch_sizes=(b,)))
            loop.run_until_complete(batcher.start())

            async def via_batcher(batcher: Batcher = batcher, rows: list[np.ndarray] = rows) -> None:
                await asyncio.gather(*(batcher.submit(r) for r in rows))

            times = measure(args.rounds, {
                "raw": lambda x=batch, be=backend: be.session.run(list(OUTPUT_NAMES), {INPUT_NAME: x}),
                "backend": lambda x=batch, be=backend: be.run(x),
                "batcher": lambda: loop.run_until_complete(via_batcher()),
            })
            loop.run_until_complete(batcher.close())
            rate = {k: b / statistics.median(v) for k, v in times.items()}
            print(f"| {flavour} | {b} | {rate['raw']:.1f} | {rate['backend']:.1f} | "
                  f"{rate['batcher']:.1f} | {statistics.median(times['batcher']) * 1000:.1f} | "
                  f"{rate['batcher'] / rate['raw']:.0%} |")
        backend.close()
    loop.close()


if __name__ == "__main__":
    main()
