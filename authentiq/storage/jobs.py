"""Async inspections: accepted now (202), run by whichever worker claims them, never lost.

``POST /v1/inspections?mode=async`` stores the photos and a ``queued`` job row *before* it
answers 202. A :class:`~authentiq.services.job_runner.JobRunner` in every worker process claims
queued jobs with a conditional update (safe with several workers on one database) and runs them
through the same :class:`~authentiq.pipeline.inspection.Inspector` as synchronous calls, at bulk
priority. This module is the store: the rows, claims, leases and the job's end with its webhook.

Crash safety: a claim holds a lease (``job_lease_s``). If the worker dies, the lease runs out
and another (or the restarted) worker claims the job again. The report's id is the job's id,
so a job that died after its report was stored is only marked done, never inspected twice. A
job that keeps killing its worker fails after ``job_max_attempts`` runs. The end of a job and
its webhook delivery are one transaction (see :mod:`authentiq.storage.webhooks`).

Deadline (``?timeout_ms`` with ``mode=async``): the job row keeps it as a UTC time
(``deadline_at``). A job still waiting at its deadline is failed with ``deadline-exceeded``
without running — by the first worker to look (each looks every ``poll_s``, busy or not) — and a
running one carries it through decoding and the batcher's queue like a synchronous request.

Graceful shutdown stops claiming and lets running jobs finish; queued ones wait in the database.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Column, ColumnElement, Index, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from authentiq.contract.deadline import Deadline
from authentiq.contract.report import Report
from authentiq.errors import DeadlineExceeded, JobCrashed, JobNotFound
from authentiq.storage import webhooks
from authentiq.storage.blobs import Blobs
from authentiq.storage.tenants import Visible

log = logging.getLogger(__name__)
Photo = tuple[str, bytes]  # (view, the photo as uploaded)
MAX_TIMEOUT_S = 24 * 3600  # a job's deadline is at most this far from its request's arrival


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
    priority: str = Field(default="bulk", max_length=16)
    files: dict[str, str] = Field(sa_column=Column(JSON, nullable=False))  # view → stored name
    attempts: int = 0
    lease_until: datetime | None = None
    created_at: datetime = Field(index=True)
    updated_at: datetime
    finished_at: datetime | None = None
    deadline_at: datetime | None = None  # ?timeout_ms: failed with deadline-exceeded past it
    verdict: str | None = Field(default=None, max_length=16)
    error: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


EventBody = Callable[[JobRow, Report | None], dict[str, Any]]


class JobStore:
    """``event_body``: a finished job's webhook ``data`` (the API layer makes it: it holds the
    links clients follow)."""

    def __init__(self, engine: Engine, blobs: Blobs, event_body: EventBody) -> None:
        self.engine, self.blobs, self.event_body = engine, blobs, event_body

    def submit(self, uploads: Sequence[Photo], *, brand: str, model: str, client_ref: str | None,
               priority: str, key_id: str | None, tenant_id: str,
               job_id: str | None = None, deadline: Deadline | None = None) -> JobRow:
        """Photos first, then the row (committed): once this returns, the job survives a crash.
        A failure leaves neither behind. ``deadline``: the request's (kept as a UTC time)."""
        job_id, now = job_id or uuid.uuid4().hex, datetime.now(UTC)
        files = {view: f"{i}.bin" for i, (view, _) in enumerate(uploads)}
        self.blobs.put_many(job_id, {files[view]: data for view, data in uploads})
        row = JobRow(id=job_id, key_id=key_id, tenant_id=tenant_id, brand=brand, model=model,
                     client_ref=client_ref, priority=priority, files=files, created_at=now,
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

    def uploads(self, row: JobRow) -> list[Photo]:
        return [(view, self.blobs.get(row.id, name)) for view, name in row.files.items()]

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
            session.execute(update(JobRow).where(col(JobRow.id) == job_id,
                                                 col(JobRow.status) == "running").values(
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

    def finish(self, job_id: str, report: Report | None = None,
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

    def _end(self, session: Session, job_id: str, report: Report | None = None,
             error: dict[str, Any] | None = None,
             only_if: ColumnElement[bool] | None = None) -> bool:
        now = datetime.now(UTC)
        ending = update(JobRow).where(col(JobRow.id) == job_id,
                                      col(JobRow.status).in_(("queued", "running")))
        if only_if is not None:  # still true at the update: nobody claimed the job meanwhile
            ending = ending.where(only_if)
        taken = session.execute(ending.values(
            status="succeeded" if error is None else "failed", updated_at=now, finished_at=now,
            lease_until=None, verdict=report.verdict if report else None, error=error))
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            return False
        job = session.get(JobRow, job_id, populate_existing=True)
        assert job is not None
        event: webhooks.Event = "inspection.completed" if error is None else "inspection.failed"
        webhooks.enqueue(session, job.key_id, job.tenant_id, job.id, event,
                         lambda: self.event_body(job, report))
        return True


def _runnable(now: datetime) -> ColumnElement[bool]:
    """Jobs a worker may take: queued, or running with their worker's lease run out."""
    return or_(col(JobRow.status) == "queued",
               (col(JobRow.status) == "running") & (col(JobRow.lease_until) < now))


def _overdue(now: datetime) -> ColumnElement[bool]:
    return col(JobRow.deadline_at) < now


def _not_overdue(now: datetime) -> ColumnElement[bool]:
    return or_(col(JobRow.deadline_at).is_(None), col(JobRow.deadline_at) >= now)
