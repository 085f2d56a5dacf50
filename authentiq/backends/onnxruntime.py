"""ONNX Runtime backend: CPU execution provider (threads from settings)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort

from authentiq.backends.base import BackendInfo, Outputs
from authentiq.errors import BackendUnavailable, InferenceFailed
from authentiq.model_spec import INPUT_NAME, OUTPUT_NAMES, ModelSpec, check_io

log = logging.getLogger(__name__)


def file_id(path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return f"{path.name}@sha256:{digest[:12]}"


class OnnxRuntimeBackend:
    def __init__(self, model_path: Path, *, intra_op_threads: int = 0, max_batch_size: int = 32) -> None:
        if not model_path.is_file():
            raise BackendUnavailable(f"model file not found: {model_path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads  # 0 = ONNX Runtime's default (all cores)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(model_path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own untyped errors for unreadable models
            raise BackendUnavailable(f"ONNX Runtime cannot load {model_path}: {exc}") from exc
        check_io({i.name for i in self.session.get_inputs()},
                 {o.name for o in self.session.get_outputs()}, str(model_path))
        meta = self.session.get_modelmeta().custom_metadata_map
        self.spec = ModelSpec.from_props(meta, str(model_path))
        self.info = BackendInfo(name="onnxruntime", device="cpu", precision=self.spec.precision,
                                engine_id=file_id(model_path), max_batch_size=max_batch_size)
        log.info("ONNX Runtime %s loaded %s (%s, %d threads)", ort.__version__, model_path,
                 self.spec.precision, intra_op_threads)

    def run(self, views: np.ndarray) -> Outputs:
        try:
            logits, embedding, cam = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: views})
        except Exception as exc:  # ORT raises untyped errors (shape, type, allocation)
            raise InferenceFailed(f"ONNX Runtime failed on a batch of {len(views)}: {exc}") from exc
        return Outputs(np.asarray(logits), np.asarray(embedding), np.asarray(cam))

    def close(self) -> None:
        del self.session
