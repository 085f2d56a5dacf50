"""Check the cuda-bindings layer and the TensorRT backend's runtime path on a real NVIDIA GPU.

It first checks that the cuda-bindings it runs is inside the pin of the ``[tensorrt]`` extra
(pyproject.toml) and stops otherwise (``--any-cuda-bindings`` to run anyway): a check run on
another version says nothing about what users install.

Part 1 exercises ``authentiq.inference.backends.cuda`` alone: device query, pinned and device allocation,
pinned copies both ways, stream ordering (H2D → D2D → D2H queued without syncs), buffer reuse
across batches of changing size, worker threads with their own streams, error paths and copy
bandwidth. Part 2 runs ``TensorRTBackend`` — our real class — with a STAND-IN for TensorRT's
runtime (``StandInTensorRT`` below, a CuPy program behind the ``IExecutionContext`` calls we use:
``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``, ``get_tensor_shape``). It is a
stand-in because TensorRT cannot run on this machine (not installed; TensorRT-RTX refuses
compute capability 9.0): everything around the engine call — I/O discovery, warm-up, per-instance
contexts/streams/buffers, pinned staging, concurrent instances — is ours and runs for real.
Part 3, in a child process, makes the stand-in's kernel write to an illegal address: a real sticky
CUDA error, which must fail the backend at once (``BackendFailed``, ``failure()`` set, the next
batch refused without touching CUDA) and let it close.

    python scripts/gpu_check.py          (needs cuda-bindings; parts 2 and 3 need CuPy)
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import subprocess
import sys
import threading
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from authentiq.contract.model_spec import ModelSpec, ViewSpec
from authentiq.inference.backends import cuda

ROOT = Path(__file__).resolve().parents[1]

RESULTS: list[tuple[str, str]] = []


def record(check: str, outcome: str) -> None:
    RESULTS.append((check, outcome))
    print(f"- {check}: {outcome}", flush=True)


def expect_error(fn: Any, kind: type[Exception]) -> str:
    try:
        fn()
    except kind as exc:
        return f"raised {kind.__name__}: {getattr(exc, 'detail', exc)}"
    raise AssertionError(f"expected {kind.__name__}")


# --- versions ----------------------------------------------------------------------------------


def versions(allow_any: bool) -> None:
    from packaging.requirements import Requirement

    bindings = importlib.import_module("cuda.bindings")

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pin = next(Requirement(r) for r in extras["tensorrt"] if r.startswith("cuda-bindings"))
    installed = importlib.metadata.version("cuda-bindings")
    cudart = cuda.runtime()
    driver = cuda.check(cudart.cudaDriverGetVersion(), "cudaDriverGetVersion")
    inside = pin.specifier.contains(installed)
    record("cuda-bindings", f"{installed} from {Path(bindings.__file__).parent}; the [tensorrt] "
                            f"extra pins {pin}: {'inside' if inside else 'OUTSIDE'} the pin")
    record("CUDA driver", f"{driver // 1000}.{driver % 1000 // 10} (cudaDriverGetVersion {driver})")
    try:
        import cupy

        record("CuPy", f"{cupy.__version__}, CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}")
    except ImportError:
        pass
    if not inside and not allow_any:
        raise SystemExit(f"cuda-bindings {installed} is outside the pin {pin}: install a pinned "
                         f"one (or --any-cuda-bindings)")


# --- part 1: the cuda-bindings layer -----------------------------------------------------------


def part1() -> None:
    gpus = cuda.gpus()
    record("devices", "; ".join(f"{g.index}: {g.label}, {g.memory_bytes / 2**30:.0f} GiB" for g in gpus))
    cuda.use_device(0)
    max_bytes = 32 * 3 * 256 * 384 * 4  # the default model's input at batch 32
    rng = np.random.default_rng(0)
    with cuda.Stream() as stream, cuda.PinnedBuffer(max_bytes) as src, \
            cuda.PinnedBuffer(max_bytes) as dst, cuda.DeviceBuffer(max_bytes) as a, \
            cuda.DeviceBuffer(max_bytes) as b:
        sizes = [1, 8, 32, 3, 17, 32, 1] * 5
        for n in sizes:  # reuse the same buffers for batches of changing size
            shape = (n, 3, 256, 384)
            data = rng.normal(0, 1, shape).astype(np.float32)
            np.copyto(src.view(shape), data)
            dst.view(shape)[...] = np.nan
            nbytes = data.nbytes
            cuda.to_device(a, src, nbytes, stream)  # queued, no sync in between:
            cuda.device_copy(b, a, nbytes, stream)  # stream order must hold
            cuda.to_host(dst, b, nbytes, stream)
            stream.synchronize()
            if not np.array_equal(dst.view(shape), data):
                raise AssertionError(f"round trip of batch {n} differs")
        record("pinned round trips H2D → D2D → D2H, one stream, no intermediate sync",
               f"{len(sizes)} batches of sizes {sorted(set(sizes))} bit-exact, buffers reused")

        t = time.perf_counter()
        reps = 20
        for _ in range(reps):
            cuda.to_device(a, src, max_bytes, stream)
        stream.synchronize()
        h2d = reps * max_bytes / (time.perf_counter() - t) / 1e9
        t = time.perf_counter()
        for _ in range(reps):
            cuda.to_host(dst, a, max_bytes, stream)
        stream.synchronize()
        d2h = reps * max_bytes / (time.perf_counter() - t) / 1e9
        pageable = np.empty(max_bytes // 4, np.float32)
        cudart = cuda.runtime()
        t = time.perf_counter()
        for _ in range(reps):
            cuda.check(cudart.cudaMemcpy(a.ptr, pageable.ctypes.data, max_bytes,
                                         cudart.cudaMemcpyKind.cudaMemcpyHostToDevice), "pageable")
        pageable_h2d = reps * max_bytes / (time.perf_counter() - t) / 1e9
        record("copy bandwidth (37.7 MB, batch-32 input)",
               f"pinned H2D {h2d:.1f} GB/s, pinned D2H {d2h:.1f} GB/s, pageable H2D {pageable_h2d:.1f} GB/s")

    def worker(k: int) -> int:
        cuda.use_device(0)
        shape = (8, 3, 256, 384)
        nbytes = int(np.prod(shape)) * 4
        local = np.random.default_rng(k)
        with cuda.Stream() as s, cuda.PinnedBuffer(nbytes) as up, cuda.PinnedBuffer(nbytes) as down, \
                cuda.DeviceBuffer(nbytes) as d:
            for _ in range(25):
                data = local.normal(0, 1, shape).astype(np.float32)
                np.copyto(up.view(shape), data)  # a pinned source must not change until the
                down.view(shape)[...] = 0  # stream has synchronised: separate buffers each way
                cuda.to_device(d, up, nbytes, s)
                cuda.to_host(down, d, nbytes, s)
                s.synchronize()
                if not np.array_equal(down.view(shape), data):
                    raise AssertionError(f"thread {k}: round trip differs")
        return k

    with ThreadPoolExecutor(8) as pool:
        done = list(pool.map(worker, range(8)))
    record("8 worker threads, own stream + buffers each (no context bound to a thread)",
           f"{len(done)} × 25 round trips bit-exact")

    record("allocation beyond GPU memory", expect_error(lambda: cuda.DeviceBuffer(1 << 50), cuda.CudaError))
    record("invalid device", expect_error(lambda: cuda.use_device(999), cuda.CudaError))
    with cuda.Stream() as s, cuda.PinnedBuffer(1024) as h, cuda.DeviceBuffer(512) as d:
        record("copy larger than the buffer", expect_error(lambda: cuda.to_device(d, h, 1024, s), ValueError))
    with cuda.Stream() as s:
        record("stream handle through get_cuda_native_handle",
               f"{s.ptr:#x} (a non-default stream: {s.ptr != 0})")
    buf = cuda.DeviceBuffer(1024)
    buf.close()
    buf.close()
    record("double close", "second close is a no-op")


# --- part 2: TensorRTBackend with a stand-in for TensorRT's runtime ---------------------------


class StandInTensorRT:
    """STAND-IN for the ``tensorrt`` module: only the runtime calls TensorRTBackend makes.

    The "engine" computes, per row, logits = (mean, -mean), embedding = the first 128 values
    L2-normalised, cam = the first two channels sampled every 16 pixels — a CuPy program reading
    and writing the device addresses our backend binds, on the stream our backend passes. With
    ``fault`` set, it launches a kernel that writes to an illegal address instead.
    """

    def __init__(self) -> None:
        import cupy as cp

        self.cp = cp
        self.TensorIOMode = SimpleNamespace(INPUT="in", OUTPUT="out")
        self.Severity = SimpleNamespace(VERBOSE=0, INFO=1, WARNING=2, ERROR=3, INTERNAL_ERROR=4)
        self.ILogger = type("ILogger", (), {"Severity": self.Severity, "__init__": lambda self: None})
        self.__version__ = "10.8.0.43"
        self.fault = False

    def Runtime(self, logger: Any) -> Any:
        fake = self
        return SimpleNamespace(deserialize_cuda_engine=lambda plan: StandInEngine(fake),
                               engine_host_code_allowed=False)


class StandInEngine:
    SHAPES: ClassVar[dict[str, tuple[int, ...]]] = {
        "views": (3, 256, 384), "logits": (2,), "embedding": (128,), "cam": (2, 16, 24)}

    def __init__(self, trt: StandInTensorRT) -> None:
        self.trt = trt
        self.num_io_tensors = 4
        self.executions = 0
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0

    def get_tensor_name(self, i: int) -> str:
        return list(self.SHAPES)[i]

    def get_tensor_mode(self, name: str) -> str:
        return "in" if name == "views" else "out"

    def get_tensor_dtype(self, name: str) -> Any:
        return SimpleNamespace(name="FLOAT")

    def get_tensor_profile_shape(self, name: str, profile: int) -> tuple[tuple[int, ...], ...]:
        s = self.SHAPES[name]
        return (1, *s), (8, *s), (32, *s)

    def create_execution_context(self, runtime_config: Any = None) -> StandInContext:
        return StandInContext(self)


class StandInContext:
    def __init__(self, engine: StandInEngine) -> None:
        self.engine, self.batch, self.addresses = engine, 32, {}

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        self.batch = shape[0]
        return 1 <= shape[0] <= 32

    def set_tensor_address(self, name: str, ptr: int) -> bool:
        self.addresses[name] = ptr
        return True

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return (self.batch, *StandInEngine.SHAPES[name])

    def execute_async_v3(self, stream: int) -> bool:
        cp, e = self.engine.trt.cp, self.engine
        with e.lock:
            e.in_flight += 1
            e.most_in_flight = max(e.most_in_flight, e.in_flight)
        try:
            def tensor(name: str) -> Any:
                shape = self.get_tensor_shape(name)
                size = int(np.prod(shape)) * 4
                mem = cp.cuda.UnownedMemory(self.addresses[name], size, self)
                return cp.ndarray(shape, cp.float32, cp.cuda.MemoryPointer(mem, 0))

            with cp.cuda.ExternalStream(stream):
                if e.trt.fault:  # a kernel writing to address 0x10: cudaErrorIllegalAddress
                    poke = cp.RawKernel(r'extern "C" __global__ void poke(float* p) '
                                        r'{ p[threadIdx.x] = 1.0f; }', "poke")
                    poke((1,), (32,), (np.uint64(0x10),))
                    e.executions += 1
                    return True
                x = tensor("views")
                for _ in range(20):  # some GPU work, so that instances overlap
                    m = x.reshape(self.batch, -1).mean(axis=1)
                tensor("logits")[...] = cp.stack([m, -m], axis=1)
                first = x.reshape(self.batch, -1)[:, :128]
                tensor("embedding")[...] = first / cp.linalg.norm(first, axis=1, keepdims=True)
                tensor("cam")[...] = x[:, :2, ::16, ::16]
            e.executions += 1
            return True
        finally:
            with e.lock:
                e.in_flight -= 1


def expected(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = x.reshape(len(x), -1).mean(axis=1)
    first = x.reshape(len(x), -1)[:, :128]
    return np.stack([m, -m], 1), first / np.linalg.norm(first, axis=1, keepdims=True), x[:, :2, ::16, ::16]


def part2() -> None:
    from authentiq.inference.backends.tensorrt import TensorRTBackend
    from authentiq.inference.backends.tensorrt_lib import TensorRT

    trt = TensorRT(StandInTensorRT(), "tensorrt", "10.8.0.43")
    spec = stand_in_spec()
    gpu = cuda.gpus()[0]
    for instances in (1, 2, 4):
        backend = TensorRTBackend(b"plan", trt, spec, engine_id="stand-in", gpu=gpu,
                                  instances=instances)
        warm = backend.engine.executions
        io = ", ".join(f"{t.name}{'(in)' if t.is_input else ''} {t.max_shape}" for t in backend.io)
        if instances == 1:
            record("I/O discovered from the engine", io)
        record(f"warm-up, {instances} instance(s)", f"{warm} executions (batch 1, 8 and 32 on each) "
                                                   f"before the backend was handed out")
        rng = np.random.default_rng(instances)
        batches = [rng.normal(0, 1, (n, 3, 256, 384)).astype(np.float32)
                   for n in [1, 8, 32, 5, 8, 8, 16, 1] * 4]

        def one(x: np.ndarray, backend: TensorRTBackend = backend) -> bool:
            out = backend.run(x)
            lg, emb, cam = expected(x)
            return (np.allclose(out.logits, lg, atol=1e-4) and np.allclose(out.embedding, emb, atol=1e-4)
                    and np.array_equal(out.cam, cam))

        engine = backend.engine
        engine.most_in_flight = 0
        t = time.perf_counter()
        with ThreadPoolExecutor(instances * 2) as pool:
            ok = list(pool.map(one, batches))
        seconds = time.perf_counter() - t
        record(f"TensorRTBackend, {instances} instance(s), {len(batches)} batches from "
               f"{instances * 2} threads",
               f"{sum(ok)}/{len(ok)} batches correct, {engine.executions - warm} executions, at most "
               f"{engine.most_in_flight} in flight at once, {seconds * 1000:.0f} ms")
        if not all(ok) or engine.most_in_flight > instances:
            raise AssertionError("wrong results or more batches in flight than instances")
        refused = expect_error(lambda b=backend: b.run(np.zeros((33, 3, 256, 384), np.float32)),
                               Exception)
        if instances == 1:
            record("batch beyond the profile's max", refused)
        backend.close()


def stand_in_spec() -> ModelSpec:
    return ModelSpec.model_validate({
        "views": tuple(ViewSpec(name=v) for v in ("a", "b", "c", "d", "e", "f")),
        "grid": (2, 3), "tile_size": 128, "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25),
        "classes": ("authentic", "counterfeit"), "embedding_size": 128,
        "model_name": "stand-in", "model_version": "0", "precision": "int8-trt"})


# --- part 3: a real sticky CUDA error ---------------------------------------------------------


def sticky_child() -> None:
    """In a child process (its CUDA context is lost for good): fault a kernel mid-batch."""
    from authentiq.errors import BackendFailed
    from authentiq.inference.backends.tensorrt import TensorRTBackend
    from authentiq.inference.backends.tensorrt_lib import TensorRT

    module = StandInTensorRT()
    trt = TensorRT(module, "tensorrt", "10.8.0.43")
    backend = TensorRTBackend(b"plan", trt, stand_in_spec(), engine_id="stand-in",
                              gpu=cuda.gpus()[0], instances=2)
    x = np.zeros((4, 3, 256, 384), np.float32)
    result: dict[str, Any] = {"before": len(backend.run(x))}
    module.fault = True
    try:
        backend.run(x)
        result["faulted"] = "no error"
    except BackendFailed as exc:
        result["faulted"] = f"BackendFailed (503): {exc.detail}"
    result["failure"] = backend.failure()
    executions = backend.engine.executions
    t = time.perf_counter()
    try:
        backend.run(x)
        result["next"] = "ran"
    except BackendFailed:
        result["next"] = f"refused in {(time.perf_counter() - t) * 1e6:.0f} µs"
    result["next_engine_calls"] = backend.engine.executions - executions
    backend.close()
    result["closed"] = True
    print(json.dumps(result))


def part3() -> None:
    child = subprocess.run([sys.executable, __file__, "--sticky-child"], capture_output=True,
                           text=True, timeout=300)
    lines = [line for line in child.stdout.splitlines() if line.startswith("{")]
    if child.returncode or not lines:
        raise AssertionError(f"sticky-error child failed ({child.returncode}): {child.stderr[-2000:]}")
    result = json.loads(lines[-1])
    record("batch before the fault", f"{result['before']} rows")
    record("kernel writes to an illegal address mid-batch", result["faulted"])
    record("backend.failure() (→ /readyz 503)", str(result["failure"]))
    record("next batch", f"{result['next']}, {result['next_engine_calls']} engine calls")
    record("close after the sticky error", "returned" if result["closed"] else "raised")
    if not str(result["faulted"]).startswith("BackendFailed") or not result["failure"] or \
            not str(result["next"]).startswith("refused") or result["next_engine_calls"]:
        raise AssertionError(f"sticky error not handled: {result}")


def main() -> None:
    if "--sticky-child" in sys.argv:
        sticky_child()
        return
    print("## versions\n")
    versions(allow_any="--any-cuda-bindings" in sys.argv)
    print("\n## cuda-bindings layer\n")
    part1()
    print("\n## TensorRTBackend with a stand-in TensorRT runtime\n")
    try:
        import cupy  # noqa: F401
    except ImportError:
        record("parts 2 and 3", "skipped: CuPy is not installed")
        return
    part2()
    print("\n## a real sticky CUDA error (child process)\n")
    part3()


if __name__ == "__main__":
    main()
