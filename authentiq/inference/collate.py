"""Collate requests into one backend batch and split the outputs back — kept apart from the model call.

``run_batch`` is what one batcher instance executes in its worker thread: collate, run, split. If
the batch fails as a whole with an error one row could cause (``InferenceFailed``), each row is run
alone so that one bad item fails only its own request. An unavailable or failed backend, or a passed
deadline, is the same for every row: the batch fails at once, without a retry per row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from authentiq.errors import AuthentiqError, InferenceFailed
from authentiq.inference.backends.base import Outputs

log = logging.getLogger(__name__)

RowResult = Outputs | AuthentiqError


def collate(rows: Sequence[np.ndarray], staging: np.ndarray | None = None) -> np.ndarray:
    """Rows ``[3, H, W]`` of one shape → one contiguous float32 batch ``[B, 3, H, W]``.

    With ``staging`` (``[max_batch, 3, H, W]`` float32, owned by the calling worker thread) the
    batch is written into its first B rows: no allocation, no fresh pages to fault in per batch.
    """
    if not rows:
        raise ValueError("cannot collate an empty batch")
    shapes = {r.shape for r in rows}
    if len(shapes) != 1:
        raise InferenceFailed(f"rows of different shapes cannot share a batch: {sorted(shapes)}")
    if staging is not None and staging.shape[1:] == rows[0].shape and len(rows) <= len(staging):
        return np.stack(rows, out=staging[:len(rows)])
    return np.ascontiguousarray(np.stack(rows), dtype=np.float32)


def split(outputs: Outputs, n: int) -> list[Outputs]:
    """One batch of outputs → one ``Outputs`` per request, in order."""
    optional = [a for a in (outputs.view_scores, outputs.view_features, outputs.view_descriptors)
                if a is not None]
    if len(outputs) != n or len(outputs.embedding) != n or len(outputs.cam) != n or any(
            len(a) != n for a in optional):
        raise InferenceFailed(
            f"backend returned {len(outputs)}/{len(outputs.embedding)}/{len(outputs.cam)} rows "
            f"(logits/embedding/cam) for a batch of {n}")
    return [outputs.row(i) for i in range(n)]


def run_batch(run: Callable[[np.ndarray], Outputs], rows: Sequence[np.ndarray],
              staging: np.ndarray | None = None) -> list[RowResult]:
    """Collate → ``run`` → split; on a row-specific failure retry row by row. Never raises:
    errors are per row."""
    try:
        return list(split(run(collate(rows, staging)), len(rows)))
    except Exception as exc:  # reported per row; retried one by one if a row could be the cause
        error = _as_domain(exc, len(rows))
    if len(rows) == 1 or not isinstance(error, InferenceFailed):
        return [error] * len(rows)
    log.warning("batch of %d failed (%s); retrying one by one", len(rows), error.detail)
    results: list[RowResult] = []
    for row in rows:
        results.extend(run_batch(run, [row], staging))
    return results


def _as_domain(exc: Exception, n: int) -> AuthentiqError:
    if isinstance(exc, AuthentiqError):
        return exc
    log.exception("unexpected error from the backend on a batch of %d", n)
    return InferenceFailed(f"inference failed on a batch of {n}: {type(exc).__name__}: {exc}")
