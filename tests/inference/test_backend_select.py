"""Backend selection: auto, explicit choices that cannot be honoured, actionable messages.

These run in the default install (no TensorRT, no GPU, CPU-only ONNX Runtime) and again in the
TensorRT pass, where TensorRT imports but no GPU is usable.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from authentiq.api.app import create_app
from authentiq.cli import main
from authentiq.errors import BackendUnavailable
from authentiq.inference.backends.base import Backend
from authentiq.inference.backends.onnxruntime import OnnxRuntimeBackend, cuda_provider_available
from authentiq.inference.backends.tensorrt_lib import import_tensorrt
from authentiq.inference.select import open_backend
from tests.conftest import has_tensorrt, make_settings

no_tensorrt = pytest.mark.skipif(has_tensorrt(), reason="TensorRT is installed in this pass")


def backend_for(tmp_path: Path, **overrides: object) -> Backend:
    """What ``open_services`` opens for these settings: the model and batcher sections."""
    settings = make_settings(tmp_path, **overrides)
    return open_backend(settings.model, settings.batcher, timeout_s=settings.request_timeout_s)


@no_tensorrt
def test_missing_tensorrt_says_how_to_install_it() -> None:
    with pytest.raises(BackendUnavailable, match=r'pip install "authentiq\[tensorrt\]"'):
        import_tensorrt()


def test_auto_on_a_cpu_machine_serves_onnxruntime_cpu_and_logs_why(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        backend = backend_for(tmp_path, backend="auto", engine_dir=tmp_path)
    assert (backend.info.name, backend.info.device, backend.info.precision) == \
        ("onnxruntime", "cpu", "int8-cpu")
    assert "TensorRT not used" in caplog.text
    backend.close()


def test_explicit_tensorrt_that_cannot_run_fails_at_startup(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, backend="tensorrt", engine_dir=tmp_path)
    with pytest.raises(BackendUnavailable) as failed, TestClient(create_app(settings)):
        pass
    assert "pip install" in failed.value.detail or "no usable GPU" in failed.value.detail


@pytest.mark.skipif(cuda_provider_available(), reason="onnxruntime-gpu is installed")
def test_explicit_ort_cuda_without_onnxruntime_gpu_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match="pip install onnxruntime-gpu"):
        backend_for(tmp_path, backend="onnxruntime", ort_device="cuda")


def test_explicit_onnxruntime_cpu(tmp_path: Path, tiny_model: Path) -> None:
    backend = backend_for(tmp_path, backend="onnxruntime", ort_device="cpu", model_path=tiny_model)
    assert isinstance(backend, OnnxRuntimeBackend) and backend.info.device == "cpu"
    assert backend.info.engine_id.startswith("tiny.onnx@sha256:")


@pytest.mark.parametrize("spin, entry", [(True, ""), (False, "0")])
def test_ort_spin_false_lets_the_intra_op_threads_sleep(tmp_path: Path, tiny_model: Path,
                                                        spin: bool, entry: str) -> None:
    """AUTHENTIQ_ORT_SPIN=false reaches the session: its threads sleep between operators
    (ONNX Runtime's default, left unset, spins)."""
    backend = backend_for(tmp_path, backend="onnxruntime", model_path=tiny_model, ort_threads=2,
                          ort_spin=spin)
    assert isinstance(backend, OnnxRuntimeBackend)
    options = backend.session.get_session_options()
    try:
        found = options.get_session_config_entry("session.intra_op.allow_spinning")
    except RuntimeError:  # ONNX Runtime's way of saying the entry was never set
        found = ""
    assert found == entry


def test_onnxruntime_returns_the_optional_outputs_by_name(tmp_path: Path, tiny_model: Path) -> None:
    """The shipped model has the view gate's outputs; the tiny one has none (None, not a crash)."""
    import numpy as np

    from authentiq.settings import DEFAULT_MODEL

    shipped = OnnxRuntimeBackend(DEFAULT_MODEL)
    h, w = shipped.spec.input_hw
    out = shipped.run(np.zeros((2, 3, h, w), np.float32))
    assert out.view_scores is not None and out.view_scores.shape[:2] == (2, 6)
    assert out.view_features is not None and out.view_features.shape == (2, 6, 256)
    assert out.view_descriptors is not None and out.view_descriptors.shape == (2, 6, 256)
    tiny = OnnxRuntimeBackend(tiny_model)
    th, tw = tiny.spec.input_hw
    plain = tiny.run(np.zeros((1, 3, th, tw), np.float32))
    assert plain.view_scores is None and plain.view_features is None and plain.view_descriptors is None
    assert plain.logits.shape == (1, 2)


def test_readyz_names_backend_device_precision_and_engine(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path))) as client:
        ready = client.get("/readyz").json()
    assert ready["backend"] == "onnxruntime" and ready["device"] == "cpu"
    assert ready["precision"] == "int8-cpu"
    assert ready["engine_id"].startswith("authentiq-default.int8-cpu.onnx@sha256:")


@no_tensorrt
def test_build_engine_without_tensorrt_is_a_readable_cli_error(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build-engine"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: TensorRT is not installed") and "authentiq[tensorrt]" in err
