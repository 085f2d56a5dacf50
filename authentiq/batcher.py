"""Dynamic batcher: concurrent requests share one backend call.

A request waits at most ``max_queue_delay`` (measured from the oldest queued request) for others
to join; a full batch runs at once. The backend runs in a worker thread, never on the event loop.
One bad row fails only its own request: if a batch raises, each request is retried alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from authentiq.backends.base import Backend, Outputs
from authentiq.errors import AuthentiqError, BackendUnavailable, InferenceFailed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatcherConfig:
    max_batch_size: int = 8
    max_queue_delay_s: float = 0.002


@dataclass
class _Job:
    views: np.ndarray
    future: asyncio.Future[tuple[Outputs, float, float]]
    queued_at: float = field(default_factory=time.perf_counter)


class Batcher:
    def __init__(self, backend: Backend, config: BatcherConfig) -> None:
        self.backend = backend
        self.config = config
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.batches_run = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="authentiq-batcher")

    async def submit(self, views: np.ndarray) -> tuple[Outputs, float, float]:
        """One mosaic [3, H, W] → (its outputs, seconds queued, seconds of the batch's inference)."""
        if self._closing or self._task is None:
            raise BackendUnavailable("the service is shutting down")
        job = _Job(views, asyncio.get_running_loop().create_future())
        await self._queue.put(job)
        return await job.future

    async def close(self) -> None:
        """Stop accepting, finish every accepted request, then stop the loop."""
        self._closing = True
        if self._task is not None:
            await self._queue.join()
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            deadline = first.queued_at + self.config.max_queue_delay_s
            while len(batch) < self.config.max_batch_size:
                try:
                    batch.append(self._queue.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            try:
                await self._run(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _run(self, batch: list[_Job]) -> None:
        live = [j for j in batch if not j.future.done()]  # cancelled clients are skipped
        if not live:
            return
        started = time.perf_counter()
        try:
            outputs = await asyncio.to_thread(self.backend.run, np.stack([j.views for j in live]))
        except AuthentiqError as exc:
            if len(live) == 1:
                _settle(live[0], exc)
                return
            log.warning("batch of %d failed (%s); retrying one by one", len(live), exc.detail)
            for job in live:
                await self._run([job])
            return
        elapsed = time.perf_counter() - started
        self.batches_run += 1
        if len(outputs) != len(live):
            for job in live:
                _settle(job, InferenceFailed(f"backend returned {len(outputs)} rows for {len(live)}"))
            return
        for i, job in enumerate(live):
            if not job.future.done():
                job.future.set_result((outputs.row(i), started - job.queued_at, elapsed))


def _settle(job: _Job, exc: Exception) -> None:
    if not job.future.done():
        job.future.set_exception(exc)
