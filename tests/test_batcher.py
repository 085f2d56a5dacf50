"""The batcher with the real ONNX Runtime backend (tiny contract model)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from authentiq.backends.base import Outputs
from authentiq.backends.onnxruntime import OnnxRuntimeBackend
from authentiq.batcher import Batcher, BatcherConfig
from authentiq.errors import BackendUnavailable, InferenceFailed


def inputs(backend: OnnxRuntimeBackend, n: int) -> list[np.ndarray]:
    h, w = backend.spec.input_hw
    rng = np.random.default_rng(3)
    return [rng.normal(0, 1, (3, h, w)).astype(np.float32) for _ in range(n)]


async def run_all(batcher: Batcher, xs: list[np.ndarray]) -> list[object]:
    await batcher.start()
    try:
        return await asyncio.gather(*(batcher.submit(x) for x in xs), return_exceptions=True)
    finally:
        await batcher.close()


@pytest.mark.parametrize("n, max_batch", [(1, 8), (5, 8), (8, 8), (13, 4)])
def test_results_reach_their_request(tiny_model: Path, n: int, max_batch: int) -> None:
    backend = OnnxRuntimeBackend(tiny_model, intra_op_threads=1)
    xs = inputs(backend, n)
    batcher = Batcher(backend, BatcherConfig(max_batch, max_queue_delay_s=0.05))
    results = asyncio.run(run_all(batcher, xs))
    for x, result in zip(xs, results, strict=True):
        assert isinstance(result, tuple)
        alone = backend.run(x[None])
        np.testing.assert_allclose(result[0].logits, alone.logits, rtol=1e-4, atol=1e-5)
    assert batcher.batches_run == -(-n // max_batch)  # concurrent requests shared batches


class FailsOnMarkedRows:
    """Test double around the real backend: raises if a batch holds a row marked with NaN."""

    def __init__(self, backend: OnnxRuntimeBackend) -> None:
        self.backend, self.spec, self.info = backend, backend.spec, backend.info

    def run(self, views: np.ndarray) -> Outputs:
        if np.isnan(views).any():
            raise InferenceFailed("marked row")
        return self.backend.run(views)

    def close(self) -> None:
        self.backend.close()


def test_one_bad_item_fails_only_its_request(tiny_model: Path) -> None:
    backend = OnnxRuntimeBackend(tiny_model, intra_op_threads=1)
    xs = inputs(backend, 4)
    xs[2] = xs[2].copy()
    xs[2][0, 0, 0] = np.nan
    results = asyncio.run(run_all(Batcher(FailsOnMarkedRows(backend), BatcherConfig(8, 0.05)), xs))  # type: ignore[arg-type]
    assert [type(r).__name__ for r in results] == ["tuple", "tuple", "InferenceFailed", "tuple"]


def test_closed_batcher_refuses_new_work(tiny_model: Path) -> None:
    backend = OnnxRuntimeBackend(tiny_model, intra_op_threads=1)
    batcher = Batcher(backend, BatcherConfig())

    async def scenario() -> None:
        await batcher.start()
        await batcher.close()
        with pytest.raises(BackendUnavailable):
            await batcher.submit(inputs(backend, 1)[0])

    asyncio.run(scenario())
