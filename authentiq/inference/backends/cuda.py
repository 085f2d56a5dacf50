"""CUDA memory and streams through cuda-python (``cuda.bindings.runtime``), for the TensorRT backend.

Not pycuda: cuda-python ships binary wheels and binds no CUDA context to the importing thread, so
it works from a web server's worker threads (NVIDIA's TensorRT samples made the same move).
Every call's return code is checked; a failure raises :class:`CudaError` naming the CUDA error.
Buffers and streams are context managers and free themselves exactly once. A *sticky* error (an
illegal address in a kernel, say) leaves the process's CUDA context unusable until the process
restarts: :func:`is_sticky` tells such errors apart, so the backend can stop at once and report
itself not ready instead of failing every later batch.

Needs cuda-bindings 12.9.1 or later (the ``cuda.bindings`` package and
``cuda.bindings.utils.get_cuda_native_handle``; ``int(handle)`` is deprecated there).
"""

from __future__ import annotations

import ctypes
import functools
import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from authentiq.errors import CUDA_STICKY_ERRORS, BackendUnavailable, CudaError

INSTALL_HINT = ('pip install "authentiq[tensorrt]" (or "authentiq[tensorrt-rtx]"), which brings '
                'cuda-bindings')
# CUDA's documentation says of each of these that the process is left in an inconsistent state
# (every later CUDA call returns the same error until the process is terminated and relaunched)
# or that the context must be destroyed, which for the runtime API means the same.


def is_sticky(cuda_error: str | None) -> bool:
    return cuda_error in CUDA_STICKY_ERRORS


@functools.cache  # every CUDA call goes through here; a failed import is not cached
def runtime() -> ModuleType:
    """``cuda.bindings.runtime``, imported on first use with an actionable message."""
    return _import("cuda.bindings.runtime")


@functools.cache
def utils() -> ModuleType:
    """``cuda.bindings.utils`` (cuda-bindings 12.9.1+): the native-handle accessor."""
    return _import("cuda.bindings.utils")


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise BackendUnavailable(f"cuda-bindings is not installed or too old ({exc}); "
                                 f"{INSTALL_HINT}") from exc


def native_handle(handle: Any) -> int:
    """The address behind a cuda-bindings object (a stream), as TensorRT takes it."""
    return int(utils().get_cuda_native_handle(handle))


def raise_pending(what: str) -> None:
    """Raise the error an earlier asynchronous call left behind, if any (without clearing it)."""
    check(runtime().cudaPeekAtLastError(), what)


def check(result: Any, what: str) -> Any:
    """Unpack a cuda-python result tuple ``(err, *values)``; raise CudaError unless success."""
    cudart = runtime()
    err, *values = result if isinstance(result, tuple) else (result,)
    if err != cudart.cudaError_t.cudaSuccess:
        name = cudart.cudaGetErrorName(err)[1]
        text = cudart.cudaGetErrorString(err)[1]
        raise CudaError(f"{what} failed: {_text(name)}: {_text(text)}", cuda_error=_text(name))
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    compute_capability: tuple[int, int]
    memory_bytes: int

    @property
    def label(self) -> str:
        major, minor = self.compute_capability
        return f"{self.name} (sm_{major}{minor})"


def gpus() -> list[Gpu]:
    """The GPUs this process can use; raises CudaError when the driver or device is unusable."""
    cudart = runtime()
    count = check(cudart.cudaGetDeviceCount(), "cudaGetDeviceCount")
    found = []
    for index in range(count):
        props = check(cudart.cudaGetDeviceProperties(index), "cudaGetDeviceProperties")
        found.append(Gpu(index, _text(props.name), (props.major, props.minor), props.totalGlobalMem))
    return found


def use_device(index: int) -> None:
    """Make ``index`` current for the calling thread (each worker thread calls it before work)."""
    check(runtime().cudaSetDevice(index), f"cudaSetDevice({index})")


class Stream:
    """A non-blocking stream (does not synchronise with the legacy default stream)."""

    def __init__(self) -> None:
        cudart = runtime()
        self.handle = check(cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking),
                            "cudaStreamCreateWithFlags")

    @property
    def ptr(self) -> int:
        return native_handle(self.handle)

    def synchronize(self) -> None:
        check(runtime().cudaStreamSynchronize(self.handle), "cudaStreamSynchronize")

    def close(self) -> None:
        if self.handle is not None:
            check(runtime().cudaStreamDestroy(self.handle), "cudaStreamDestroy")
            self.handle = None

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DeviceBuffer:
    def __init__(self, nbytes: int) -> None:
        if nbytes <= 0:
            raise ValueError("a device buffer needs at least one byte")
        self.nbytes = nbytes
        self.ptr: int = int(check(runtime().cudaMalloc(nbytes), f"cudaMalloc({nbytes:,} bytes)"))

    def close(self) -> None:
        if self.ptr:
            check(runtime().cudaFree(self.ptr), "cudaFree")
            self.ptr = 0

    def __enter__(self) -> DeviceBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PinnedBuffer:
    """Page-locked host memory (fast, asynchronous copies), viewed as a flat numpy array."""

    def __init__(self, nbytes: int, dtype: np.dtype[Any] | type = np.float32) -> None:
        self.dtype = np.dtype(dtype)
        if nbytes <= 0 or nbytes % self.dtype.itemsize:
            raise ValueError(f"{nbytes} bytes is not a whole number of {self.dtype} items")
        self.nbytes = nbytes
        self.ptr: int = int(check(runtime().cudaMallocHost(nbytes), f"cudaMallocHost({nbytes:,} bytes)"))
        raw = (ctypes.c_byte * nbytes).from_address(self.ptr)
        self.array: np.ndarray = np.frombuffer(memoryview(raw).cast("B"), dtype=self.dtype)

    def view(self, shape: tuple[int, ...]) -> np.ndarray:
        """The first ``prod(shape)`` items as an array of ``shape`` (no copy)."""
        n = int(np.prod(shape))
        if n * self.dtype.itemsize > self.nbytes:
            raise ValueError(f"shape {shape} needs {n * self.dtype.itemsize:,} bytes; "
                             f"the buffer has {self.nbytes:,}")
        return self.array[:n].reshape(shape)

    def close(self) -> None:
        if self.ptr:
            self.array = np.empty(0, self.dtype)
            check(runtime().cudaFreeHost(self.ptr), "cudaFreeHost")
            self.ptr = 0

    def __enter__(self) -> PinnedBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def to_device(dst: DeviceBuffer, src: PinnedBuffer, nbytes: int, stream: Stream) -> None:
    _fits(nbytes, dst.nbytes, src.nbytes)
    cudart = runtime()
    check(cudart.cudaMemcpyAsync(dst.ptr, src.ptr, nbytes, cudart.cudaMemcpyKind.cudaMemcpyHostToDevice,
                                 stream.handle), "cudaMemcpyAsync host→device")


def to_host(dst: PinnedBuffer, src: DeviceBuffer, nbytes: int, stream: Stream) -> None:
    _fits(nbytes, dst.nbytes, src.nbytes)
    cudart = runtime()
    check(cudart.cudaMemcpyAsync(dst.ptr, src.ptr, nbytes, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost,
                                 stream.handle), "cudaMemcpyAsync device→host")


def device_copy(dst: DeviceBuffer, src: DeviceBuffer, nbytes: int, stream: Stream) -> None:
    _fits(nbytes, dst.nbytes, src.nbytes)
    cudart = runtime()
    check(cudart.cudaMemcpyAsync(dst.ptr, src.ptr, nbytes,
                                 cudart.cudaMemcpyKind.cudaMemcpyDeviceToDevice, stream.handle),
          "cudaMemcpyAsync device→device")


def _fits(nbytes: int, *capacities: int) -> None:
    if nbytes < 0 or nbytes > min(capacities):
        raise ValueError(f"a copy of {nbytes:,} bytes does not fit buffers of {min(capacities):,}")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
