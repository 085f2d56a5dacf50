"""The default model on the CPU: FP32 vs both INT8 flavours, throughput at batch 1/8/32, and
accuracy on held-out synthetic items.

    .venv/bin/python -m benchmarks.model [--items 2000] [--threads 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from authentiq.inference.backends.onnxruntime import OnnxRuntimeBackend
from authentiq.modelling.model_eval import evaluate_models
from benchmarks._common import machine, timed

ENGINES = Path(__file__).resolve().parents[1] / "engines"
FLAVOURS = ("fp32", "int8-cpu", "int8-trt")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads; 0 = all cores")
    args = parser.parse_args()
    print(f"# Default model on the CPU ({machine()}, ORT threads={args.threads or 'all'})\n")
    print("| flavour | batch | mosaics/s | ms per batch (median) | vs FP32 |\n|---|---|---|---|---|")
    base: dict[int, float] = {}
    for flavour in FLAVOURS:
        backend = OnnxRuntimeBackend(ENGINES / f"authentiq-default.{flavour}.onnx",
                                     intra_op_threads=args.threads)
        h, w = backend.spec.input_hw
        for batch in (1, 8, 32):
            x = np.random.default_rng(0).normal(0, 1, (batch, 3, h, w)).astype(np.float32)
            times = timed(lambda x=x, backend=backend: backend.run(x), repeat=max(5, 40 // batch))
            med = float(np.median(times))
            rate = batch / med
            base.setdefault(batch, rate) if flavour == "fp32" else None
            print(f"| {flavour} | {batch} | {rate:.1f} | {med * 1000:.1f} | {rate / base[batch]:.2f}× |")
    print(f"\n# Accuracy on {args.items} held-out synthetic items\n")
    print(evaluate_models([ENGINES / f"authentiq-default.{f}.onnx" for f in FLAVOURS], items=args.items))


if __name__ == "__main__":
    main()
