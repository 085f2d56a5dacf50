"""Runs async jobs (:mod:`authentiq.storage.jobs` stores them): claims queued ones, inspects them at
bulk priority through the same :class:`~authentiq.pipeline.inspection.Inspector` as synchronous calls,
fails those past their deadline, and ends each with its webhook. See :mod:`authentiq.storage.jobs` for
crash safety and leases.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from authentiq.contract.deadline import Deadline
from authentiq.contract.report import Report
from authentiq.errors import AuthentiqError, DeadlineExceeded, QueueFull, ReportNotFound, ShuttingDown
from authentiq.inference.batcher import Priority
from authentiq.pipeline.inspection import Inspector, Upload
from authentiq.services.doorbell import Doorbell
from authentiq.settings import JobSettings
from authentiq.storage.jobs import JobRow, JobStore
from authentiq.storage.reports import ReportStore

log = logging.getLogger(__name__)
RETRY_LATER = (QueueFull, ShuttingDown)  # not the job's fault: run it again shortly


class JobRunner:
    """Claims and runs jobs, ``job_workers`` at a time (0: this process only accepts them)."""

    def __init__(self, jobs: JobStore, inspector: Inspector, reports: ReportStore,
                 config: JobSettings, *, on_finish: Callable[[JobRow], None] | None = None) -> None:
        self.jobs, self.inspector, self.reports = jobs, inspector, reports
        self.workers, self.lease_s, self.poll_s = config.job_workers, config.job_lease_s, config.poll_s
        self.max_attempts = config.job_max_attempts
        self.on_finish = on_finish or (lambda job: None)
        self._running: set[asyncio.Task[None]] = set()
        self._bell = Doorbell()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._expired_at = float("-inf")  # when this worker last failed overdue jobs

    async def start(self) -> None:
        if self.workers > 0:
            self._task = asyncio.create_task(self._loop(), name="authentiq-jobs")

    def wake(self) -> None:
        self._bell.ring()

    async def close(self) -> None:
        """Stop claiming; jobs already running finish (the batcher is still open)."""
        self._stopping = True
        self._bell.ring()
        if self._task is not None:
            await self._task
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def _loop(self) -> None:
        while not self._stopping:
            free = self.workers - len(self._running)
            claimed: list[JobRow] = []
            try:
                await self._expire()
                if free > 0:
                    claimed = await asyncio.to_thread(self.jobs.claim, free, self.lease_s,
                                                      self.max_attempts)
            except Exception:  # the database is away: keep the loop, try again shortly
                log.exception("job runner: could not claim jobs; retrying")
            for job in claimed:
                task = asyncio.create_task(self._run(job), name=f"job-{job.id}")
                self._running.add(task)
                task.add_done_callback(self._done)
            if claimed and len(claimed) == free:
                continue  # there may be more waiting
            await self._bell.wait(self.poll_s)

    async def _expire(self) -> None:
        """Fail overdue waiting jobs, at most every ``poll_s``: also while every slot is busy, so
        a job's deadline is kept even when it waits behind others."""
        now = asyncio.get_running_loop().time()
        if now - self._expired_at < self.poll_s:
            return
        self._expired_at = now
        for job in await asyncio.to_thread(self.jobs.expire):
            log.info("job %s failed (deadline-exceeded): its deadline passed before it ran", job.id)
            self.on_finish(job)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._bell.ring()  # a slot is free

    async def _run(self, job: JobRow) -> None:
        heartbeat = asyncio.create_task(self._keep_lease(job.id))
        try:
            report, error = await self._inspect(job)
            if report is None and error is None:
                await asyncio.to_thread(self.jobs.requeue, job.id)
                return
            done = await asyncio.to_thread(self.jobs.finish, job.id, report, error)
        except Exception:
            # The database went away mid-way. Not the job's fault: give it back to the queue
            # (its attempt not counted) once the database answers; if it does not within the
            # lease, the lease runs out and the job runs again anyway. Its report, if stored,
            # is then found by id and not made twice.
            log.exception("job %s: interrupted by a database error; it will run again", job.id)
            heartbeat.cancel()
            await self._give_back(job.id)
            return
        finally:
            heartbeat.cancel()
        log.info("job %s %s (%s)", job.id, done.status, done.verdict or (error or {}).get("type"))
        self.on_finish(done)

    async def _keep_lease(self, job_id: str) -> None:
        """Extend the job's lease every third of it while it runs: a job slower than its lease
        (a long queue, a slow machine) is not claimed and run a second time by another worker."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                await asyncio.to_thread(self.jobs.extend, job_id, self.lease_s)
            except Exception:  # the database is away: the lease may run out, the job then reruns
                log.warning("job %s: could not extend its lease", job_id, exc_info=True)

    async def _give_back(self, job_id: str) -> None:
        end = asyncio.get_running_loop().time() + self.lease_s
        while asyncio.get_running_loop().time() < end and not self._stopping:
            await asyncio.sleep(min(1.0, self.poll_s * 4))
            try:
                await asyncio.to_thread(self.jobs.requeue, job_id)
                return
            except Exception:  # still away
                continue

    async def _inspect(self, job: JobRow) -> tuple[Report | None, dict[str, Any] | None]:
        """(report, None), (None, problem), or (None, None): give it back to the queue."""
        try:
            return await asyncio.to_thread(self.reports.get, job.id, tenant=job.tenant_id), None
        except ReportNotFound:
            pass
        deadline = None if job.deadline_at is None else Deadline.until(job.deadline_at)
        uploads = [Upload(*p) for p in await asyncio.to_thread(self.jobs.uploads, job)]
        while True:
            try:
                if deadline is not None and deadline.expired():
                    raise DeadlineExceeded("the job's deadline (timeout_ms from its request's "
                                           "arrival) passed before it could run; it was not run")
                return await self.inspector.inspect(
                    uploads, brand=job.brand, model=job.model, client_ref=job.client_ref,
                    priority=Priority(job.priority), deadline=deadline, key_id=job.key_id,
                    tenant_id=job.tenant_id, report_id=job.id), None
            except RETRY_LATER as exc:
                if self._stopping or isinstance(exc, ShuttingDown):
                    return None, None
                wait = float(exc.extra.get("retry_after", 1))
                await asyncio.sleep(wait if deadline is None else min(wait, deadline.remaining()))
                await asyncio.to_thread(self.jobs.extend, job.id, self.lease_s)
            except AuthentiqError as exc:  # the photos' or the claim's fault: final
                return None, exc.to_problem(instance=f"/v1/jobs/{job.id}")
