"""TensorRT backend: one deserialised engine, one execution context + stream + buffers per instance.

The engine is deserialised once. Its I/O (names, dtypes, shapes, the profile's max batch) is read
from the engine, never hard-coded, and checked against the model contract. Each instance (one per
batch the batcher may run at once) owns an execution context, a non-blocking stream, pinned host
buffers and device buffers sized for the profile's max batch and reused for every batch; contexts
share the engine's weights. ``run`` takes a free instance, so copies and compute of different
batches overlap on the GPU.

Before the backend is handed out every instance runs the profile's min, opt and max batch once
(warm-up), so lazy initialisation — TensorRT-RTX compiles its kernels just in time — happens before
``/readyz`` says ready. TensorRT-RTX keeps those kernels in a runtime cache file, loaded at start
and written back after warm-up and at close, so a restart does not compile them again.

A sticky CUDA error (the process's CUDA context is lost) marks the backend failed: every later
batch is refused at once with :class:`BackendFailed` and :meth:`failure` says why, which makes
``/readyz`` answer 503 until the process is restarted.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from authentiq.contract.model_spec import INPUT_NAME, ModelSpec, check_io
from authentiq.errors import BackendFailed, BackendUnavailable, CudaError, InferenceFailed
from authentiq.inference.backends import cuda
from authentiq.inference.backends.base import BackendInfo, Outputs
from authentiq.inference.backends.tensorrt_lib import TensorRT, numpy_dtype, process_logger

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TensorIO:
    name: str
    is_input: bool
    dtype: np.dtype[Any]
    max_shape: tuple[int, ...]  # at the profile's max batch

    @property
    def max_bytes(self) -> int:
        return int(np.prod(self.max_shape)) * self.dtype.itemsize


class _Instance:
    """What one in-flight batch needs: a context, a stream and reusable buffers."""

    def __init__(self, engine: Any, io: list[TensorIO], runtime_config: Any | None) -> None:
        self.context = engine.create_execution_context(runtime_config=runtime_config) \
            if runtime_config is not None else engine.create_execution_context()
        if self.context is None:
            raise BackendUnavailable("TensorRT could not create an execution context")
        self.stream = cuda.Stream()
        self.host = {t.name: cuda.PinnedBuffer(t.max_bytes, t.dtype) for t in io}
        self.device = {t.name: cuda.DeviceBuffer(t.max_bytes) for t in io}
        for name, buf in self.device.items():
            if not self.context.set_tensor_address(name, buf.ptr):
                raise BackendUnavailable(f"TensorRT refused the address of tensor {name!r}")

    def close(self) -> None:
        """The context first (it holds the buffers' addresses), then buffers, then the stream."""
        self.context = None
        for device in self.device.values():
            device.close()
        for pinned in self.host.values():
            pinned.close()
        self.stream.close()


class TensorRTBackend:
    def __init__(self, plan: bytes, trt: TensorRT, spec: ModelSpec, *, engine_id: str,
                 gpu: cuda.Gpu, instances: int = 1, version_compatible: bool = False,
                 runtime_cache: Path | None = None, model_id: str = "") -> None:
        self.trt, self.spec, self.gpu = trt, spec, gpu
        self._failure: str | None = None
        self._logger = process_logger(trt.module)
        cuda.use_device(gpu.index)
        self._runtime, self.engine = deserialize(plan, trt, gpu.label,
                                                 version_compatible=version_compatible)
        self.io = discover_io(self.engine, trt)
        check_io({t.name for t in self.io if t.is_input}, {t.name for t in self.io if not t.is_input},
                 engine_id)
        self.max_batch = self.input.max_shape[0]
        self._cache = RuntimeCache(self.engine, runtime_cache) if trt.rtx else None
        self._instances: queue.Queue[_Instance] = queue.Queue()
        self._all: list[_Instance] = []
        try:
            for _ in range(instances):
                self._all.append(_Instance(self.engine, self.io,
                                           self._cache.config if self._cache else None))
            self.warm_up()
        except BaseException:
            self.close()
            raise
        for instance in self._all:
            self._instances.put(instance)
        self.info = BackendInfo(name=trt.flavour, device=f"cuda:{gpu.index} {gpu.label}",
                                precision=spec.precision, engine_id=engine_id,
                                max_batch_size=self.max_batch, model_id=model_id)
        log.info("%s: engine %s on %s, %d instance(s), max batch %d, warmed up", trt.label,
                 engine_id, gpu.label, instances, self.max_batch)

    @property
    def input(self) -> TensorIO:
        return next(t for t in self.io if t.name == INPUT_NAME)

    def failure(self) -> str | None:
        return self._failure

    def warm_up(self) -> None:
        """Each instance runs the profile's min, opt and max batch once (zeros)."""
        _min, opt, max_shape = self.engine.get_tensor_profile_shape(INPUT_NAME, 0)
        batches = sorted({int(_min[0]), int(opt[0]), int(max_shape[0])})
        shape = self.input.max_shape[1:]
        for instance in self._all:
            for n in batches:
                self._run(instance, np.zeros((n, *shape), np.float32))
        if self._cache is not None:
            self._cache.save()

    def run(self, views: np.ndarray, *, deadline: float | None = None) -> Outputs:
        if self._failure is not None:
            raise BackendFailed(self._failure, retry_after=1)
        n = len(views)
        if not 1 <= n <= self.max_batch:
            raise InferenceFailed(f"batch of {n} is outside the engine's profile (1..{self.max_batch})")
        instance = self._instances.get()  # blocks while every instance is busy
        try:
            cuda.use_device(self.gpu.index)  # worker threads start on device 0
            return self._run(instance, views)
        except CudaError as exc:
            if exc.sticky:
                self._fail(exc)
                raise BackendFailed(self._failure or exc.detail, retry_after=1) from exc
            raise
        finally:
            self._instances.put(instance)

    def _run(self, inst: _Instance, views: np.ndarray) -> Outputs:
        ctx, stream = inst.context, inst.stream
        shape = tuple(views.shape)
        mark = self._logger.mark()
        if not ctx.set_input_shape(INPUT_NAME, shape):
            raise InferenceFailed(f"TensorRT refused input shape {shape}: {self._logger.tail(mark)}")
        host_in = inst.host[INPUT_NAME].view(shape)
        np.copyto(host_in, views, casting="same_kind")
        cuda.to_device(inst.device[INPUT_NAME], inst.host[INPUT_NAME], host_in.nbytes, stream)
        if not ctx.execute_async_v3(stream.ptr):
            cuda.raise_pending("execute_async_v3")  # a CUDA error behind it (sticky or not) first
            raise InferenceFailed(f"execute_async_v3 failed: {self._logger.tail(mark)}")
        results = {}
        for t in self.io:
            if t.is_input:
                continue
            out_shape = tuple(ctx.get_tensor_shape(t.name))
            host = inst.host[t.name].view(out_shape)
            cuda.to_host(inst.host[t.name], inst.device[t.name], host.nbytes, stream)
            results[t.name] = host
        stream.synchronize()
        return Outputs.named({name: np.array(a, np.float32) for name, a in results.items()})

    def _fail(self, exc: CudaError) -> None:
        if self._failure is None:
            self._failure = (f"{exc.detail}: this process's CUDA context is lost; every batch is "
                             f"refused until the process is restarted")
            log.critical("%s on %s: %s", self.trt.label, self.gpu.label, self._failure)

    def close(self) -> None:
        if self._cache is not None and self._failure is None:
            self._cache.save()
        try:
            cuda.use_device(self.gpu.index)  # frees go to this GPU, whichever thread closes
        except CudaError as exc:
            log.warning("closing the TensorRT backend: %s", exc.detail)
        for instance in self._all:
            try:
                instance.close()
            except CudaError as exc:  # after a sticky error every free fails the same way
                log.warning("closing a TensorRT instance: %s", exc.detail)
        self._all = []
        self._cache = None
        self.engine = None
        self._runtime = None


class RuntimeCache:
    """TensorRT-RTX's runtime cache of just-in-time compiled kernels, kept in a file."""

    def __init__(self, engine: Any, path: Path | None) -> None:
        self.path = path
        self.config = engine.create_runtime_config()
        self.cache = self.config.create_runtime_cache()
        self._lock = threading.Lock()
        if path is not None and path.is_file():
            if self.cache.deserialize(path.read_bytes()):
                log.info("TensorRT-RTX runtime cache loaded from %s", path)
            else:
                log.warning("TensorRT-RTX refused the runtime cache %s; compiling afresh", path)
                self.cache.reset()
        if not self.config.set_runtime_cache(self.cache):
            raise BackendUnavailable("TensorRT-RTX refused its runtime cache")

    def save(self) -> None:
        if self.path is None:
            return
        with self._lock:
            data = bytes(self.cache.serialize())
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_bytes(data)
                os.replace(tmp, self.path)
            except OSError as exc:  # a read-only engine folder costs start-up time, not service
                log.warning("could not write the TensorRT-RTX runtime cache %s: %s", self.path, exc)
            finally:
                tmp.unlink(missing_ok=True)


def deserialize(plan: bytes, trt: TensorRT, where: str, *,
                version_compatible: bool = False) -> tuple[Any, Any]:
    """(runtime, engine); a plan the runtime says is invalid here, or a None engine, becomes
    BackendUnavailable quoting TensorRT's own words."""
    logger = process_logger(trt.module)
    mark = logger.mark()
    runtime = trt.module.Runtime(logger)
    if version_compatible:  # the plan embeds its lean runtime: host code TensorRT must be let run
        runtime.engine_host_code_allowed = True
    if hasattr(runtime, "get_engine_validity"):  # TensorRT-RTX: asks before loading, says why
        validity, diagnostics = runtime.get_engine_validity(plan)
        if validity == trt.module.EngineValidity.SUBOPTIMAL:
            log.warning("%s says the plan is valid but suboptimal on %s (%s); rebuild it there",
                        trt.label, where, _diagnostics(trt, diagnostics))
        if validity == trt.module.EngineValidity.INVALID:
            raise BackendUnavailable(
                f"{trt.label} could not deserialise the engine on {where}: the plan is not valid "
                f"here ({_diagnostics(trt, diagnostics)}): {logger.tail(mark)}")
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise BackendUnavailable(f"{trt.label} could not deserialise the engine on "
                                 f"{where}: {logger.tail(mark)}")
    return runtime, engine


def discover_io(engine: Any, trt: TensorRT) -> list[TensorIO]:
    """Every I/O tensor of the engine with its dtype and its shape at the profile's max batch."""
    m = trt.module
    logger = process_logger(m)
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = [n for n in names if engine.get_tensor_mode(n) == m.TensorIOMode.INPUT]
    probe = engine.create_execution_context()
    if probe is None:
        raise BackendUnavailable("TensorRT could not create an execution context")
    max_shapes: dict[str, tuple[int, ...]] = {}
    for name in inputs:
        _min, _opt, max_shape = engine.get_tensor_profile_shape(name, 0)
        max_shapes[name] = tuple(max_shape)
        mark = logger.mark()
        if not probe.set_input_shape(name, max_shapes[name]):
            raise BackendUnavailable(f"TensorRT refused the profile's max shape {max_shapes[name]} "
                                     f"for {name!r}: {logger.tail(mark)}")
    io = []
    for name in names:
        shape = max_shapes.get(name) or tuple(probe.get_tensor_shape(name))
        if any(d < 0 for d in shape):
            raise BackendUnavailable(f"engine tensor {name!r} has an unresolved shape {shape}")
        io.append(TensorIO(name, name in max_shapes,
                           numpy_dtype(trt, engine.get_tensor_dtype(name), name), shape))
    del probe
    return io


def _diagnostics(trt: TensorRT, bits: int) -> str:
    flags = getattr(trt.module, "EngineInvalidityDiagnostics", None)
    if flags is None:
        return f"diagnostics {bits:#x}"
    names = [f.name for f in flags.__members__.values() if int(f) and int(bits) & int(f)]
    return ", ".join(names) or "no diagnostics"
