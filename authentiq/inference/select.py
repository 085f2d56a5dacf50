"""Pick and open the inference backend (``AUTHENTIQ_BACKEND=auto|tensorrt|onnxruntime|triton``).

auto: TensorRT when it imports and a GPU is usable, else ONNX Runtime's CUDA provider when it is
installed and works, else ONNX Runtime on the CPU; each step logs why it was or was not taken.
An explicit choice that cannot be honoured raises BackendUnavailable at startup: no silent downgrade.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from authentiq.contract.model_spec import ModelSpec, model_id, read_spec
from authentiq.errors import BackendUnavailable, CudaError
from authentiq.inference.backends import cuda
from authentiq.inference.backends.base import Backend
from authentiq.inference.backends.onnxruntime import OnnxRuntimeBackend, cuda_provider_available
from authentiq.inference.backends.tensorrt_lib import INSTALL_HINT, TensorRT, import_tensorrt
from authentiq.inference.engine_build import BuildOptions, load_or_build
from authentiq.inference.engine_compat import admits, runs_on, slug
from authentiq.settings import BatcherSettings, ModelSettings

log = logging.getLogger(__name__)


def open_backend(model: ModelSettings, batcher: BatcherSettings, *, timeout_s: float) -> Backend:
    """``batcher``: the batch sizes an engine is built for and the contexts it runs;
    ``timeout_s``: the longest a call to a Triton server may take (the request timeout)."""
    if model.backend == "triton":
        from authentiq.inference.backends.triton import TritonBackend  # needs tritonclient; loaded on demand

        return TritonBackend(model.triton_url, model.triton_model, timeout_s=timeout_s)
    if model.backend == "tensorrt":
        return open_tensorrt(model, batcher)
    if model.backend == "onnxruntime":
        return open_onnxruntime(model, batcher)
    try:
        backend = open_tensorrt(model, batcher)
    except BackendUnavailable as exc:
        # Not installed is the normal CPU deployment (info); installed but unusable is worth a warning.
        level = logging.INFO if "not installed" in exc.detail else logging.WARNING
        log.log(level, "backend auto: TensorRT not used: %s", exc.detail)
        return open_onnxruntime(model, batcher)
    log.info("backend auto: TensorRT (%s)", backend.info.device)
    return backend


def model_contract(model: ModelSettings) -> ModelSpec:
    """The contract of the model this configuration serves, without loading it: from the ONNX
    file, or for ``triton`` from the server's model config (API workers need no model file)."""
    if model.backend == "triton":
        from authentiq.inference.backends.triton import fetch_spec

        return fetch_spec(model.triton_url, model.triton_model)
    return read_spec(model.model_path)


def build_options(model: ModelSettings, batcher: BatcherSettings) -> BuildOptions:
    return BuildOptions(
        max_batch=batcher.max_batch_size,
        opt_batch=max(batcher.preferred_batch_sizes, default=batcher.max_batch_size),
        workspace_mib=model.trt_workspace_mib,
        optimization_level=model.trt_optimization_level,
        hardware_compatibility=model.trt_hardware_compatibility,
        version_compatible=model.trt_version_compatible,
    )


def usable_gpu(index: int) -> cuda.Gpu:
    try:
        found = cuda.gpus()
    except CudaError as exc:
        raise BackendUnavailable(f"no usable GPU: {exc.detail}") from exc
    if index >= len(found):
        raise BackendUnavailable(f"no usable GPU: GPU {index} requested, {len(found)} present")
    return found[index]


def open_tensorrt(model: ModelSettings, batcher: BatcherSettings) -> Backend:
    from authentiq.inference.backends.tensorrt import TensorRTBackend  # needs cuda-python; loaded on demand

    flavour = None if model.tensorrt_flavour == "auto" else model.tensorrt_flavour
    trt = import_tensorrt(flavour)
    gpu = usable_gpu(model.gpu_index)
    if trt.rtx and (refused := admits(runs_on(trt, gpu, "none"), gpu)):
        raise BackendUnavailable(f"{trt.label} does not run on {gpu.label}: {refused}; data-centre "
                                 f"GPUs take TensorRT ({INSTALL_HINT})")
    spec = read_spec(model.tensorrt_model_path)
    engine = load_or_build(model.tensorrt_model_path, model.engine_dir, trt, gpu,
                           build_options(model, batcher), allow_build=model.engine_build)
    return TensorRTBackend(engine.plan, trt, spec, engine_id=f"{engine.path.name}@{engine.key[:12]}",
                           gpu=gpu, instances=batcher.batcher_instances,
                           version_compatible=engine.version_compatible,
                           runtime_cache=runtime_cache_path(engine.path, trt, gpu),
                           model_id=model_id(model.tensorrt_model_path))


def runtime_cache_path(plan: Path, trt: TensorRT, gpu: cuda.Gpu) -> Path | None:
    """TensorRT-RTX's kernel cache beside the plan, per RTX version and GPU model (it refuses a
    cache from another version, GPU SKU or driver major version)."""
    if not trt.rtx:
        return None
    sm = "".join(map(str, gpu.compute_capability))
    return plan.with_name(f"{plan.stem}.{trt.version}.{slug(gpu.name)}-sm{sm}.runtime-cache")


def open_onnxruntime(model: ModelSettings, batcher: BatcherSettings) -> Backend:
    def session(device: Literal["cpu", "cuda"]) -> OnnxRuntimeBackend:
        return OnnxRuntimeBackend(model.model_path, intra_op_threads=model.ort_threads,
                                  spin=model.ort_spin,
                                  max_batch_size=batcher.max_batch_size, device=device,
                                  gpu_index=model.gpu_index)

    if model.ort_device != "auto":
        return session(model.ort_device)
    if cuda_provider_available():
        try:
            return session("cuda")
        except BackendUnavailable as exc:
            log.warning("ONNX Runtime CUDA provider not used: %s", exc.detail)
    else:
        log.info("ONNX Runtime has no CUDA provider (onnxruntime-gpu not installed); using the CPU")
    return session("cpu")
