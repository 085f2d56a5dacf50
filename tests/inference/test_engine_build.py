"""Real TensorRT engine builds from the shipped INT8 model (TensorRT-RTX builds without a GPU).

Marked ``tensorrt``: ``make test`` runs them in a second pass with tensorrt-rtx installed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from authentiq.errors import BackendUnavailable, EngineBuildFailed, EngineMismatch
from authentiq.inference.backends.cuda import Gpu
from authentiq.inference.backends.tensorrt import deserialize
from authentiq.inference.backends.tensorrt_lib import TensorRT, process_logger
from authentiq.inference.engine_build import BuildOptions, digest, key_fields, load_or_build, sidecar_path
from authentiq.inference.engine_compat import runs_on
from tests.conftest import ENGINES, FP32_MODEL, REPO

pytestmark = pytest.mark.tensorrt
INT8_TRT = ENGINES / "authentiq-default.int8-trt.onnx"
OPTIONS = BuildOptions(max_batch=32, opt_batch=8)
RTX4090 = Gpu(0, "NVIDIA GeForce RTX 4090", (8, 9), 24 << 30)
H200 = Gpu(0, "NVIDIA H200", (9, 0), 141 << 30)


@pytest.fixture(scope="module")
def int8_engine(tensorrt: TensorRT, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("engines")
    model = folder / INT8_TRT.name
    shutil.copy(INT8_TRT, model)
    return model, folder / "plans", load_or_build(model, folder / "plans", tensorrt, None, OPTIONS)


def test_int8_plan_is_built_for_real_with_the_dynamic_profile(int8_engine, tensorrt: TensorRT,  # type: ignore[no-untyped-def]
                                                              tmp_path: Path) -> None:
    _, _, engine = int8_engine
    assert engine.built and engine.path.is_file() and engine.path.read_bytes() == engine.plan
    assert engine.path.name == f"{INT8_TRT.stem}.tensorrt_rtx.portable.plan"
    assert engine.fields["profile"] == {"min": [1, 3, 256, 384], "opt": [8, 3, 256, 384],
                                        "max": [32, 3, 256, 384]}
    assert engine.fields["tensorrt"] == f"{tensorrt.flavour} {tensorrt.version}"
    sidecar = json.loads(sidecar_path(engine.path).read_text())
    assert sidecar["key"] == engine.key == digest(engine.fields, engine.runs_on)
    assert sidecar["runs_on"]["compute_capabilities"] == ["8.0", "8.6", "8.9", "12.x"]
    assert sidecar["built_on"].startswith("no GPU")
    fp32 = load_or_build(FP32_MODEL, tmp_path, tensorrt, None, OPTIONS)
    ratio = len(engine.plan) / len(fp32.plan)
    assert ratio < 0.7, f"INT8 plan is {ratio:.2f}× the FP32 plan"  # measured 0.55


def test_second_build_is_a_cache_hit(int8_engine, tensorrt: TensorRT) -> None:  # type: ignore[no-untyped-def]
    model, plans, first = int8_engine
    again = load_or_build(model, plans, tensorrt, None, OPTIONS)
    assert not again.built and again.key == first.key and again.plan == first.plan


def test_a_plan_built_without_a_gpu_serves_the_gpus_it_targets(int8_engine,  # type: ignore[no-untyped-def]
                                                               tensorrt: TensorRT) -> None:
    """Built ahead of time here, the TensorRT-RTX plan is found on an RTX host with building
    disabled — and refused, by name, on a GPU outside its targets."""
    model, plans, first = int8_engine
    on_gpu = load_or_build(model, plans, tensorrt, RTX4090, OPTIONS, allow_build=False)
    assert not on_gpu.built and on_gpu.plan == first.plan
    with pytest.raises(EngineMismatch, match=r"compute capabilities 8\.0, 8\.6, 8\.9, 12\.x; "
                                             r"NVIDIA H200 \(sm_90\) is 9\.0"):
        load_or_build(model, plans, tensorrt, H200, OPTIONS, allow_build=False)


@pytest.mark.parametrize("change", [
    {"opt_batch": 4}, {"max_batch": 16}, {"workspace_mib": 512}, {"optimization_level": 2},
    {"hardware_compatibility": "ampere_plus"}, {"version_compatible": True},
])
def test_changed_options_change_the_key(tensorrt: TensorRT, change: dict[str, object]) -> None:
    data = INT8_TRT.read_bytes()
    target = runs_on(tensorrt, None, "none")
    base = digest(key_fields(data, tensorrt, (-1, 3, 256, 384), OPTIONS), target)
    changed = digest(key_fields(data, tensorrt, (-1, 3, 256, 384), replace(OPTIONS, **change)), target)  # type: ignore[arg-type]
    assert changed != base


def test_changed_model_changes_the_key(tensorrt: TensorRT) -> None:
    data = INT8_TRT.read_bytes()
    target = runs_on(tensorrt, None, "none")
    base = digest(key_fields(data, tensorrt, (-1, 3, 256, 384), OPTIONS), target)
    assert digest(key_fields(data + b" ", tensorrt, (-1, 3, 256, 384), OPTIONS), target) != base


def test_mismatched_plan_is_rebuilt_or_refused_by_name(int8_engine, tensorrt: TensorRT) -> None:  # type: ignore[no-untyped-def]
    model, plans, first = int8_engine
    other = replace(OPTIONS, opt_batch=4)
    with pytest.raises(EngineMismatch, match="options") as refused:
        load_or_build(model, plans, tensorrt, None, other, allow_build=False)
    assert "build-engine" in refused.value.detail
    rebuilt = load_or_build(model, plans, tensorrt, None, other)
    assert rebuilt.built and rebuilt.key != first.key
    back = load_or_build(model, plans, tensorrt, None, OPTIONS)  # one plan per model and target
    assert back.built and back.key == first.key


def test_a_plan_from_another_version_is_refused_by_name(int8_engine, tensorrt: TensorRT) -> None:  # type: ignore[no-untyped-def]
    model, plans, first = int8_engine
    sidecar = sidecar_path(first.path)
    record = json.loads(sidecar.read_text())
    record["fields"]["tensorrt"] = "tensorrt_rtx 1.6.1.120"
    sidecar.write_text(json.dumps(record))
    with pytest.raises(EngineMismatch, match=r"built by tensorrt_rtx 1\.6\.1\.120 and loads in "
                                             r"exactly that version"):
        load_or_build(model, plans, tensorrt, None, OPTIONS, allow_build=False)
    assert load_or_build(model, plans, tensorrt, None, OPTIONS).built


def test_tampered_plan_is_never_loaded(int8_engine, tensorrt: TensorRT) -> None:  # type: ignore[no-untyped-def]
    model, plans, first = int8_engine
    first.path.write_bytes(first.plan[:-10] + b"0123456789")
    again = load_or_build(model, plans, tensorrt, None, OPTIONS)
    assert again.built and again.key == first.key  # checksum differed: rebuilt
    assert again.path.read_bytes() == again.plan != first.plan[:-10] + b"0123456789"


def test_unparseable_model_is_a_clear_build_error(tensorrt: TensorRT, tmp_path: Path,
                                                  tiny_model: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(tiny_model.read_bytes()[:200])
    with pytest.raises(EngineBuildFailed):
        load_or_build(broken, tmp_path, tensorrt, None, OPTIONS)
    assert not list(tmp_path.glob("*.plan*")), "a failed build left a plan behind"


def test_version_compatible_rtx_build_is_refused_before_building(tensorrt: TensorRT,
                                                                 tmp_path: Path) -> None:
    with pytest.raises(EngineBuildFailed, match="cannot build version-compatible plans"):
        load_or_build(INT8_TRT, tmp_path, tensorrt, None, replace(OPTIONS, version_compatible=True))
    assert not list(tmp_path.iterdir())


def test_one_process_logger_serves_builds_and_runtimes(int8_engine, tensorrt: TensorRT) -> None:  # type: ignore[no-untyped-def]
    """TensorRT keeps one logger per process; we give it the same one every time, and a failure
    quotes the lines of its own operation."""
    _, _, engine = int8_engine
    logger = process_logger(tensorrt.module)
    assert process_logger(tensorrt.module) is logger
    logger.record("ERROR", "an earlier operation's error")
    with pytest.raises(BackendUnavailable) as failed:
        deserialize(engine.plan, tensorrt, "this machine")
    assert "could not deserialise" in failed.value.detail
    assert "an earlier operation's error" not in failed.value.detail
    assert "[INTERNAL_ERROR]" in failed.value.detail or "[ERROR]" in failed.value.detail


def test_two_concurrent_build_engine_runs_build_once(tensorrt: TensorRT, tmp_path: Path) -> None:
    """As under `serve --workers 2`: two processes want the same plan at once; one builds, the
    other waits on the lock and finds it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in [str(REPO), *sys.path] if p)}
    command = [sys.executable, "-m", "authentiq", "build-engine", "--engine-dir", str(tmp_path),
               "--flavour", tensorrt.flavour, "--max-batch", "32", "--opt-batch", "8"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env, cwd=tmp_path) for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    states = sorted(out.split(":", 1)[0] for out, _ in outputs)
    assert states == ["built", "cache hit"], outputs
    assert "builds ahead of time" in outputs[0][1]
    assert len(list(tmp_path.glob("*.plan"))) == 1


def test_deserialising_without_a_gpu_fails_with_tensorrts_own_words(int8_engine,  # type: ignore[no-untyped-def]
                                                                     tensorrt: TensorRT) -> None:
    _, _, engine = int8_engine
    with pytest.raises(BackendUnavailable) as failed:
        deserialize(engine.plan, tensorrt, "this machine")
    assert "could not deserialise" in failed.value.detail
    assert "[INTERNAL_ERROR]" in failed.value.detail or "[ERROR]" in failed.value.detail


def test_tensorrt_rtx_is_refused_on_a_gpu_it_does_not_run_on(tensorrt: TensorRT, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """On an H200 (a STAND-IN CUDA runtime reports one) TensorRT-RTX is refused before any build,
    naming TensorRT as the stack for data-centre GPUs."""
    from authentiq.inference.backends import cuda
    from authentiq.inference.select import open_backend
    from tests.conftest import make_settings
    from tests.standin_gpu import StandInCudaRuntime, StandInCudaUtils

    runtime = StandInCudaRuntime("NVIDIA H200", (9, 0))
    monkeypatch.setattr(cuda, "runtime", lambda: runtime)
    monkeypatch.setattr(cuda, "utils", lambda: StandInCudaUtils)
    with pytest.raises(BackendUnavailable, match=r"does not run on NVIDIA H200 \(sm_90\).*authentiq\[tensorrt\]"):
        settings = make_settings(tmp_path, backend="tensorrt", tensorrt_flavour="tensorrt_rtx",
                                 engine_dir=tmp_path)
        open_backend(settings.model, settings.batcher, timeout_s=30)
    assert not list(tmp_path.glob("*.plan"))


def test_auto_falls_back_to_onnxruntime_and_says_why(tensorrt: TensorRT, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    from authentiq.inference.select import open_backend
    from tests.conftest import make_settings

    with caplog.at_level(logging.INFO):
        settings = make_settings(tmp_path, backend="auto", engine_dir=tmp_path)
        backend = open_backend(settings.model, settings.batcher, timeout_s=30)
    assert backend.info.name == "onnxruntime" and backend.info.device == "cpu"
    assert "TensorRT not used: no usable GPU" in caplog.text
    backend.close()
