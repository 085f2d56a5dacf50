"""TensorRTBackend's runtime paths — warm-up, sticky CUDA errors, close order, I/O checks, the
TensorRT-RTX runtime cache — on STAND-INS for CUDA's and TensorRT's runtimes (tests/standin_gpu.py).

No engine can execute here (no GPU; TensorRT proper cannot be installed), so these run our real
backend and our real cuda-python layer on stand-ins named as such. What the stand-ins cannot show
(real kernels, real faults) scripts/gpu_check.py checks on a GPU.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from authentiq.api.app import create_app
from authentiq.contract.model_spec import model_id, read_spec
from authentiq.errors import BackendFailed, BackendUnavailable, CudaError, InferenceFailed
from authentiq.inference.backends import cuda
from authentiq.inference.backends.onnxruntime import OnnxRuntimeBackend
from authentiq.inference.backends.tensorrt import TensorRTBackend
from authentiq.inference.backends.tensorrt_lib import TensorRT
from authentiq.modelling.synthetic import make_item
from authentiq.settings import DEFAULT_TRT_MODEL
from tests.conftest import files_of, make_settings
from tests.standin_gpu import (
    PLAN,
    CudaErr,
    EngineBehaviour,
    StandInCudaRuntime,
    StandInCudaUtils,
    StandInTensorRT,
)

SPEC = read_spec(DEFAULT_TRT_MODEL)


@pytest.fixture
def cudart(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandInCudaRuntime]:
    """Our cuda module on the stand-in CUDA runtime."""
    runtime = StandInCudaRuntime()
    monkeypatch.setattr(cuda, "runtime", lambda: runtime)
    monkeypatch.setattr(cuda, "utils", lambda: StandInCudaUtils)
    yield runtime
    assert not runtime.memory or runtime.sticky, "buffers left allocated"


def backend(behaviour: EngineBehaviour | None = None, *, flavour: str = "tensorrt",
            **kwargs: object) -> TensorRTBackend:
    module = StandInTensorRT(DEFAULT_TRT_MODEL, behaviour)
    trt = TensorRT(module, flavour, module.__version__)
    return TensorRTBackend(PLAN, trt, SPEC, engine_id="stand-in.plan@0", gpu=cuda.gpus()[0],
                           model_id=model_id(DEFAULT_TRT_MODEL),  # as open_backend gives it
                           **kwargs)  # type: ignore[arg-type]


def views(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 3, 256, 384)).astype(np.float32)


def test_batches_come_back_as_the_model_computes_them(cudart: StandInCudaRuntime) -> None:
    b = backend(instances=2)
    reference = OnnxRuntimeBackend(DEFAULT_TRT_MODEL, intra_op_threads=2)
    try:
        assert [t.name for t in b.io][:4] == ["views", "logits", "embedding", "cam"]
        assert "view_scores" in {t.name for t in b.io}
        assert b.input.max_shape == (8, 3, 256, 384) and b.failure() is None
        for n in (1, 5, 8):
            got, want = b.run(views(n, n)), reference.run(views(n, n))
            for name in ("logits", "embedding", "cam", "view_scores", "view_features",
                         "view_descriptors"):
                np.testing.assert_allclose(getattr(got, name), getattr(want, name), atol=1e-5)
        with pytest.raises(InferenceFailed, match="outside the engine's profile"):
            b.run(views(9))
    finally:
        b.close()
        reference.close()


def test_every_instance_warms_up_min_opt_max_before_it_is_handed_out(
        cudart: StandInCudaRuntime) -> None:
    behaviour = EngineBehaviour(max_batch=8, opt_batch=4)
    b = backend(behaviour, instances=2)
    assert behaviour.executions == [1, 4, 8, 1, 4, 8]  # in the constructor, before any request
    b.close()


def test_sticky_cuda_error_fails_fast_and_is_reported(cudart: StandInCudaRuntime,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    behaviour = EngineBehaviour()
    b = backend(behaviour)
    done = len(behaviour.executions)
    cudart.fail_next_sync = CudaErr.cudaErrorIllegalAddress  # a kernel fault, seen at the sync
    with caplog.at_level(logging.CRITICAL), pytest.raises(BackendFailed) as failed:
        b.run(views(2))
    assert "cudaErrorIllegalAddress" in failed.value.detail and failed.value.status == 503
    assert "restarted" in (b.failure() or "") and "CUDA context is lost" in caplog.text
    calls, executions = cudart.calls, len(behaviour.executions)
    with pytest.raises(BackendFailed):
        b.run(views(2))  # refused at once: no CUDA call, no engine call
    assert (cudart.calls, len(behaviour.executions)) == (calls, executions) == (calls, done + 1)
    b.close()  # frees fail like everything after a sticky error; close logs them and returns


def test_a_cuda_error_that_is_not_sticky_fails_the_batch_only(cudart: StandInCudaRuntime) -> None:
    b = backend()
    cudart.fail_next_sync = CudaErr.cudaErrorInvalidValue
    with pytest.raises(CudaError) as failed:
        b.run(views(2))
    assert not isinstance(failed.value, BackendFailed) and not failed.value.sticky
    cudart.sticky = None  # stand-in: a non-sticky error is returned once, not forever
    assert b.failure() is None and len(b.run(views(2))) == 2
    b.close()


def test_failed_execute_reports_the_cuda_error_behind_it(cudart: StandInCudaRuntime) -> None:
    behaviour = EngineBehaviour()
    b = backend(behaviour)
    behaviour.fail_execute = True
    with pytest.raises(InferenceFailed, match="execute_async_v3 failed"):
        b.run(views(1))  # no CUDA error pending: TensorRT's own failure
    cudart.sticky = CudaErr.cudaErrorLaunchFailure
    with pytest.raises(BackendFailed, match="cudaErrorLaunchFailure"):
        b.run(views(1))
    b.close()


def test_close_releases_contexts_then_frees_on_the_selected_device(
        cudart: StandInCudaRuntime) -> None:
    b = backend(instances=2)
    tensors = len(b.io)
    owner = {buf.ptr: instance for instance in b._all for buf in instance.device.values()}
    freed_with_context: list[bool] = []
    real_free = cudart.cudaFree

    def free(ptr: int) -> tuple[object, ...]:  # is the context that holds this address alive?
        freed_with_context.append(owner[ptr].context is not None)
        return real_free(ptr)

    cudart.cudaFree = free  # type: ignore[method-assign]
    cudart.events.clear()
    b.close()
    kinds = [kind for kind, _ in cudart.events]
    assert kinds[0] == "set_device"
    assert freed_with_context == [False] * 2 * tensors
    assert kinds.count("free") == 2 * tensors and kinds.count("free_host") == 2 * tensors
    assert kinds.count("stream_destroy") == 2 and not cudart.memory
    assert b.engine is None


def test_io_the_contract_cannot_hold_is_refused_by_name(cudart: StandInCudaRuntime) -> None:
    with pytest.raises(BackendUnavailable, match="'cam' is BF16"):
        backend(EngineBehaviour(dtypes={"cam": "BF16"}))
    with pytest.raises(BackendUnavailable, match="refused the profile's max shape"):
        backend(EngineBehaviour(refuse_shapes=True))


def test_float16_outputs_come_back_as_float32(cudart: StandInCudaRuntime) -> None:
    b = backend(EngineBehaviour(dtypes={"cam": "HALF", "embedding": "HALF"}))
    reference = OnnxRuntimeBackend(DEFAULT_TRT_MODEL, intra_op_threads=2)
    got, want = b.run(views(3)), reference.run(views(3))
    assert got.cam.dtype == np.float32 and got.embedding.dtype == np.float32
    np.testing.assert_allclose(got.cam, want.cam, rtol=2e-3, atol=2e-3)
    b.close()
    reference.close()


def test_version_compatible_plans_may_run_their_host_code(cudart: StandInCudaRuntime) -> None:
    for compatible in (False, True):
        b = backend(version_compatible=compatible)
        assert b.trt.module.runtimes[-1].engine_host_code_allowed is compatible
        b.close()


def test_tensorrt_rtx_keeps_its_jit_kernels_in_a_runtime_cache(cudart: StandInCudaRuntime,
                                                              tmp_path: Path) -> None:
    cache = tmp_path / "plan.1.7.1.116.nvidia-l4-sm89.runtime-cache"
    behaviour = EngineBehaviour()
    b = backend(behaviour, flavour="tensorrt_rtx", instances=2, runtime_cache=cache)
    assert len(behaviour.contexts) == 3  # the probe, then two instances with the runtime config
    config = behaviour.contexts[1]
    assert config is not None and behaviour.contexts[2] is config and config.cache is not None
    assert cache.read_bytes() == b"kernels:compiled-at-warm-up"  # written after warm-up
    b.close()
    cache.write_bytes(b"kernels:from-the-last-start")
    again = backend(flavour="tensorrt_rtx", runtime_cache=cache)
    assert again.trt.module.runtime_caches[-1].data == b"kernels:from-the-last-start"
    again.close()
    cache.write_bytes(b"garbage")  # refused: reset, compiled afresh, replaced
    third = backend(flavour="tensorrt_rtx", runtime_cache=cache)
    assert third.trt.module.runtime_caches[-1].resets == 1
    third.close()
    assert cache.read_bytes() == b"kernels:compiled-at-warm-up"


def test_sticky_error_makes_readyz_fail_and_requests_fail_fast(
        cudart: StandInCudaRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the app: after a sticky CUDA error /readyz answers 503 naming it, and a request
    is answered 503 at once — its batch ran once, not again row by row."""
    behaviour = EngineBehaviour(max_batch=8)
    monkeypatch.setattr("authentiq.services.container.open_backend", lambda *args, **kwargs: backend(behaviour))
    item = make_item(930_000, counterfeit=False)
    form = {"brand": item.brand, "model": item.model}
    with TestClient(create_app(make_settings(tmp_path))) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["backend"] == "tensorrt"
        assert ready.json()["backend_error"] is None
        warm = len(behaviour.executions)
        cudart.fail_next_sync = CudaErr.cudaErrorIllegalAddress
        answer = client.post("/v1/inspections", files=files_of(item), data=form)
        assert answer.status_code == 503 and answer.json()["type"].endswith("/backend-failed")
        assert len(behaviour.executions) == warm + 1
        again = client.post("/v1/inspections", files=files_of(item), data=form)
        assert again.status_code == 503 and len(behaviour.executions) == warm + 1
        ready = client.get("/readyz")
        assert ready.status_code == 503 and not ready.json()["ready"]
        assert "cudaErrorIllegalAddress" in ready.json()["backend_error"]


def test_the_runtime_cache_file_is_per_rtx_version_and_gpu_model() -> None:
    from authentiq.inference.select import runtime_cache_path

    plan = Path("engines/m.int8-trt.tensorrt_rtx.portable.plan")
    l4, rtx4090 = cuda.Gpu(0, "NVIDIA L4", (8, 9), 1), cuda.Gpu(0, "NVIDIA GeForce RTX 4090", (8, 9), 1)
    rtx = TensorRT(None, "tensorrt_rtx", "1.7.1.116")
    names = {runtime_cache_path(plan, rtx, gpu) for gpu in (l4, rtx4090)}
    assert names == {plan.with_name("m.int8-trt.tensorrt_rtx.portable.1.7.1.116.nvidia-l4-sm89.runtime-cache"),
                     plan.with_name("m.int8-trt.tensorrt_rtx.portable.1.7.1.116.nvidia-geforce-rtx-4090-sm89"
                                    ".runtime-cache")}
    assert runtime_cache_path(plan, TensorRT(None, "tensorrt", "10.8.0.43"), l4) is None
