"""Where a saturated ``authentiq serve`` spends its CPU: a py-spy profile, as shares of busy
samples by stage.

Starts ``authentiq serve`` (default settings, or ``--workers N``), drives it with the ceiling
benchmark's closed-loop clients and photos, and once warm attaches py-spy to the server and its
worker processes for ``--seconds``. py-spy leaves idle threads out, so the samples are where the
CPUs were busy. Each sample goes to the stage of its innermost frame that names one (a heatmap's
WebP encoding is *heatmap: WebP*, a pydantic call inside the report store is *persistence*),
and the table sums them. The collapsed stacks are written to ``--out`` (flamegraph.pl or
https://www.speedscope.app read them).

    pip install -e ".[bench]"      # py-spy (or: pip install py-spy)
    .venv/bin/python -m benchmarks.profile_server [--seconds 20] [--concurrency 8]
        [--workers 1] [--out var/profile.txt]

py-spy must be allowed to read the server's memory: the same user, and on hosts with Yama
``kernel.yama.ptrace_scope`` ≤ 1 (or CAP_SYS_PTRACE in a container).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

from authentiq.cli.serving import decode_threads, default_workers
from authentiq.settings import available_cpus
from benchmarks._common import machine, serve
from benchmarks.ceiling import closed_loop, encoded, photographed

# (stage, pattern on "function (file:line)"): a sample's stage is that of its innermost frame
# matching one, tried in this order. Generic code (Pillow's core, NumPy, pydantic, asyncio,
# thread pools) matches none, so it counts for the stage that called it.
STAGES: list[tuple[str, str]] = [
    ("heatmap: WebP encoding", r"WebPImagePlugin\.py|^_encode \(.*heatmap\.py"),
    ("heatmap: captions", r"ImageDraw\.py|ImageFont\.py|^_(captioned|font) \(.*heatmap\.py"),
    ("heatmap: blending and the rest", r"authentiq/pipeline/heatmap\.py"),
    ("decoding", r"authentiq/pipeline/preprocess\.py"),
    ("quality check and view gate", r"authentiq/pipeline/(quality|view_gate)\.py"),
    ("ONNX Runtime (the model)", r"onnxruntime/"),
    ("stitching, batching, collate", r"authentiq/pipeline/stitch\.py|authentiq/inference/"),
    ("reference search", r"authentiq/pipeline/(similarity|reference_index)\.py"),
    ("verdict", r"authentiq/pipeline/verdict\.py"),
    ("persistence (rows, blob files)", r"authentiq/storage/|sqlalchemy/|sqlite3/|sqlmodel/"),
    ("metrics", r"prometheus_client/|authentiq/api/metrics\.py"),
    ("HTTP: multipart parsing", r"python_multipart/|multipart/|formparsers\.py|authentiq/api/uploads\.py"),
    ("HTTP: server, routing, event loop", r"uvicorn/|h11/|starlette/|fastapi/|authentiq/api/"),
    ("inspection (the rest of the pipeline)", r"authentiq/pipeline/"),
]
GROUPS = {"heatmap": "heatmap rendering (all of it)", "HTTP": "HTTP and multipart (all of it)"}
# A thread waiting (epoll, a lock, an empty work queue) uses no CPU; py-spy usually leaves such
# samples out, but not those it catches in the instant the thread wakes up.
WAITING = re.compile(r"^((Epoll|Poll|Select|Kqueue)Selector\.select|Condition\.wait|Event\.wait|"
                     r"Queue\.get|SimpleQueue\.get) \(|^_worker \(concurrent/futures/thread\.py")
OTHER = "other (event loop hand-offs, threads, start-up)"


def stage_of(stack: list[str]) -> str | None:
    """The stage of one sample's stack (outermost frame first); None: the thread was waiting."""
    if WAITING.search(stack[-1]):
        return None
    for frame in reversed(stack):  # innermost first
        for stage, pattern in COMPILED:
            if pattern.search(frame):
                return stage
    return OTHER


COMPILED = [(stage, re.compile(pattern)) for stage, pattern in STAGES]


def shares(collapsed: str) -> tuple[Counter[str], int]:
    """Busy samples per stage, and the samples left out as waiting, from py-spy's raw
    (collapsed) output: ``frame;frame;... count`` a line."""
    per_stage: Counter[str] = Counter()
    waiting = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stage = stage_of(stack.split(";"))
            if stage is None:
                waiting += int(count)
            else:
                per_stage[stage] += int(count)
    return per_stage, waiting


async def profile(url: str, pid: int, raw: list[bytes], args: argparse.Namespace,
                  out: Path) -> tuple[float, str]:
    warm = 5.0
    load = asyncio.create_task(closed_loop(url, raw, args.concurrency, warm + args.seconds + 3, pid))
    await asyncio.sleep(warm)
    spy = await asyncio.create_subprocess_exec(
        args.py_spy, "record", "--pid", str(pid), "--subprocesses", "--nonblocking",
        "--rate", str(args.rate),
        "--duration", str(int(args.seconds)), "--format", "raw", "--output", str(out),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    said, _ = await spy.communicate()
    level = await load
    if spy.returncode != 0 or not out.is_file():
        sys.exit(f"py-spy failed ({spy.returncode}): {said.decode(errors='replace')[-2000:]}")
    text = said.decode(errors="replace")
    return level.rate, next((line.removeprefix("py-spy> ") for line in text.splitlines()
                             if "Samples:" in line), "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20, help="profiled seconds")
    parser.add_argument("--concurrency", type=int, default=8, help="closed-loop clients")
    parser.add_argument("--workers", type=int, help="serve --workers (default: serve's own)")
    parser.add_argument("--photo", default="1600x1200", help="view size in pixels, WxH")
    parser.add_argument("--grain", type=float, default=4.0, help="sensor noise σ (benchmarks.ceiling)")
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--out", default="var/profile.txt", help="collapsed stacks (py-spy raw)")
    beside = Path(sys.executable).parent / "py-spy"  # the venv's, when not on PATH
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or str(beside), help="its path")
    args = parser.parse_args()
    if not Path(args.py_spy).is_file():
        sys.exit('py-spy is not installed: pip install -e ".[bench]" (or pip install py-spy)')
    width, _, height = args.photo.partition("x")
    items = photographed(8, (int(width), int(height)), args.grain)
    cpus = available_cpus()
    workers = args.workers or default_workers(cpus)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = {"MAX_IN_FLIGHT_PER_CLIENT": str(2 * args.concurrency)}
    with tempfile.TemporaryDirectory() as tmp, \
            serve(tmp, settings, ("--workers", str(workers))) as server:
        raw = [encoded(server.url, files, form) for files, form in items]
        rate, summary = asyncio.run(profile(server.url, server.proc.pid, raw, args, out))
    per_stage, waiting = shares(out.read_text(errors="replace"))
    total = sum(per_stage.values())
    print(f"# Profile at saturation ({machine()})\n\n`authentiq serve` with default settings, "
          f"{workers} worker(s) × {decode_threads(cpus, workers)} decoding threads, "
          f"{args.concurrency} closed-loop clients, six {args.photo} photos per inspection (grain "
          f"σ={args.grain:g}); py-spy at {args.rate} Hz for {args.seconds:g} s ({summary}): "
          f"{total} busy samples, {waiting} of waiting threads left out; {rate:.1f} inspections/s "
          f"while profiled. Collapsed stacks: {out}\n")
    print("| stage | share of busy samples |\n|---|---:|")
    groups: Counter[str] = Counter()
    for stage, n in per_stage.items():
        prefix = stage.split(":")[0]
        if prefix in GROUPS:
            groups[GROUPS[prefix]] += n
    rows = {stage: 0 for stage, _ in STAGES} | dict(per_stage) | dict(groups)  # 0 % rows too
    for stage, n in sorted(rows.items(), key=lambda kv: -kv[1]):
        print(f"| {stage} | {100 * n / total:.1f}% |")


if __name__ == "__main__":
    main()
