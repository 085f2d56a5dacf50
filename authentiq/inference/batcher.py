"""Dynamic batcher: concurrent inspections share backend calls, with Triton's semantics and without
its known pains.

When an instance is free, the scheduler starts a batch as soon as one of these holds:

- the queue holds ``max_batch_size`` requests, or at least one of ``preferred_batch_sizes``
  (the largest preferred size that fits is taken);
- the oldest queued request has waited ``max_queue_delay`` (measured from that request);
- *adaptive wait*: no batch is running at all (the backend is idle). A lone request at idle then
  runs at once instead of paying the delay; while the backend is busy, requests accumulate and the
  next batch takes them together — the batch size follows the load by itself;
- the batcher is closing (drain without waiting).

Requests carry a priority (interactive before bulk; a batch is filled from the interactive queue
first), an optional deadline (a timer answers 504 the moment it passes and removes the request, so
it never runs) and are removed from the queue when their caller is cancelled (client disconnect).
``max_queue_size`` bounds the queue: a full queue refuses at once (503 with ``Retry-After``).
``batcher_instances`` batches may run at once, each in its own worker thread, so batch N+1 is
collated and copied while batch N computes. Collate/split live in :mod:`authentiq.inference.collate`. The
configuration is the settings' batcher section (:class:`~authentiq.settings.BatcherSettings`),
which validates the batch sizes.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import math
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from authentiq.contract.deadline import Deadline
from authentiq.errors import DeadlineExceeded, InferenceFailed, QueueFull, ShuttingDown
from authentiq.inference.backends.base import Backend, Outputs
from authentiq.inference.collate import RowResult, run_batch
from authentiq.settings import BatcherSettings

log = logging.getLogger(__name__)


class Priority(enum.StrEnum):
    INTERACTIVE = "interactive"  # a person is waiting (kiosk, auditor)
    BULK = "bulk"  # machine-to-machine backlog (marketplace jobs)


@dataclass(frozen=True)
class Result:
    outputs: Outputs  # this request's row
    queued_s: float  # from submit to the start of its batch
    inference_s: float  # the batch's execution time (collate + backend + split)
    batch_size: int


class BatchObserver(Protocol):
    """What the batcher reports (Prometheus in the service; nothing by default)."""

    def queue_depth(self, priority: Priority, depth: int) -> None: ...
    def batch_done(self, size: int, seconds: float, waits: list[tuple[Priority, float]]) -> None: ...
    def rejected(self, reason: str) -> None: ...


class _Silent:
    def queue_depth(self, priority: Priority, depth: int) -> None:
        pass

    def batch_done(self, size: int, seconds: float, waits: list[tuple[Priority, float]]) -> None:
        pass

    def rejected(self, reason: str) -> None:
        pass


@dataclass(eq=False)
class _Job:
    views: np.ndarray
    priority: Priority
    future: asyncio.Future[Result]
    queued_at: float
    client: str = "-"
    deadline: float | None = None  # time.monotonic() when its caller gives up
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)


class Batcher:
    def __init__(self, backend: Backend, config: BatcherSettings,
                 observer: BatchObserver | None = None, *,
                 thread_initializer: Callable[[], None] | None = None) -> None:
        """``thread_initializer``: run first in each instance thread (a shadow's candidate
        lowers their CPU priority)."""
        if config.max_batch_size > backend.info.max_batch_size:
            raise ValueError(f"max_batch_size {config.max_batch_size} exceeds what the backend "
                             f"accepts ({backend.info.max_batch_size})")
        self.backend, self.config = backend, config
        self.observer: BatchObserver = observer or _Silent()
        self._queues: dict[Priority, deque[_Job]] = {p: deque() for p in Priority}
        self._executor = ThreadPoolExecutor(config.batcher_instances,
                                            thread_name_prefix="authentiq-infer",
                                            initializer=thread_initializer)
        self._local = threading.local()  # each instance thread's staging buffer
        self._running: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._batch_s = 0.05  # running mean of batch time, for Retry-After
        self.batches_run = 0

    # --- public ---------------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        return sum(len(q) for q in self._queues.values())

    @property
    def busy(self) -> int:
        return len(self._running)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._schedule(), name="authentiq-batcher")

    def check_capacity(self) -> None:
        """Refuse early (before any decoding) when the queue is already full or closing."""
        if self._closing or self._task is None:
            self.observer.rejected("shutting_down")
            raise ShuttingDown("the service is shutting down; retry on another instance",
                               retry_after=1)
        if self.depth >= self.config.max_queue_size:
            self.observer.rejected("queue_full")
            raise QueueFull(f"the inference queue is full ({self.config.max_queue_size} waiting)",
                            retry_after=self.retry_after())

    def retry_after(self) -> int:
        """Whole seconds until the present queue has likely drained (at least 1)."""
        per_slot = self.config.max_batch_size * self.config.batcher_instances
        return max(1, math.ceil((self.depth / per_slot + 1) * self._batch_s))

    async def submit(self, views: np.ndarray, *, priority: Priority = Priority.INTERACTIVE,
                     deadline: Deadline | None = None, client: str = "-") -> Result:
        """Queue one mosaic ``[3, H, W]``; its result once its batch ran.

        Raises QueueFull or ShuttingDown at once, DeadlineExceeded when ``deadline`` passes while
        queued (the request is then never executed); cancelling the caller removes it from the queue.
        """
        self.check_capacity()
        if deadline is not None and deadline.expired():
            self.observer.rejected("deadline")
            raise DeadlineExceeded("the request's deadline passed before inference")
        loop = asyncio.get_running_loop()
        job = _Job(views, priority, loop.create_future(), loop.time(), client,
                   None if deadline is None else deadline.at)
        if deadline is not None:
            left = deadline.remaining()
            job.timer = loop.call_later(left, self._expire, job, left)
        self._queues[priority].append(job)
        self.observer.queue_depth(priority, len(self._queues[priority]))
        self._wake.set()
        try:
            return await job.future
        except asyncio.CancelledError:
            if self._remove(job):
                self.observer.rejected("cancelled")
            raise

    async def close(self) -> None:
        """Stop accepting, run everything accepted (without waiting for batches to fill), then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        self._executor.shutdown(wait=True)

    # --- scheduling -----------------------------------------------------------------------------

    async def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            jobs, wake_at = self._next_batch(loop.time())
            if jobs:
                task = asyncio.create_task(self._execute(jobs))
                self._running.add(task)
                task.add_done_callback(self._finished)
                continue
            if self._closing and not self.depth and not self._running:
                return
            timeout = None if wake_at is None else max(0.0, wake_at - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _next_batch(self, now: float) -> tuple[list[_Job], float | None]:
        """The jobs to run now, or none and when to look again (None: when woken)."""
        n = self.depth
        if n == 0 or len(self._running) >= self.config.batcher_instances:
            return [], None
        cfg = self.config
        oldest = min(q[0].queued_at for q in self._queues.values() if q)
        due = oldest + cfg.max_queue_delay_s
        if n >= cfg.max_batch_size or now >= due or self._closing or \
                (cfg.adaptive_batching and not self._running):
            return self._take(min(n, cfg.max_batch_size)), None
        fitting = [p for p in cfg.preferred_batch_sizes if p <= n]
        if fitting:
            return self._take(max(fitting)), None
        return [], due

    def _take(self, k: int) -> list[_Job]:
        jobs: list[_Job] = []
        for priority in Priority:  # declaration order: interactive first
            queue = self._queues[priority]
            if queue and len(jobs) < k:
                taken = fair_share(queue, k - len(jobs))
                for job in taken:
                    queue.remove(job)
                    if job.timer is not None:
                        job.timer.cancel()
                jobs.extend(taken)
            self.observer.queue_depth(priority, len(queue))
        return jobs

    def _expire(self, job: _Job, timeout_s: float) -> None:
        if self._remove(job):
            self.observer.rejected("deadline")
            job.future.set_exception(DeadlineExceeded(
                f"the request waited its whole deadline ({timeout_s * 1000:.0f} ms) in the "
                f"inference queue and was not run"))
            self._wake.set()

    def _remove(self, job: _Job) -> bool:
        queue = self._queues[job.priority]
        try:
            queue.remove(job)
        except ValueError:
            return False  # already taken into a batch
        if job.timer is not None:
            job.timer.cancel()
        self.observer.queue_depth(job.priority, len(queue))
        return True

    # --- execution ------------------------------------------------------------------------------

    async def _execute(self, jobs: list[_Job]) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        rows = [j.views for j in jobs]
        # The batch is worth running until its last caller gives up (None: one never does).
        deadline = None if any(j.deadline is None for j in jobs) else max(
            j.deadline for j in jobs if j.deadline is not None)
        try:
            results: list[RowResult] = await loop.run_in_executor(self._executor, self._run, rows,
                                                                  deadline)
        except Exception as exc:  # the executor itself failed; answer everyone
            log.exception("batch of %d could not run", len(jobs))
            results = [InferenceFailed(f"batch could not run: {exc}")] * len(jobs)
        elapsed = loop.time() - started
        self.batches_run += 1
        self._batch_s = 0.8 * self._batch_s + 0.2 * elapsed
        self.observer.batch_done(len(jobs), elapsed, [(j.priority, started - j.queued_at)
                                                      for j in jobs])
        for job, result in zip(jobs, results, strict=True):
            if job.future.done():  # its caller went away while it ran
                continue
            if isinstance(result, Outputs):
                job.future.set_result(Result(result, started - job.queued_at, elapsed, len(jobs)))
            else:
                job.future.set_exception(result)

    def _run(self, rows: list[np.ndarray], deadline: float | None) -> list[RowResult]:
        """In an instance thread: collate into this thread's reused staging buffer, run, split."""
        shape = (self.config.max_batch_size, *rows[0].shape)
        staging = getattr(self._local, "staging", None)
        if staging is None or staging.shape != shape:
            staging = self._local.staging = np.empty(shape, np.float32)
        return run_batch(functools.partial(self.backend.run, deadline=deadline), rows, staging)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("batch task failed", exc_info=task.exception())


def fair_share(queue: deque[_Job], k: int) -> list[_Job]:
    """Up to ``k`` jobs taken round-robin between clients, each client's oldest first, clients
    in the order of their oldest job: a client with many queued jobs gets one slot of the batch
    per turn, not the whole batch."""
    by_client: dict[str, deque[_Job]] = {}
    for job in queue:
        by_client.setdefault(job.client, deque()).append(job)
    taken: list[_Job] = []
    while len(taken) < k and by_client:
        for client in list(by_client):
            taken.append(by_client[client].popleft())
            if not by_client[client]:
                del by_client[client]
            if len(taken) == k:
                break
    return taken


__all__ = ["BatchObserver", "Batcher", "Priority", "Result"]
