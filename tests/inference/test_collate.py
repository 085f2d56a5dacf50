"""Collate/split apart from any model call, with parametrised request lists."""

from __future__ import annotations

import numpy as np
import pytest

from authentiq.errors import (
    AuthentiqError,
    BackendFailed,
    BackendUnavailable,
    DeadlineExceeded,
    InferenceFailed,
)
from authentiq.inference.backends.base import Outputs
from authentiq.inference.collate import collate, run_batch, split

pytestmark = pytest.mark.db_independent  # the PostgreSQL pass leaves it out


def rows(n: int, shape: tuple[int, int, int] = (3, 4, 6)) -> list[np.ndarray]:
    return [np.full(shape, i, np.float32) for i in range(n)]


def echo(batch: np.ndarray) -> Outputs:
    """A pure function standing in for a model: each output row is computed from its input row."""
    b = len(batch)
    first = batch[:, 0, 0, 0]
    return Outputs(np.stack([first, -first], 1), np.tile(first[:, None], (1, 3)),
                   np.tile(first[:, None, None, None], (1, 2, 2, 2)).reshape(b, 2, 2, 2))


@pytest.mark.parametrize("n", [1, 2, 7, 32])
def test_collate_then_split_keeps_order(n: int) -> None:
    batch = collate(rows(n))
    assert batch.shape == (n, 3, 4, 6) and batch.dtype == np.float32 and batch.flags.c_contiguous
    parts = split(echo(batch), n)
    assert [float(p.logits[0, 0]) for p in parts] == list(range(n))
    assert all(len(p) == 1 and p.cam.shape == (1, 2, 2, 2) for p in parts)


def test_collate_refuses_mixed_shapes_and_empty_batches() -> None:
    with pytest.raises(InferenceFailed, match="different shapes"):
        collate([*rows(2), np.zeros((3, 4, 5), np.float32)])
    with pytest.raises(ValueError):
        collate([])


@pytest.mark.parametrize("returned", [2, 4])
def test_split_refuses_a_wrong_row_count(returned: int) -> None:
    with pytest.raises(InferenceFailed, match="for a batch of 3"):
        split(echo(collate(rows(returned))), 3)


@pytest.mark.parametrize("n, bad", [(1, {0}), (4, {1}), (5, {0, 4}), (3, {0, 1, 2})])
def test_run_batch_fails_only_the_bad_rows(n: int, bad: set[int]) -> None:
    calls: list[int] = []

    def model(batch: np.ndarray) -> Outputs:
        calls.append(len(batch))
        if any(int(v) in bad for v in batch[:, 0, 0, 0]):
            raise InferenceFailed("bad row")
        return echo(batch)

    results = run_batch(model, rows(n))
    assert [isinstance(r, InferenceFailed) for r in results] == [i in bad for i in range(n)]
    assert [float(r.logits[0, 0]) for r in results if isinstance(r, Outputs)] == \
        [i for i in range(n) if i not in bad]
    assert calls == ([n] + [1] * n if n > 1 else [1])


def test_run_batch_turns_unexpected_errors_into_domain_errors() -> None:
    def broken(batch: np.ndarray) -> Outputs:
        raise RuntimeError("driver fell over")

    (result,) = run_batch(broken, rows(1))
    assert isinstance(result, InferenceFailed) and "RuntimeError: driver fell over" in result.detail


@pytest.mark.parametrize("error", [BackendUnavailable("Triton is away", retry_after=2),
                                   BackendFailed("sticky CUDA error", retry_after=1),
                                   DeadlineExceeded("the batch's deadline passed")])
def test_run_batch_does_not_retry_what_no_row_caused(error: AuthentiqError) -> None:
    """A backend that is away or failed, or a passed deadline, fails every row alike: the batch
    fails at once instead of running again row by row."""
    calls: list[int] = []

    def model(batch: np.ndarray) -> Outputs:
        calls.append(len(batch))
        raise error

    assert run_batch(model, rows(5)) == [error] * 5
    assert calls == [5]


def test_collate_into_a_staging_buffer_reuses_it() -> None:
    staging = np.full((8, 3, 4, 6), -1, np.float32)
    batch = collate(rows(3), staging)
    assert np.shares_memory(batch, staging) and batch.shape == (3, 3, 4, 6)
    assert [float(b[0, 0, 0]) for b in batch] == [0, 1, 2]
    assert collate(rows(9), staging).shape == (9, 3, 4, 6)  # too many rows: a fresh array instead


def test_the_optional_outputs_travel_with_their_rows() -> None:
    """The view gate's scores and features are split per request (and checked) like the rest."""
    batch = collate(rows(3))
    out = echo(batch)
    first = batch[:, 0, 0, 0]
    full = Outputs(out.logits, out.embedding, out.cam,
                   np.tile(first[:, None, None], (1, 2, 4)), np.tile(first[:, None, None], (1, 2, 5)))
    parts = split(full, 3)
    assert [float(p.view_features[0, 0, 0]) for p in parts] == [0.0, 1.0, 2.0]  # type: ignore[index]
    assert all(p.view_scores is not None and p.view_scores.shape == (1, 2, 4) for p in parts)
    joined = Outputs.concat(parts)
    assert joined.view_features is not None and np.array_equal(joined.view_features, full.view_features)
    assert Outputs.concat([parts[0], split(out, 3)[1]]).view_features is None  # not every part has it
    short = Outputs(out.logits, out.embedding, out.cam, None, full.view_features[:2])  # type: ignore[index]
    with pytest.raises(InferenceFailed, match="for a batch of 3"):
        split(short, 3)
