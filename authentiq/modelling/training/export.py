"""Checkpoint → ONNX per the model contract (``views`` in; ``logits``, ``embedding``, ``cam`` out)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

from authentiq.contract.model_spec import INPUT_NAME, OUTPUT_NAMES, ModelSpec
from authentiq.modelling.training import require_torch

OPSET = 17


def load_checkpoint(path: Path) -> tuple[Any, ModelSpec, dict[str, Any]]:
    torch = require_torch()
    from authentiq.modelling.training.net import AuthentiqNet

    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model = AuthentiqNet(ckpt["width"], ckpt["embedding_size"])
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, ModelSpec.from_props(ckpt["spec"], str(path)), ckpt.get("summary", {})


def export_onnx(model: Any, spec: ModelSpec, out: Path) -> Path:
    """Export with a dynamic batch axis and the spec in ``metadata_props``."""
    torch = require_torch()
    import onnx

    h, w = spec.input_hw
    dummy = torch.zeros(1, 3, h, w)
    buf = io.BytesIO()
    # The TorchScript exporter (dynamo=False) gives the plain, constant-folded graph the INT8
    # calibration and TensorRT parser were validated on; PyTorch >= 2.9 marks it deprecated.
    # Moving to the torch.export-based exporter (needs onnxscript) is a tracked follow-up.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # scoped to this one call
        torch.onnx.export(
            model, (dummy,), buf, input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
            dynamic_axes={INPUT_NAME: {0: "batch"}, **{o: {0: "batch"} for o in OUTPUT_NAMES}},
            opset_version=OPSET, do_constant_folding=True, dynamo=False,
        )
    proto = onnx.load_from_string(buf.getvalue())
    proto.producer_name = "authentiq"
    del proto.metadata_props[:]
    for key, value in spec.to_props().items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(out))
    return out
