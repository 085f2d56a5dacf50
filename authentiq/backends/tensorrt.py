"""TensorRT backend: one deserialised engine, one execution context + stream + buffers per instance.

The engine is deserialised once. Its I/O (names, dtypes, shapes, the profile's max batch) is read
from the engine, never hard-coded, and checked against the model contract. Each instance (one per
batch the batcher may run at once) owns an execution context, a non-blocking stream, pinned host
buffers and device buffers sized for the profile's max batch and reused for every batch; contexts
share the engine's weights. ``run`` takes a free instance, so copies and compute of different
batches overlap on the GPU.
"""

from __future__ import annotations

import logging
import queue
from dataclasses import dataclass
from typing import Any

import numpy as np

from authentiq.backends import cuda
from authentiq.backends.base import BackendInfo, Outputs
from authentiq.backends.tensorrt_lib import TensorRT, capturing_logger
from authentiq.errors import BackendUnavailable, InferenceFailed
from authentiq.model_spec import INPUT_NAME, OUTPUT_NAMES, VIEW_SCORES, ModelSpec, check_io

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

    def __init__(self, engine: Any, io: list[TensorIO]) -> None:
        self.context = engine.create_execution_context()
        if self.context is None:
            raise BackendUnavailable("TensorRT could not create an execution context")
        self.stream = cuda.Stream()
        self.host = {t.name: cuda.PinnedBuffer(t.max_bytes, t.dtype) for t in io}
        self.device = {t.name: cuda.DeviceBuffer(t.max_bytes) for t in io}
        for name, buf in self.device.items():
            if not self.context.set_tensor_address(name, buf.ptr):
                raise BackendUnavailable(f"TensorRT refused the address of tensor {name!r}")

    def close(self) -> None:
        for pinned in self.host.values():
            pinned.close()
        for device in self.device.values():
            device.close()
        self.stream.close()
        self.context = None


class TensorRTBackend:
    def __init__(self, plan: bytes, trt: TensorRT, spec: ModelSpec, *, engine_id: str,
                 gpu: cuda.Gpu, instances: int = 1) -> None:
        self.trt, self.spec, self.gpu = trt, spec, gpu
        cuda.use_device(gpu.index)
        self._logger = capturing_logger(trt)
        self._runtime, self.engine = deserialize(plan, trt, self._logger, gpu.label)
        self.io = discover_io(self.engine, trt)
        check_io({t.name for t in self.io if t.is_input}, {t.name for t in self.io if not t.is_input},
                 engine_id)
        self.max_batch = self.input.max_shape[0]
        self._instances: queue.Queue[_Instance] = queue.Queue()
        self._all = [_Instance(self.engine, self.io) for _ in range(instances)]
        for instance in self._all:
            self._instances.put(instance)
        self.info = BackendInfo(name=trt.flavour, device=f"cuda:{gpu.index} {gpu.label}",
                                precision=spec.precision, engine_id=engine_id,
                                max_batch_size=self.max_batch)
        log.info("%s %s: engine %s on %s, %d instance(s), max batch %d", trt.flavour, trt.version,
                 engine_id, gpu.label, instances, self.max_batch)

    @property
    def input(self) -> TensorIO:
        return next(t for t in self.io if t.name == INPUT_NAME)

    def run(self, views: np.ndarray) -> Outputs:
        n = len(views)
        if not 1 <= n <= self.max_batch:
            raise InferenceFailed(f"batch of {n} is outside the engine's profile (1..{self.max_batch})")
        instance = self._instances.get()  # blocks while every instance is busy
        try:
            cuda.use_device(self.gpu.index)  # worker threads start on device 0
            return self._run(instance, views)
        finally:
            self._instances.put(instance)

    def _run(self, inst: _Instance, views: np.ndarray) -> Outputs:
        ctx, stream = inst.context, inst.stream
        shape = tuple(views.shape)
        if not ctx.set_input_shape(INPUT_NAME, shape):
            raise InferenceFailed(f"TensorRT refused input shape {shape}: {self._logger.tail()}")
        host_in = inst.host[INPUT_NAME].view(shape)
        np.copyto(host_in, views, casting="same_kind")
        cuda.to_device(inst.device[INPUT_NAME], inst.host[INPUT_NAME], host_in.nbytes, stream)
        if not ctx.execute_async_v3(stream.ptr):
            raise InferenceFailed(f"execute_async_v3 failed: {self._logger.tail()}")
        results = {}
        for t in self.io:
            if t.is_input:
                continue
            out_shape = tuple(ctx.get_tensor_shape(t.name))
            host = inst.host[t.name].view(out_shape)
            cuda.to_host(inst.host[t.name], inst.device[t.name], host.nbytes, stream)
            results[t.name] = host
        stream.synchronize()
        logits, embedding, cam = (np.array(results[name], np.float32) for name in OUTPUT_NAMES)
        scores = results.get(VIEW_SCORES)
        return Outputs(logits, embedding, cam, None if scores is None else np.array(scores, np.float32))

    def close(self) -> None:
        for instance in self._all:
            instance.close()
        self._all = []
        self.engine = None


def deserialize(plan: bytes, trt: TensorRT, logger: Any, where: str) -> tuple[Any, Any]:
    """(runtime, engine); a None engine becomes BackendUnavailable quoting TensorRT's own log."""
    runtime = trt.module.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise BackendUnavailable(f"{trt.flavour} {trt.version} could not deserialise the engine on "
                                 f"{where}: {logger.tail()}")
    return runtime, engine


def discover_io(engine: Any, trt: TensorRT) -> list[TensorIO]:
    """Every I/O tensor of the engine with its dtype and its shape at the profile's max batch."""
    m = trt.module
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = [n for n in names if engine.get_tensor_mode(n) == m.TensorIOMode.INPUT]
    probe = engine.create_execution_context()
    max_shapes: dict[str, tuple[int, ...]] = {}
    for name in inputs:
        _min, _opt, max_shape = engine.get_tensor_profile_shape(name, 0)
        max_shapes[name] = tuple(max_shape)
        probe.set_input_shape(name, max_shapes[name])
    io = []
    for name in names:
        shape = max_shapes.get(name) or tuple(probe.get_tensor_shape(name))
        if any(d < 0 for d in shape):
            raise BackendUnavailable(f"engine tensor {name!r} has an unresolved shape {shape}")
        io.append(TensorIO(name, name in max_shapes, np.dtype(m.nptype(engine.get_tensor_dtype(name))),
                           shape))
    del probe
    return io
