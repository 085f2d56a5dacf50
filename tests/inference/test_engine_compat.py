"""Where a plan runs and which TensorRT may load it (authentiq.inference.engine_compat), and the build
refusals and timing-cache handling of authentiq.inference.engine_build that need no TensorRT library.

The real builds are in tests/inference/test_engine_build.py (TensorRT-RTX pass)."""

from __future__ import annotations

from pathlib import Path

import pytest

from authentiq.errors import EngineBuildFailed
from authentiq.inference.backends.cuda import Gpu
from authentiq.inference.backends.tensorrt_lib import TensorRT, version_tuple
from authentiq.inference.engine_build import (
    BuildOptions,
    attach_timing_cache,
    check_buildable,
    load_or_build,
    plan_path,
)
from authentiq.inference.engine_compat import admits, runs_on, target_tag, version_admits
from tests.conftest import ENGINES

pytestmark = pytest.mark.db_independent  # the PostgreSQL pass leaves it out

TRT = TensorRT(module=None, flavour="tensorrt", version="10.8.0.43")
TRT_10_9 = TensorRT(module=None, flavour="tensorrt", version="10.9.0.34")
RTX = TensorRT(module=None, flavour="tensorrt_rtx", version="1.7.1.116")
A100 = Gpu(0, "NVIDIA A100-SXM4-80GB", (8, 0), 80 << 30)
L4 = Gpu(0, "NVIDIA L4", (8, 9), 24 << 30)
RTX4090 = Gpu(0, "NVIDIA GeForce RTX 4090", (8, 9), 24 << 30)
RTX5090 = Gpu(0, "NVIDIA GeForce RTX 5090", (12, 0), 32 << 30)
H200 = Gpu(0, "NVIDIA H200", (9, 0), 141 << 30)
T4 = Gpu(0, "Tesla T4", (7, 5), 16 << 30)


@pytest.mark.parametrize(("trt", "built_on", "compat", "runs", "refused"), [
    (TRT, L4, "none", [L4], [RTX4090, A100, H200]),  # the same name and CC, nothing else
    (TRT_10_9, L4, "same_compute_capability", [L4, RTX4090], [A100, H200]),
    (TRT, A100, "ampere_plus", [A100, L4, H200, RTX5090], [T4]),
    (RTX, None, "none", [A100, L4, RTX4090, RTX5090], [H200, T4]),  # RTX's portable set, no GPU
    (RTX, RTX4090, "none", [A100, L4, RTX5090], [H200]),  # the same plan, built on a GPU
])
def test_a_plan_runs_where_its_target_says(trt: TensorRT, built_on: Gpu | None, compat: str,
                                          runs: list[Gpu], refused: list[Gpu]) -> None:
    target = runs_on(trt, built_on, compat)
    assert [admits(target, gpu) for gpu in runs] == [None] * len(runs)
    for gpu in refused:
        assert gpu.label in (admits(target, gpu) or "")


def test_plan_names_say_where_they_run(tmp_path: Path) -> None:
    onnx = Path("m.int8-trt.onnx")
    names = {plan_path(onnx, tmp_path, trt, gpu, BuildOptions(hardware_compatibility=compat)).name
             for trt, gpu, compat in [(TRT, L4, "none"), (TRT, RTX4090, "none"),
                                      (TRT_10_9, L4, "same_compute_capability"),
                                      (TRT, A100, "ampere_plus"), (TRT, L4, "ampere_plus"),
                                      (RTX, None, "none"), (RTX, RTX5090, "none")]}
    assert names == {"m.int8-trt.tensorrt.nvidia-l4-sm89.plan",
                     "m.int8-trt.tensorrt.nvidia-geforce-rtx-4090-sm89.plan",
                     "m.int8-trt.tensorrt.sm89.plan", "m.int8-trt.tensorrt.ampere-plus.plan",
                     "m.int8-trt.tensorrt_rtx.portable.plan"}
    assert target_tag(RTX, None, "ampere_plus") == "portable"  # RTX ignores the option


@pytest.mark.parametrize(("plan", "runtime", "compatible", "loads"), [
    ("tensorrt 10.8.0.43", "tensorrt 10.8.0.43", False, True),
    ("tensorrt 10.8.0.43", "tensorrt 10.8.0.44", False, False),  # "expecting library version"
    ("tensorrt 10.8.0.43", "tensorrt 10.13.3.9", False, False),
    ("tensorrt 10.8.0.43", "tensorrt 10.13.3.9", True, True),  # version-compatible: later loads
    ("tensorrt 10.13.3.9", "tensorrt 10.8.0.43", True, False),  # never an older runtime
    ("tensorrt_rtx 1.7.1.116", "tensorrt 10.8.0.43", False, False),
    ("tensorrt_rtx 1.6.1.120", "tensorrt_rtx 1.7.1.116", False, False),
])
def test_version_rules(plan: str, runtime: str, compatible: bool, loads: bool) -> None:
    refused = version_admits(plan, runtime, compatible)
    assert (refused is None) is loads
    if refused:
        assert plan in refused and runtime in refused


def test_version_tuple_drops_suffixes() -> None:
    assert version_tuple("10.14.1.48.post1") == (10, 14, 1, 48)
    assert version_tuple("1.7.1.116") == (1, 7, 1, 116)


def test_builds_this_tensorrt_cannot_do_are_refused_first() -> None:
    with pytest.raises(EngineBuildFailed, match="builds a plan on a GPU"):
        check_buildable(TRT, None, BuildOptions())  # TensorRT proper has no ahead-of-time build
    with pytest.raises(EngineBuildFailed, match="builds a plan on a GPU"):
        check_buildable(TRT, None, BuildOptions(hardware_compatibility="ampere_plus"))
    with pytest.raises(EngineBuildFailed, match=r"needs TensorRT 10\.9 or later; this is 10\.8"):
        check_buildable(TRT, L4, BuildOptions(hardware_compatibility="same_compute_capability"))
    check_buildable(TRT_10_9, L4, BuildOptions(hardware_compatibility="same_compute_capability"))
    with pytest.raises(EngineBuildFailed, match="lean runtime"):
        check_buildable(RTX, None, BuildOptions(version_compatible=True))
    check_buildable(RTX, None, BuildOptions())


def test_build_engine_without_a_gpu_on_tensorrt_proper_says_why(tmp_path: Path) -> None:
    """`build-engine` on a host without a GPU: TensorRT proper cannot build "ahead of time"."""
    with pytest.raises(EngineBuildFailed, match="Only TensorRT-RTX builds without a GPU"):
        load_or_build(ENGINES / "authentiq-default.int8-trt.onnx", tmp_path, TRT, None, BuildOptions())
    assert not list(tmp_path.iterdir())


class StandInBuilderConfig:
    """STAND-IN for TensorRT's IBuilderConfig timing-cache calls: accepts a cache made "here"."""

    def __init__(self, accepts: set[bytes]) -> None:
        self.accepts, self.attached = accepts, None

    def create_timing_cache(self, data: bytes) -> bytes:
        return data

    def set_timing_cache(self, cache: bytes, ignore_mismatch: bool) -> bool:
        if cache not in self.accepts or ignore_mismatch:
            return False
        self.attached = cache
        return True


def test_a_refused_timing_cache_is_replaced_not_ignored(caplog: pytest.LogCaptureFixture) -> None:
    config = StandInBuilderConfig({b"", b"this GPU"})
    assert attach_timing_cache(config, b"this GPU") == b"this GPU" == config.attached
    assert attach_timing_cache(config, b"another GPU") == b"" == config.attached
    assert "refused the saved timing cache" in caplog.text
    with pytest.raises(EngineBuildFailed, match="refused an empty timing cache"):
        attach_timing_cache(StandInBuilderConfig(set()), None)
