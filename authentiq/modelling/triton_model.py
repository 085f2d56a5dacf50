"""Triton Python-backend model: ONNX Runtime serving ``model.onnx`` beside this file.

Written into a model repository as ``<version>/model.py`` by ``authentiq export-triton --runtime
python``; it runs inside Triton's Python-backend stub, so it imports only numpy, onnxruntime and
Triton's ``triton_python_backend_utils`` — not authentiq. Triton's dynamic batcher hands
``execute`` every request of a batch; they are concatenated into one ONNX Runtime run and split
back, so a batch costs one inference, as in Triton's native backends.
"""

from __future__ import annotations

import json
import os
import site
import sys
from typing import Any


def _honour_pythonpath() -> None:
    """Triton's stub embeds Python isolated from PYTHONPATH; the host's packages (numpy,
    onnxruntime in a virtual environment, say) are put first on the path all the same."""
    for folder in reversed(os.environ.get("PYTHONPATH", "").split(os.pathsep)):
        if folder and folder not in sys.path:
            before = list(sys.path)
            site.addsitedir(folder)
            sys.path[:] = [p for p in sys.path if p not in before] + before


_honour_pythonpath()

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402

INPUT = "views"
OUTPUTS = ("logits", "embedding", "cam")
# the view gate's distances and per-cell features, and the view check's descriptors, when the
# model has them
OPTIONAL_OUTPUTS = ("view_scores", "view_features", "view_descriptors")


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        folder = os.path.join(args["model_repository"], args["model_version"])
        options = ort.SessionOptions()
        threads = config.get("parameters", {}).get("intra_op_thread_count", {}).get("string_value")
        options.intra_op_num_threads = int(threads or 0)
        providers = ["CPUExecutionProvider"]
        if args.get("model_instance_kind") == "GPU" and "CUDAExecutionProvider" in \
                ort.get_available_providers():
            providers.insert(0, ("CUDAExecutionProvider",  # type: ignore[arg-type]
                                 {"device_id": int(args["model_instance_device_id"])}))
        self.session = ort.InferenceSession(os.path.join(folder, "model.onnx"), options,
                                            providers=providers)
        served = {o["name"] for o in config.get("output", [])}
        self.outputs = [*OUTPUTS, *(name for name in OPTIONAL_OUTPUTS if name in served)]

    def execute(self, requests: list[Any]) -> list[Any]:
        # Tensors cross through DLPack, not the stub's numpy bindings: those are built against
        # numpy 1 and misread numpy 2 arrays.
        views = [np.from_dlpack(pb_utils.get_input_tensor_by_name(r, INPUT)) for r in requests]
        sizes = [len(v) for v in views]
        try:
            outputs = self.session.run(self.outputs, {INPUT: np.concatenate(views)})
        except Exception as exc:  # ORT's errors are untyped; each request gets the message
            error = pb_utils.TritonError(f"ONNX Runtime failed on a batch of {sum(sizes)}: {exc}")
            return [pb_utils.InferenceResponse(output_tensors=[], error=error) for _ in requests]
        responses, start = [], 0
        for size in sizes:
            tensors = [pb_utils.Tensor.from_dlpack(name, np.ascontiguousarray(out[start:start + size]))
                       for name, out in zip(self.outputs, outputs, strict=True)]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start += size
        return responses

    def finalize(self) -> None:
        del self.session
