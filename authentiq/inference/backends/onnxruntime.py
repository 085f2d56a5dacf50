"""ONNX Runtime backend: the CPU execution provider by default (threads from settings); the CUDA
execution provider when ``onnxruntime-gpu`` is installed, with I/O binding (the input is copied to
the GPU once, outputs come back to host memory once)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort

from authentiq.contract.model_spec import (
    INPUT_NAME,
    OPTIONAL_OUTPUTS,
    OUTPUT_NAMES,
    ModelSpec,
    check_io,
    model_id,
)
from authentiq.errors import BackendUnavailable, InferenceFailed
from authentiq.inference.backends.base import BackendInfo, Outputs

log = logging.getLogger(__name__)
CUDA_HINT = "pip uninstall -y onnxruntime && pip install onnxruntime-gpu (both provide one module)"


def file_id(path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return f"{path.name}@sha256:{digest[:12]}"


def cuda_provider_available() -> bool:
    return "CUDAExecutionProvider" in ort.get_available_providers()


class OnnxRuntimeBackend:
    def __init__(self, model_path: Path, *, intra_op_threads: int = 0, max_batch_size: int = 32,
                 device: Literal["cpu", "cuda"] = "cpu", gpu_index: int = 0,
                 spin: bool = True) -> None:
        """``spin``: the intra-op threads spin-wait between operators (ONNX Runtime's default);
        false: they sleep, so that a worker's decoding threads get the CPU between batches."""
        if not model_path.is_file():
            raise BackendUnavailable(f"model file not found: {model_path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads  # 0 = ONNX Runtime's default (all cores)
        options.inter_op_num_threads = 1
        if not spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers: list[str | tuple[str, dict[str, object]]] = ["CPUExecutionProvider"]
        if device == "cuda":
            if not cuda_provider_available():
                raise BackendUnavailable(
                    f"ONNX Runtime {ort.__version__} has no CUDA execution provider; {CUDA_HINT}")
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": gpu_index}))
        try:
            self.session = ort.InferenceSession(str(model_path), options, providers=providers)
        except Exception as exc:  # ORT raises its own untyped errors for unreadable models
            raise BackendUnavailable(f"ONNX Runtime cannot load {model_path}: {exc}") from exc
        if device == "cuda" and self.session.get_providers()[0] != "CUDAExecutionProvider":
            raise BackendUnavailable("ONNX Runtime's CUDA execution provider did not initialise "
                                     "(no usable GPU or CUDA/cuDNN libraries missing)")
        check_io({i.name for i in self.session.get_inputs()},
                 {o.name for o in self.session.get_outputs()}, str(model_path))
        served = {o.name for o in self.session.get_outputs()}
        self.output_names = [*OUTPUT_NAMES, *(o for o in OPTIONAL_OUTPUTS if o in served)]
        meta = self.session.get_modelmeta().custom_metadata_map
        self.spec = ModelSpec.from_props(meta, str(model_path))
        self.device, self.gpu_index = device, gpu_index
        self.info = BackendInfo(name="onnxruntime",
                                device="cpu" if device == "cpu" else f"cuda:{gpu_index}",
                                precision=self.spec.precision, engine_id=file_id(model_path),
                                max_batch_size=max_batch_size, model_id=model_id(model_path))
        log.info("ONNX Runtime %s loaded %s (%s) on %s, %s", ort.__version__, model_path,
                 self.spec.precision, self.info.device,
                 f"{intra_op_threads} threads" if intra_op_threads else "threads: one per core")

    def run(self, views: np.ndarray, *, deadline: float | None = None) -> Outputs:
        try:
            if self.device == "cuda":
                out = self._run_bound(views)
            else:
                out = self.session.run(self.output_names, {INPUT_NAME: views})
        except Exception as exc:  # ORT raises untyped errors (shape, type, allocation)
            raise InferenceFailed(f"ONNX Runtime failed on a batch of {len(views)}: {exc}") from exc
        return Outputs.named(dict(zip(self.output_names, out, strict=True)))

    def _run_bound(self, views: np.ndarray) -> list[np.ndarray]:
        binding = self.session.io_binding()
        binding.bind_ortvalue_input(
            INPUT_NAME, ort.OrtValue.ortvalue_from_numpy(views, "cuda", self.gpu_index))
        for name in self.output_names:
            binding.bind_output(name, "cpu")
        self.session.run_with_iobinding(binding)
        return list(binding.copy_outputs_to_cpu())

    def failure(self) -> str | None:
        return None  # ONNX Runtime keeps no state a failed batch could spoil

    def close(self) -> None:
        del self.session
