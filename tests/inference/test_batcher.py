"""The batcher's semantics, knob by knob, with the real ONNX Runtime backend (tiny contract model).

``Recorder`` is a test double *around* the real backend: it records every batch it is given and,
when asked, holds batches at a gate so that a test can decide when the backend is busy.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from pydantic import ValidationError

from authentiq.contract.deadline import Deadline
from authentiq.errors import DeadlineExceeded, InferenceFailed, QueueFull, ShuttingDown
from authentiq.inference.backends.base import Outputs
from authentiq.inference.backends.onnxruntime import OnnxRuntimeBackend
from authentiq.inference.batcher import Batcher, Priority, Result
from authentiq.settings import BatcherSettings

pytestmark = pytest.mark.db_independent  # the PostgreSQL pass leaves it out

T = TypeVar("T")
LONG = 30.0  # a delay no test waits for: reaching it would mean the knob under test failed


def config(max_batch_size: int = 8, *, delay_s: float = 0.002, **more: Any) -> BatcherSettings:
    """The batcher's section of the settings. LONG is past what AUTHENTIQ_MAX_QUEUE_DELAY_MS
    accepts (1 s), so that one is built without validation: a test's own knob, not a setting."""
    values = {"max_batch_size": max_batch_size, "max_queue_delay_ms": delay_s * 1000, **more}
    if delay_s == LONG:
        return BatcherSettings.model_construct(**values)
    return BatcherSettings(**values)


class Recorder:
    def __init__(self, backend: OnnxRuntimeBackend, *, gated: bool = False) -> None:
        self.backend, self.spec, self.info = backend, backend.spec, backend.info
        self.batches: list[list[int]] = []  # tags (views[0, 0, 0]) of each batch, in order
        self.deadlines: list[float | None] = []  # the deadline each batch was given
        self.gate = threading.Event()
        if not gated:
            self.gate.set()
        self.running = 0
        self.most_running = 0
        self._lock = threading.Lock()

    def run(self, views: np.ndarray, *, deadline: float | None = None) -> Outputs:
        with self._lock:
            self.batches.append([int(v) for v in views[:, 0, 0, 0]])
            self.deadlines.append(deadline)
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            self.gate.wait(LONG)
            if np.isnan(views).any():
                raise InferenceFailed("marked row")
            return self.backend.run(views)
        finally:
            with self._lock:
                self.running -= 1

    def close(self) -> None:
        self.backend.close()


class Counts:
    """A BatchObserver that remembers what it was told."""

    def __init__(self) -> None:
        self.rejected_by: dict[str, int] = {}
        self.sizes: list[int] = []
        self.depths: dict[Priority, int] = {}

    def queue_depth(self, priority: Priority, depth: int) -> None:
        self.depths[priority] = depth

    def batch_done(self, size: int, seconds: float, waits: list[tuple[Priority, float]]) -> None:
        self.sizes.append(size)

    def rejected(self, reason: str) -> None:
        self.rejected_by[reason] = self.rejected_by.get(reason, 0) + 1


@pytest.fixture
def backend(tiny_model: Path) -> OnnxRuntimeBackend:
    return OnnxRuntimeBackend(tiny_model, intra_op_threads=1, max_batch_size=32)


def tagged(backend: OnnxRuntimeBackend, tag: int) -> np.ndarray:
    """A mosaic whose first value is its tag, so a test can see which batch it ran in."""
    h, w = backend.spec.input_hw
    x = np.random.default_rng(tag).normal(0, 1, (3, h, w)).astype(np.float32)
    x[0, 0, 0] = tag
    return x


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(scenario())


async def settle() -> None:
    """Let the scheduler and worker threads pick up what was just queued."""
    await asyncio.sleep(0.05)


async def started(batcher: Batcher) -> Batcher:
    await batcher.start()
    return batcher


# --- results reach their request ------------------------------------------------------------


@pytest.mark.parametrize("n, max_batch", [(1, 8), (5, 8), (8, 8), (13, 4), (32, 32), (7, 1)])
def test_results_reach_their_request(backend: OnnxRuntimeBackend, n: int, max_batch: int) -> None:
    recorder = Recorder(backend)
    batcher = Batcher(recorder, config(max_batch, delay_s=0.05, adaptive_batching=False))  # type: ignore[arg-type]
    xs = [tagged(backend, i) for i in range(n)]

    async def scenario() -> list[Result]:
        await batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit(x) for x in xs))
        finally:
            await batcher.close()

    results = run(scenario)
    for x, result in zip(xs, results, strict=True):
        alone = backend.run(x[None])
        np.testing.assert_allclose(result.outputs.logits, alone.logits, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(result.outputs.cam, alone.cam, rtol=1e-4, atol=1e-5)
    assert batcher.batches_run == -(-n // max_batch)  # concurrent requests shared batches
    assert sorted(t for b in recorder.batches for t in b) == list(range(n))
    assert all(len(b) <= max_batch for b in recorder.batches)


@pytest.mark.parametrize("bad", [[2], [0, 3], [0, 1, 2, 3]])
def test_one_bad_item_fails_only_its_own_request(backend: OnnxRuntimeBackend, bad: list[int]) -> None:
    xs = [tagged(backend, i) for i in range(4)]
    for i in bad:
        xs[i][1, 0, 0] = np.nan
    batcher = Batcher(Recorder(backend), config(8, delay_s=0.05, adaptive_batching=False))  # type: ignore[arg-type]

    async def scenario() -> list[Result | BaseException]:
        await batcher.start()
        try:
            return await asyncio.gather(*(batcher.submit(x) for x in xs), return_exceptions=True)
        finally:
            await batcher.close()

    results = run(scenario)
    assert [isinstance(r, InferenceFailed) for r in results] == [i in bad for i in range(4)]
    assert all(isinstance(r, Result) for i, r in enumerate(results) if i not in bad)


# --- when a batch starts --------------------------------------------------------------------


def test_full_batch_runs_at_once(backend: OnnxRuntimeBackend) -> None:
    recorder = Recorder(backend)
    batcher = Batcher(recorder, config(4, delay_s=LONG, adaptive_batching=False))  # type: ignore[arg-type]

    async def scenario() -> None:
        await batcher.start()
        results = await asyncio.wait_for(
            asyncio.gather(*(batcher.submit(tagged(backend, i)) for i in range(4))), 5)
        assert [r.batch_size for r in results] == [4] * 4
        await batcher.close()

    run(scenario)


def test_preferred_size_runs_at_once_and_the_rest_waits(backend: OnnxRuntimeBackend) -> None:
    recorder = Recorder(backend)
    batcher = Batcher(recorder, config(8, preferred_batch_sizes=(2, 4), delay_s=LONG,  # type: ignore[arg-type]
                                       adaptive_batching=False))

    async def scenario() -> None:
        await batcher.start()
        tasks = [asyncio.create_task(batcher.submit(tagged(backend, i))) for i in range(5)]
        done, pending = await asyncio.wait(tasks, timeout=2)
        assert len(done) == 4 and len(pending) == 1  # 4 is the largest preferred size that fits
        assert recorder.batches == [[0, 1, 2, 3]]
        await batcher.close()  # closing drains the last one without waiting for the delay
        assert recorder.batches == [[0, 1, 2, 3], [4]]
        assert tasks[4].result().batch_size == 1

    run(scenario)


def test_delay_is_measured_from_the_oldest_request(backend: OnnxRuntimeBackend) -> None:
    recorder = Recorder(backend)
    batcher = Batcher(recorder, config(8, delay_s=0.3, adaptive_batching=False))  # type: ignore[arg-type]

    async def scenario() -> None:
        await batcher.start()
        first = asyncio.create_task(batcher.submit(tagged(backend, 0)))
        await asyncio.sleep(0.15)
        second = asyncio.create_task(batcher.submit(tagged(backend, 1)))
        a, b = await asyncio.gather(first, second)
        assert recorder.batches == [[0, 1]]
        assert a.queued_s >= 0.3  # the oldest waited the whole delay, not more than needed
        assert b.queued_s < a.queued_s - 0.1  # the newer one rode along
        await batcher.close()

    run(scenario)


def test_lone_request_at_idle_does_not_wait_the_delay(backend: OnnxRuntimeBackend) -> None:
    async def queued(adaptive: bool, delay: float) -> float:
        batcher = Batcher(backend, config(8, delay_s=delay, adaptive_batching=adaptive))
        await batcher.start()
        result = await asyncio.wait_for(batcher.submit(tagged(backend, 0)), 5)
        await batcher.close()
        return result.queued_s

    assert run(lambda: queued(adaptive=True, delay=LONG)) < 1.0
    assert run(lambda: queued(adaptive=False, delay=0.2)) >= 0.2


def test_requests_arriving_while_busy_share_the_next_batch(backend: OnnxRuntimeBackend) -> None:
    recorder = Recorder(backend, gated=True)
    batcher = Batcher(recorder, config(8, delay_s=LONG))  # type: ignore[arg-type]

    async def scenario() -> None:
        await batcher.start()
        tasks = [asyncio.create_task(batcher.submit(tagged(backend, 0)))]
        await settle()
        tasks += [asyncio.create_task(batcher.submit(tagged(backend, i))) for i in (1, 2, 3)]
        await settle()
        assert recorder.batches == [[0]] and batcher.depth == 3
        recorder.gate.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        assert recorder.batches == [[0], [1, 2, 3]]  # adaptive: at idle again, no delay paid
        await batcher.close()

    run(scenario)


# --- queue bound, deadlines, priority, cancellation -------------------------------------------


def test_full_queue_refuses_at_once_with_retry_after(backend: OnnxRuntimeBackend) -> None:
    recorder, counts = Recorder(backend, gated=True), Counts()
    batcher = Batcher(recorder, config(1, max_queue_size=2), counts)  # type: ignore[arg-type]

    async def scenario() -> None:
        await batcher.start()
        tasks = [asyncio.create_task(batcher.submit(tagged(backend, 0)))]
        await settle()  # 0 runs (held at the gate); 1 and 2 fill the queue
        tasks += [asyncio.create_task(batcher.submit(tagged(backend, i))) for i in (1, 2)]
        await settle()
        with pytest.raises(QueueFull) as refused:
            await batcher.submit(tagged(backend, 3))
        assert refused.value.headers["Retry-After"].isdigit()
        assert int(refused.value.headers["Retry-After"]) >= 1
        recorder.gate.set()
        await asyncio.gather(*tasks)
        await batcher.close()

    run(scenario)
    assert counts.rejected_by == {"queue_full": 1}
    assert sorted(t for b in recorder.batches for t in b) == [0, 1, 2]


def test_deadline_answers_while_queued_and_never_runs(backend: OnnxRuntimeBackend) -> None:
    recorder, counts = Recorder(backend, gated=True), Counts()
    batcher = Batcher(recorder, config(8), counts)  # type: ignore[arg-type]

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        await batcher.start()
        busy = asyncio.create_task(batcher.submit(tagged(backend, 0)))
        await settle()
        t0 = loop.time()
        with pytest.raises(DeadlineExceeded):
            await batcher.submit(tagged(backend, 1), deadline=Deadline.from_timeout(0.2))
        # answered at its deadline, while the backend was still busy (no slot had freed up)
        assert loop.time() - t0 < 2 and not recorder.gate.is_set()
        assert batcher.depth == 0
        with pytest.raises(DeadlineExceeded):  # a deadline already past is refused at once
            await batcher.submit(tagged(backend, 2), deadline=Deadline.from_timeout(0))
        recorder.gate.set()
        await busy
        await batcher.close()

    run(scenario)
    assert recorder.batches == [[0]]  # neither late request ran
    assert counts.rejected_by == {"deadline": 2}


def test_a_batch_runs_until_its_last_caller_gives_up(backend: OnnxRuntimeBackend) -> None:
    """The backend is told the batch's deadline (a remote one sends the time left): the latest
    of its requests', or none while one request has none."""
    recorder = Recorder(backend)
    batcher = Batcher(recorder, config(4, delay_s=LONG, adaptive=False))  # type: ignore[arg-type]

    def within(seconds: float | None) -> Deadline | None:
        return None if seconds is None else Deadline.from_timeout(seconds)

    async def scenario() -> None:
        await batcher.start()
        await asyncio.gather(*(batcher.submit(tagged(backend, i), deadline=within(t))
                               for i, t in enumerate([5.0, 20.0, 10.0, 1.0])))
        await asyncio.gather(*(batcher.submit(tagged(backend, i), deadline=within(t))
                               for i, t in enumerate([5.0, None, 10.0, 1.0])))
        await batcher.close()

    before = time.monotonic()
    run(scenario)
    first, second = recorder.deadlines
    assert first is not None and before + 19 < first < time.monotonic() + 20
    assert second is None


def test_interactive_requests_are_batched_ahead_of_bulk(backend: OnnxRuntimeBackend) -> None:
    recorder = Recorder(backend, gated=True)
    batcher = Batcher(recorder, config(2, delay_s=LONG))  # type: ignore[arg-type]

    async def scenario() -> None:
        await batcher.start()
        tasks = [asyncio.create_task(batcher.submit(tagged(backend, 0), priority=Priority.BULK))]
        await settle()
        for tag in (1, 2, 3):
            tasks.append(asyncio.create_task(batcher.submit(tagged(backend, tag),
                                                            priority=Priority.BULK)))
        for tag in (10, 11, 12):
            tasks.append(asyncio.create_task(batcher.submit(tagged(backend, tag))))
        await settle()
        recorder.gate.set()
        await asyncio.gather(*tasks)
        await batcher.close()

    run(scenario)
    # first batch was already running; then interactive (10, 11), then the 12 beside the oldest bulk
    assert recorder.batches == [[0], [10, 11], [12, 1], [2, 3]]


def test_cancelled_caller_is_removed_from_the_queue(backend: OnnxRuntimeBackend) -> None:
    recorder, counts = Recorder(backend, gated=True), Counts()
    batcher = Batcher(recorder, config(8), counts)  # type: ignore[arg-type]

    async def scenario() -> None:
        await batcher.start()
        busy = asyncio.create_task(batcher.submit(tagged(backend, 0)))
        await settle()
        gone = asyncio.create_task(batcher.submit(tagged(backend, 1)))
        stays = asyncio.create_task(batcher.submit(tagged(backend, 2)))
        await settle()
        assert batcher.depth == 2
        gone.cancel()
        await asyncio.gather(gone, return_exceptions=True)
        assert batcher.depth == 1
        recorder.gate.set()
        await asyncio.gather(busy, stays)
        await batcher.close()

    run(scenario)
    assert recorder.batches == [[0], [2]]
    assert counts.rejected_by == {"cancelled": 1}
    assert counts.depths[Priority.INTERACTIVE] == 0


# --- instances and shutdown -----------------------------------------------------------------


@pytest.mark.parametrize("instances", [1, 2, 3])
def test_instances_bound_batches_in_flight(backend: OnnxRuntimeBackend, instances: int) -> None:
    recorder = Recorder(backend, gated=True)
    batcher = Batcher(recorder, config(1, batcher_instances=instances))  # type: ignore[arg-type]

    async def scenario() -> None:
        await batcher.start()
        tasks = [asyncio.create_task(batcher.submit(tagged(backend, i))) for i in range(6)]
        await asyncio.sleep(0.2)
        assert batcher.busy == instances and batcher.depth == 6 - instances
        recorder.gate.set()
        await asyncio.gather(*tasks)
        await batcher.close()

    run(scenario)
    assert recorder.most_running == instances


def test_close_finishes_everything_accepted_then_refuses(backend: OnnxRuntimeBackend) -> None:
    recorder = Recorder(backend, gated=True)
    batcher = Batcher(recorder, config(2, delay_s=LONG, adaptive_batching=False))  # type: ignore[arg-type]

    async def scenario() -> None:
        await batcher.start()
        tasks = [asyncio.create_task(batcher.submit(tagged(backend, i))) for i in range(5)]
        await settle()
        closing = asyncio.create_task(batcher.close())
        await settle()
        assert not closing.done()  # waits for the batch at the gate and the queued rest
        with pytest.raises(ShuttingDown):
            await batcher.submit(tagged(backend, 9))
        recorder.gate.set()
        await asyncio.wait_for(closing, 5)
        assert all(t.done() and isinstance(t.result(), Result) for t in tasks)

    run(scenario)
    assert sorted(t for b in recorder.batches for t in b) == [0, 1, 2, 3, 4]


# --- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    {"max_batch_size": 0}, {"max_batch_size": 4, "preferred_batch_sizes": (8,)},
    {"preferred_batch_sizes": (0,)}, {"max_queue_delay_ms": -1}, {"max_queue_size": 0},
    {"batcher_instances": 0}, {"max_queue_delay_ms": 5000},
])
def test_config_refuses_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match=next(iter(kwargs))):
        BatcherSettings(**kwargs)  # type: ignore[arg-type]


def test_batch_larger_than_the_backend_accepts_is_refused(backend: OnnxRuntimeBackend) -> None:
    with pytest.raises(ValueError, match="exceeds"):
        Batcher(backend, BatcherSettings(max_batch_size=64))
