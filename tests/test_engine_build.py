"""Real TensorRT engine builds from the shipped INT8 model (TensorRT-RTX builds without a GPU).

Marked ``tensorrt``: ``make test`` runs them in a second pass with tensorrt-rtx installed.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from authentiq.backends.tensorrt import deserialize
from authentiq.backends.tensorrt_lib import TensorRT, capturing_logger
from authentiq.engine_build import NO_GPU, BuildOptions, EngineMismatch, digest, key_fields, load_or_build
from authentiq.errors import BackendUnavailable
from tests.conftest import ENGINES, FP32_MODEL

pytestmark = pytest.mark.tensorrt
INT8_TRT = ENGINES / "authentiq-default.int8-trt.onnx"
OPTIONS = BuildOptions(max_batch=32, opt_batch=8)


@pytest.fixture(scope="module")
def int8_engine(tensorrt: TensorRT, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("engines")
    model = folder / INT8_TRT.name
    shutil.copy(INT8_TRT, model)
    return model, folder / "plans", load_or_build(model, folder / "plans", tensorrt, NO_GPU, OPTIONS)


def test_int8_plan_is_built_for_real_with_the_dynamic_profile(int8_engine, tensorrt: TensorRT,  # type: ignore[no-untyped-def]
                                                              tmp_path: Path) -> None:
    _, _, engine = int8_engine
    assert engine.built and engine.path.is_file() and engine.path.read_bytes() == engine.plan
    assert engine.fields["profile"] == {"min": [1, 3, 256, 384], "opt": [8, 3, 256, 384],
                                        "max": [32, 3, 256, 384]}
    assert engine.fields["tensorrt"] == f"{tensorrt.flavour} {tensorrt.version}"
    sidecar = json.loads(engine.path.with_name(engine.path.name + ".json").read_text())
    assert sidecar["key"] == engine.key == digest(engine.fields)
    fp32 = load_or_build(FP32_MODEL, tmp_path, tensorrt, NO_GPU, OPTIONS)
    ratio = len(engine.plan) / len(fp32.plan)
    assert ratio < 0.7, f"INT8 plan is {ratio:.2f}× the FP32 plan"  # measured 0.55


def test_second_build_is_a_cache_hit(int8_engine, tensorrt: TensorRT) -> None:  # type: ignore[no-untyped-def]
    model, plans, first = int8_engine
    again = load_or_build(model, plans, tensorrt, NO_GPU, OPTIONS)
    assert not again.built and again.key == first.key and again.plan == first.plan


@pytest.mark.parametrize("change", [
    {"opt_batch": 4}, {"max_batch": 16}, {"workspace_mib": 512}, {"optimization_level": 2},
    {"hardware_compatibility": "ampere_plus"}, {"version_compatible": True},
])
def test_changed_options_change_the_key(tensorrt: TensorRT, change: dict[str, object]) -> None:
    data = INT8_TRT.read_bytes()
    base = digest(key_fields(data, tensorrt, NO_GPU, (-1, 3, 256, 384), OPTIONS))
    changed = digest(key_fields(data, tensorrt, NO_GPU, (-1, 3, 256, 384), replace(OPTIONS, **change)))  # type: ignore[arg-type]
    assert changed != base


def test_changed_model_or_gpu_changes_the_key(tensorrt: TensorRT) -> None:
    data = INT8_TRT.read_bytes()
    base = digest(key_fields(data, tensorrt, NO_GPU, (-1, 3, 256, 384), OPTIONS))
    assert digest(key_fields(data + b" ", tensorrt, NO_GPU, (-1, 3, 256, 384), OPTIONS)) != base
    assert digest(key_fields(data, tensorrt, "NVIDIA RTX 4090 (sm_89)", (-1, 3, 256, 384),
                             OPTIONS)) != base


def test_mismatched_plan_is_rebuilt_or_refused_by_name(int8_engine, tensorrt: TensorRT) -> None:  # type: ignore[no-untyped-def]
    model, plans, first = int8_engine
    other = replace(OPTIONS, opt_batch=4)
    with pytest.raises(EngineMismatch, match="options") as refused:
        load_or_build(model, plans, tensorrt, NO_GPU, other, allow_build=False)
    assert "build-engine" in refused.value.detail
    with pytest.raises(EngineMismatch, match="gpu: plan has 'none"):
        load_or_build(model, plans, tensorrt, "NVIDIA RTX 4090 (sm_89)", OPTIONS, allow_build=False)
    rebuilt = load_or_build(model, plans, tensorrt, NO_GPU, other)
    assert rebuilt.built and rebuilt.key != first.key
    back = load_or_build(model, plans, tensorrt, NO_GPU, OPTIONS)  # one plan per model: rebuilt again
    assert back.built and back.key == first.key


def test_tampered_plan_is_never_loaded(int8_engine, tensorrt: TensorRT) -> None:  # type: ignore[no-untyped-def]
    model, plans, first = int8_engine
    first.path.write_bytes(first.plan[:-10] + b"0123456789")
    again = load_or_build(model, plans, tensorrt, NO_GPU, OPTIONS)
    assert again.built and again.key == first.key  # checksum differed: rebuilt
    assert again.path.read_bytes() == again.plan != first.plan[:-10] + b"0123456789"


def test_unparseable_model_is_a_clear_build_error(tensorrt: TensorRT, tmp_path: Path,
                                                  tiny_model: Path) -> None:
    from authentiq.engine_build import EngineBuildFailed

    broken = tmp_path / "broken.onnx"
    broken.write_bytes(tiny_model.read_bytes()[:200])
    with pytest.raises(EngineBuildFailed):
        load_or_build(broken, tmp_path, tensorrt, NO_GPU, OPTIONS)
    assert not list(tmp_path.glob("*.plan*")), "a failed build left a plan behind"


def test_deserialising_without_a_gpu_fails_with_tensorrts_own_words(int8_engine,  # type: ignore[no-untyped-def]
                                                                     tensorrt: TensorRT) -> None:
    _, _, engine = int8_engine
    with pytest.raises(BackendUnavailable) as failed:
        deserialize(engine.plan, tensorrt, capturing_logger(tensorrt), "this machine")
    assert "could not deserialise" in failed.value.detail
    assert "[ERROR]" in failed.value.detail  # TensorRT's own log lines are quoted


def test_auto_falls_back_to_onnxruntime_and_says_why(tensorrt: TensorRT, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    from authentiq.backends.select import open_backend
    from tests.conftest import make_settings

    with caplog.at_level(logging.INFO):
        settings = make_settings(tmp_path, backend="auto", engine_dir=tmp_path)
        backend = open_backend(settings.model, settings.batcher, timeout_s=30)
    assert backend.info.name == "onnxruntime" and backend.info.device == "cpu"
    assert "TensorRT not used: no usable GPU" in caplog.text
    backend.close()
