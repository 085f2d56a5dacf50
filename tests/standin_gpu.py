"""STAND-INS for CUDA's runtime and TensorRT's runtime, for testing TensorRTBackend where neither can
run (no GPU here; TensorRT proper cannot even be installed).

They are stand-ins, not mocks of our code: ``TensorRTBackend`` and ``authentiq.inference.backends.cuda`` run
unchanged on top of them. ``StandInCudaRuntime`` has the calls of ``cuda.bindings.runtime`` we
use, with host memory playing device memory (copies are real ``memmove``s) and CUDA's error model,
sticky errors included. ``StandInTensorRT`` has the runtime calls we use; its "engine" runs the
shipped TensorRT-flavour ONNX through ONNX Runtime, reading and writing the device addresses our
backend binds, so the numbers that come back are the model's.
"""

from __future__ import annotations

import ctypes
import enum
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnxruntime as ort

PLAN = b"stand-in plan"


class CudaErr(enum.IntEnum):
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorMemoryAllocation = 2
    cudaErrorInvalidDevice = 101
    cudaErrorIllegalAddress = 700
    cudaErrorLaunchFailure = 719


@dataclass(eq=False)
class StandInStream:
    number: int
    address: int


class StandInCudaRuntime:
    """STAND-IN for ``cuda.bindings.runtime``: one GPU, host memory as its memory."""

    cudaError_t = CudaErr
    cudaMemcpyKind = enum.IntEnum("cudaMemcpyKind", [
        ("cudaMemcpyHostToHost", 0), ("cudaMemcpyHostToDevice", 1), ("cudaMemcpyDeviceToHost", 2),
        ("cudaMemcpyDeviceToDevice", 3)])
    cudaStreamNonBlocking = 1

    def __init__(self, name: str = "NVIDIA L4 (stand-in)", cc: tuple[int, int] = (8, 9)) -> None:
        self.name, self.cc = name, cc
        self.memory: dict[int, np.ndarray] = {}
        self.events: list[tuple[str, object]] = []  # what was called, in order
        self.calls = 0
        self.sticky: CudaErr | None = None  # once set, every call returns it (CUDA's sticky errors)
        self.fail_next_sync: CudaErr | None = None
        self._streams = 0
        self._lock = threading.Lock()

    # --- errors --------------------------------------------------------------------------------

    def cudaGetErrorName(self, err: CudaErr) -> tuple[CudaErr, bytes]:
        return CudaErr.cudaSuccess, CudaErr(err).name.encode()

    def cudaGetErrorString(self, err: CudaErr) -> tuple[CudaErr, bytes]:
        return CudaErr.cudaSuccess, f"stand-in {CudaErr(err).name}".encode()

    def cudaPeekAtLastError(self) -> tuple[CudaErr]:
        return (self.sticky or CudaErr.cudaSuccess,)

    def _ok(self, *values: object) -> tuple[Any, ...]:
        with self._lock:
            self.calls += 1
        if self.sticky is not None:
            return (self.sticky, *([None] * len(values)))
        return (CudaErr.cudaSuccess, *values)

    # --- devices -------------------------------------------------------------------------------

    def cudaGetDeviceCount(self) -> tuple[Any, ...]:
        return self._ok(1)

    def cudaGetDeviceProperties(self, index: int) -> tuple[Any, ...]:
        props = SimpleNamespace(name=self.name.encode(), major=self.cc[0], minor=self.cc[1],
                                totalGlobalMem=24 << 30)
        return self._ok(props)

    def cudaSetDevice(self, index: int) -> tuple[Any, ...]:
        self.events.append(("set_device", index))
        return (CudaErr.cudaErrorInvalidDevice,) if index != 0 else self._ok()

    # --- memory and streams --------------------------------------------------------------------

    def _alloc(self, kind: str, nbytes: int) -> tuple[Any, ...]:
        array = np.zeros(nbytes, np.uint8)
        ptr = int(array.ctypes.data)
        result = self._ok(ptr)
        if result[0] == CudaErr.cudaSuccess:
            self.memory[ptr] = array
            self.events.append((kind, ptr))
        return result

    def _free(self, kind: str, ptr: int) -> tuple[Any, ...]:
        result = self._ok()
        if ptr not in self.memory:
            return (CudaErr.cudaErrorInvalidValue,)
        del self.memory[ptr]
        self.events.append((kind, ptr))
        return result

    def cudaMalloc(self, nbytes: int) -> tuple[Any, ...]:
        return self._alloc("malloc", nbytes)

    def cudaMallocHost(self, nbytes: int) -> tuple[Any, ...]:
        return self._alloc("malloc_host", nbytes)

    def cudaFree(self, ptr: int) -> tuple[Any, ...]:
        return self._free("free", ptr)

    def cudaFreeHost(self, ptr: int) -> tuple[Any, ...]:
        return self._free("free_host", ptr)

    def cudaMemcpyAsync(self, dst: int, src: int, nbytes: int, kind: object,
                        stream: StandInStream) -> tuple[Any, ...]:
        result = self._ok()
        if result[0] == CudaErr.cudaSuccess:
            ctypes.memmove(dst, src, nbytes)
        return result

    def cudaStreamCreateWithFlags(self, flags: int) -> tuple[Any, ...]:
        self._streams += 1
        handle = StandInStream(self._streams, 0x5000 + self._streams)
        self.events.append(("stream_create", handle.number))
        return self._ok(handle)

    def cudaStreamSynchronize(self, stream: StandInStream) -> tuple[Any, ...]:
        if self.fail_next_sync is not None:  # an asynchronous kernel fault surfaces at the sync
            self.sticky, self.fail_next_sync = self.fail_next_sync, None
        return self._ok()

    def cudaStreamDestroy(self, stream: StandInStream) -> tuple[Any, ...]:
        self.events.append(("stream_destroy", stream.number))
        return self._ok()


class StandInCudaUtils:
    """STAND-IN for ``cuda.bindings.utils``."""

    @staticmethod
    def get_cuda_native_handle(handle: StandInStream) -> int:
        return handle.address


# --- TensorRT -------------------------------------------------------------------------------------


class Severity(enum.IntEnum):
    INTERNAL_ERROR = 0
    ERROR = 1
    WARNING = 2
    INFO = 3
    VERBOSE = 4


class StandInILogger:
    Severity = Severity

    def __init__(self) -> None:
        pass


TensorIOMode = enum.Enum("TensorIOMode", ["INPUT", "OUTPUT"])
DataType = enum.Enum("DataType", ["FLOAT", "HALF", "BF16", "INT8"])


@dataclass
class EngineBehaviour:
    """What a test wants the stand-in engine to do."""

    max_batch: int = 8
    opt_batch: int = 4
    dtypes: dict[str, str] = field(default_factory=dict)  # tensor → DataType name (default FLOAT)
    refuse_shapes: bool = False  # set_input_shape returns False
    fail_execute: bool = False  # execute_async_v3 returns False
    executions: list[int] = field(default_factory=list)  # the batch size of every execution
    contexts: list[Any] = field(default_factory=list)  # runtime_config each context was made with


class StandInTensorRT:
    """STAND-IN for the ``tensorrt`` / ``tensorrt_rtx`` module: the runtime calls we make."""

    ILogger = StandInILogger
    TensorIOMode = TensorIOMode
    DataType = DataType

    def __init__(self, model: Path, behaviour: EngineBehaviour | None = None,
                 version: str = "10.8.0.43") -> None:
        self.__version__ = version
        self.behaviour = behaviour or EngineBehaviour()
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self.runtimes: list[StandInRuntime] = []
        self.runtime_caches: list[StandInRuntimeCache] = []

    def Runtime(self, logger: Any) -> StandInRuntime:
        runtime = StandInRuntime(self)
        self.runtimes.append(runtime)
        return runtime


class StandInRuntime:
    def __init__(self, trt: StandInTensorRT) -> None:
        self.trt = trt
        self.engine_host_code_allowed = False

    def deserialize_cuda_engine(self, plan: bytes) -> StandInEngine | None:
        return StandInEngine(self.trt) if plan == PLAN else None


class StandInRuntimeCache:
    def __init__(self) -> None:
        self.data = b""
        self.resets = 0

    def deserialize(self, data: bytes) -> bool:
        if not data.startswith(b"kernels:"):
            return False
        self.data = data
        return True

    def reset(self) -> bool:
        self.data, self.resets = b"", self.resets + 1
        return True

    def serialize(self) -> bytes:
        return self.data or b"kernels:compiled-at-warm-up"


class StandInRuntimeConfig:
    def __init__(self, trt: StandInTensorRT) -> None:
        self.trt, self.cache = trt, None

    def create_runtime_cache(self) -> StandInRuntimeCache:
        cache = StandInRuntimeCache()
        self.trt.runtime_caches.append(cache)
        return cache

    def set_runtime_cache(self, cache: StandInRuntimeCache) -> bool:
        self.cache = cache
        return True


class StandInEngine:
    def __init__(self, trt: StandInTensorRT) -> None:
        self.trt, self.b = trt, trt.behaviour
        inputs = trt.session.get_inputs()
        outputs = trt.session.get_outputs()
        self.shapes = {t.name: tuple(t.shape[1:]) for t in [*inputs, *outputs]}
        self.names = [t.name for t in inputs] + [t.name for t in outputs]
        self.num_io_tensors = len(self.names)
        self.input_name = inputs[0].name

    def get_tensor_name(self, i: int) -> str:
        return self.names[i]

    def get_tensor_mode(self, name: str) -> Any:
        return TensorIOMode.INPUT if name == self.input_name else TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name: str) -> Any:
        return DataType[self.b.dtypes.get(name, "FLOAT")]

    def get_tensor_profile_shape(self, name: str, profile: int) -> tuple[tuple[int, ...], ...]:
        s = self.shapes[name]
        return (1, *s), (self.b.opt_batch, *s), (self.b.max_batch, *s)

    def create_runtime_config(self) -> StandInRuntimeConfig:
        return StandInRuntimeConfig(self.trt)

    def create_execution_context(self, runtime_config: Any = None) -> StandInContext:
        self.b.contexts.append(runtime_config)
        return StandInContext(self)


class StandInContext:
    def __init__(self, engine: StandInEngine) -> None:
        self.engine, self.batch, self.addresses = engine, engine.b.max_batch, {}

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        if self.engine.b.refuse_shapes or not 1 <= shape[0] <= self.engine.b.max_batch:
            return False
        self.batch = shape[0]
        return True

    def set_tensor_address(self, name: str, ptr: int) -> bool:
        self.addresses[name] = ptr
        return True

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return (self.batch, *self.engine.shapes[name])

    def _tensor(self, name: str) -> np.ndarray:
        dtype = np.float16 if self.engine.b.dtypes.get(name) == "HALF" else np.float32
        shape = self.get_tensor_shape(name)
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        raw = (ctypes.c_byte * n).from_address(self.addresses[name])
        return np.frombuffer(raw, dtype).reshape(shape)

    def execute_async_v3(self, stream: int) -> bool:
        engine = self.engine
        if engine.b.fail_execute:
            return False
        views = np.array(self._tensor(engine.input_name), np.float32)
        outputs = engine.trt.session.run(None, {engine.input_name: views})
        for out, value in zip(engine.trt.session.get_outputs(), outputs, strict=True):
            self._tensor(out.name)[...] = value
        engine.b.executions.append(self.batch)
        return True
