"""Async inspections: accepted now (202), run by whichever worker claims them, never lost.

``POST /v1/inspections?mode=async`` stores the photos and a ``queued`` job row *before* it
answers 202. A :class:`JobRunner` in every worker process claims queued jobs with a conditional
update (safe with several workers on one database) and runs them through the same
:class:`~authentiq.inspection.Inspector` as synchronous calls, at bulk priority.

Crash safety: a claim holds a lease (``job_lease_s``). If the worker dies, the lease runs out
and another (or the restarted) worker claims the job again. The report's id is the job's id,
so a job that died after its report was stored is only marked done, never inspected twice. A
job that keeps killing its worker fails after ``job_max_attempts`` runs. The end of a job and
its webhook delivery are one transaction (see :mod:`authentiq.webhooks`).

Deadline (``?timeout_ms`` with ``mode=async``): the job row keeps it as a UTC time
(``deadline_at``). A job still waiting at its deadline is failed with ``deadline-exceeded``
without running — by the first worker to look (each looks every ``poll_s``, busy or not) — and a
running one carries it through decoding and the batcher's queue like a synchronous request.

Graceful shutdown stops claiming and lets running jobs finish; queued ones wait in the database.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Column, ColumnElement, Index, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from authentiq import webhooks
from authentiq.batcher import Priority
from authentiq.blobs import Blobs
from authentiq.deadline import Deadline
from authentiq.doorbell import Doorbell
from authentiq.errors import AuthentiqError, DeadlineExceeded, QueueFull, ReportNotFound, ShuttingDown
from authentiq.inspection import Inspector, Upload
from authentiq.reports import ReportStore
from authentiq.settings import JobSettings
from authentiq.tenants import Visible
from authentiq.webhooks import iso_utc

log = logging.getLogger(__name__)
RETRY_LATER = (QueueFull, ShuttingDown)  # not the job's fault: run it again shortly
MAX_TIMEOUT_S = 24 * 3600  # a job's deadline is at most this far from its request's arrival


class JobNotFound(AuthentiqError):
    slug, status, title = "job-not-found", 404, "No such job"


class JobCrashed(AuthentiqError):
    slug, status, title = "job-crashed", 500, "Job crashed repeatedly"


class JobRow(SQLModel, table=True):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_created_at", "status", "created_at"),)  # the claim query
    id: str = Field(primary_key=True, max_length=32)  # also the id of the report it makes
    key_id: str | None = Field(default=None, index=True, max_length=24)
    tenant_id: str = Field(index=True, max_length=64)
    status: str = Field(default="queued", index=True, max_length=16)  # queued|running|succeeded|failed
    brand: str = Field(max_length=128)
    model: str = Field(max_length=128)
    client_ref: str | None = Field(default=None, max_length=128)
    priority: str = Field(default=Priority.BULK.value, max_length=16)
    files: dict[str, str] = Field(sa_column=Column(JSON, nullable=False))  # view → stored name
    attempts: int = 0
    lease_until: datetime | None = None
    created_at: datetime = Field(index=True)
    updated_at: datetime
    finished_at: datetime | None = None
    deadline_at: datetime | None = None  # ?timeout_ms: failed with deadline-exceeded past it
    verdict: str | None = Field(default=None, max_length=16)
    error: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


def job_view(row: JobRow) -> dict[str, Any]:
    done = row.status == "succeeded"
    return {
        "id": row.id, "status": row.status, "brand": row.brand, "model": row.model,
        "client_ref": row.client_ref, "priority": row.priority, "attempts": row.attempts,
        "created_at": iso_utc(row.created_at), "updated_at": iso_utc(row.updated_at),
        "finished_at": iso_utc(row.finished_at), "deadline_at": iso_utc(row.deadline_at),
        "report_id": row.id if done else None,
        "verdict": row.verdict, "error": row.error,
        "links": {"self": f"/v1/jobs/{row.id}", "report": f"/v1/reports/{row.id}" if done else None},
    }


class JobStore:
    def __init__(self, engine: Engine, blobs: Blobs) -> None:
        self.engine, self.blobs = engine, blobs

    def submit(self, uploads: list[Upload], *, brand: str, model: str, client_ref: str | None,
               priority: Priority, key_id: str | None, tenant_id: str,
               job_id: str | None = None, deadline: Deadline | None = None) -> JobRow:
        """Photos first, then the row (committed): once this returns, the job survives a crash.
        A failure leaves neither behind. ``deadline``: the request's (kept as a UTC time)."""
        job_id, now = job_id or uuid.uuid4().hex, datetime.now(UTC)
        files = {u.view: f"{i}.bin" for i, u in enumerate(uploads)}
        self.blobs.put_many(job_id, {files[u.view]: u.data for u in uploads})
        row = JobRow(id=job_id, key_id=key_id, tenant_id=tenant_id, brand=brand, model=model,
                     client_ref=client_ref, priority=priority.value, files=files, created_at=now,
                     updated_at=now, deadline_at=None if deadline is None else deadline.wall_clock())
        try:
            with Session(self.engine) as session:
                session.add(row)
                session.commit()
                session.refresh(row)
        except BaseException:
            self.blobs.delete(job_id)
            raise
        return row

    def get(self, job_id: str, *, tenant: Visible) -> JobRow:
        """The job if ``tenant`` may see it (None: every tenant); else 404, as for an unknown id."""
        query = select(JobRow).where(col(JobRow.id) == job_id)
        if tenant is not None:
            query = query.where(col(JobRow.tenant_id) == tenant)
        with Session(self.engine) as session:
            row = session.exec(query).first()
        if row is None:
            raise JobNotFound(f"no job with id {job_id!r}")
        return row

    def uploads(self, row: JobRow) -> list[Upload]:
        return [Upload(view, self.blobs.get(row.id, name)) for view, name in row.files.items()]

    def claim(self, limit: int, lease_s: float, max_attempts: int) -> list[JobRow]:
        """Up to ``limit`` runnable jobs, oldest first: queued ones and those whose worker's lease
        ran out. One whose lease ran out ``max_attempts`` times is failed instead."""
        now = datetime.now(UTC)
        runnable = _runnable(now) & _not_overdue(now)  # overdue ones are expire()'s
        claimed: list[JobRow] = []
        given_up: list[str] = []
        with Session(self.engine) as session:
            candidates = session.exec(select(JobRow).where(runnable)
                                      .order_by(col(JobRow.created_at)).limit(limit)).all()
            for job in candidates:
                if job.attempts >= max_attempts:
                    if self._end(session, job.id, error=JobCrashed(
                            f"the job stopped its worker {job.attempts} times (a crash or a kill "
                            "mid-run) and was given up; submit it again").to_problem()):
                        given_up.append(job.id)
                    continue
                taken = session.execute(update(JobRow).where(col(JobRow.id) == job.id, runnable)
                                        .values(status="running", attempts=JobRow.attempts + 1,
                                                lease_until=now + timedelta(seconds=lease_s),
                                                updated_at=now))
                if taken.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(job)
            session.commit()
            for job in claimed:
                session.refresh(job)
        for job_id in given_up:
            self.blobs.delete(job_id)
        return claimed

    def expire(self, limit: int = 100) -> list[JobRow]:
        """Fail the jobs still waiting (queued, or their worker's lease ran out) whose deadline
        has passed, without running them: ``deadline-exceeded``, webhook queued, photos dropped."""
        now = datetime.now(UTC)
        waiting = _runnable(now) & _overdue(now)
        with Session(self.engine) as session:
            overdue = session.exec(select(JobRow.id).where(waiting)
                                   .order_by(col(JobRow.deadline_at)).limit(limit)).all()
            ended = [job_id for job_id in overdue if self._end(
                session, job_id, only_if=waiting, error=DeadlineExceeded(
                    "the job's deadline (timeout_ms from its request's arrival) passed while it "
                    "waited to run; it was not run").to_problem(instance=f"/v1/jobs/{job_id}"))]
            session.commit()
            rows = session.exec(select(JobRow).where(col(JobRow.id).in_(ended))).all() if ended else []
        for job_id in ended:
            self.blobs.delete(job_id)
        return list(rows)

    def extend(self, job_id: str, lease_s: float) -> None:
        with Session(self.engine) as session:
            session.execute(update(JobRow).where(col(JobRow.id) == job_id).values(
                lease_until=datetime.now(UTC) + timedelta(seconds=lease_s)))
            session.commit()

    def requeue(self, job_id: str) -> None:
        """Back to the queue without counting the attempt (shutdown, a database outage). Only
        while the caller's lease holds: past it, another worker may have claimed the job."""
        now = datetime.now(UTC)
        with Session(self.engine) as session:
            session.execute(update(JobRow).where(
                col(JobRow.id) == job_id, col(JobRow.status) == "running",
                col(JobRow.lease_until) > now,
            ).values(status="queued", lease_until=None, attempts=JobRow.attempts - 1, updated_at=now))
            session.commit()

    def finish(self, job_id: str, report: dict[str, Any] | None = None,
               error: dict[str, Any] | None = None) -> JobRow:
        """Mark the job done and queue its webhook, in one transaction; drop its photos.
        Only the first to end a job does so (one webhook even if two workers raced)."""
        with Session(self.engine) as session:
            ended = self._end(session, job_id, report, error)
            session.commit()
            job = session.get(JobRow, job_id, populate_existing=True)
        if job is None:
            raise JobNotFound(f"no job with id {job_id!r}")
        if ended:
            self.blobs.delete(job_id)
        return job

    def _end(self, session: Session, job_id: str, report: dict[str, Any] | None = None,
             error: dict[str, Any] | None = None,
             only_if: ColumnElement[bool] | None = None) -> bool:
        now = datetime.now(UTC)
        ending = update(JobRow).where(col(JobRow.id) == job_id,
                                      col(JobRow.status).in_(("queued", "running")))
        if only_if is not None:  # still true at the update: nobody claimed the job meanwhile
            ending = ending.where(only_if)
        taken = session.execute(ending.values(
            status="succeeded" if error is None else "failed", updated_at=now, finished_at=now,
            lease_until=None, verdict=report["verdict"] if report else None, error=error))
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            return False
        job = session.get(JobRow, job_id, populate_existing=True)
        assert job is not None
        event: webhooks.Event = "inspection.completed" if error is None else "inspection.failed"
        data: dict[str, Any] = {"job": job_view(job)}
        if report is not None:
            data["report"] = report
        webhooks.enqueue(session, job.key_id, job.tenant_id, job.id, event, data)
        return True


def _runnable(now: datetime) -> ColumnElement[bool]:
    """Jobs a worker may take: queued, or running with their worker's lease run out."""
    return or_(col(JobRow.status) == "queued",
               (col(JobRow.status) == "running") & (col(JobRow.lease_until) < now))


def _overdue(now: datetime) -> ColumnElement[bool]:
    return col(JobRow.deadline_at) < now


def _not_overdue(now: datetime) -> ColumnElement[bool]:
    return or_(col(JobRow.deadline_at).is_(None), col(JobRow.deadline_at) >= now)


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
            await self._give_back(job.id)
            return
        log.info("job %s %s (%s)", job.id, done.status, done.verdict or (error or {}).get("type"))
        self.on_finish(done)

    async def _give_back(self, job_id: str) -> None:
        end = asyncio.get_running_loop().time() + self.lease_s
        while asyncio.get_running_loop().time() < end and not self._stopping:
            await asyncio.sleep(min(1.0, self.poll_s * 4))
            try:
                await asyncio.to_thread(self.jobs.requeue, job_id)
                return
            except Exception:  # still away
                continue

    async def _inspect(self, job: JobRow) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """(report, None), (None, problem), or (None, None): give it back to the queue."""
        try:
            row = await asyncio.to_thread(self.reports.row, job.id, tenant=job.tenant_id)
            return dict(row.body), None
        except ReportNotFound:
            pass
        deadline = None if job.deadline_at is None else Deadline.until(job.deadline_at)
        uploads = await asyncio.to_thread(self.jobs.uploads, job)
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
