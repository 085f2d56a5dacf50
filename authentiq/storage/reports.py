"""Stored reports: one row per inspection (SQLModel on SQLite or PostgreSQL) + its files as blobs.

A report is written atomically: blobs (photos, the attention map) first, then the row in one transaction;
if the row cannot be written the blobs are removed, so a failure leaves neither a half report nor
an orphan file. The body — what the service decided and why — is immutable once written. Human
reviews live in their own append-only, hash-chained table (:mod:`authentiq.storage.reviews`); the row
keeps the current ``final_verdict`` / ``review_status`` and a ``version`` for optimistic
concurrency, and readers get the body with the review state merged in.

Every report belongs to the tenant of the key that submitted it (``tenant_id``, a column, never
in the body clients get). Every read takes ``tenant``: the caller's tenant, or None for every
tenant (an auditor); a report of another tenant is not found, exactly like a missing one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import JSON, Column, func, text
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from authentiq.contract.report import Heatmaps, Report, ReviewRecord, ReviewState
from authentiq.contract.times import iso_utc
from authentiq.errors import ReportNotFound
from authentiq.storage.blobs import Blobs
from authentiq.storage.pagination import keyset_page
from authentiq.storage.tenants import Visible

log = logging.getLogger(__name__)


class ReportRow(SQLModel, table=True):
    __tablename__ = "reports"

    id: str = Field(primary_key=True, max_length=32)
    created_at: datetime = Field(index=True)
    client_ref: str | None = Field(default=None, index=True, max_length=128)
    brand: str = Field(max_length=128, index=True)
    model: str = Field(max_length=128, index=True)
    verdict: str = Field(index=True, max_length=16)  # the automated (initial) verdict
    final_verdict: str = Field(index=True, max_length=16)
    # the latest review's finding (not_a_product, with final_verdict inconclusive), else NULL
    final_finding: str | None = Field(default=None, max_length=32)
    review_status: str = Field(default="unreviewed", index=True, max_length=16)
    flagged: bool = Field(default=False, index=True)  # verdict.review is not empty: a person should look
    key_id: str | None = Field(default=None, index=True, max_length=64)
    tenant_id: str = Field(index=True, max_length=64)
    version: int = 0  # bumped by every review: optimistic concurrency
    p_counterfeit: float
    classifier: str = Field(max_length=200)  # name@version
    # the model's id (classifier.model_id); NULL for reports stored before schema 7
    model_id: str | None = Field(default=None, index=True, max_length=64)
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class ReviewRow(SQLModel, table=True):
    __tablename__ = "report_reviews"
    seq: int = Field(primary_key=True)  # position in the chain, from 1
    report_id: str = Field(foreign_key="reports.id", index=True, max_length=32)
    created_at: datetime
    reviewer: str = Field(max_length=128)  # the authenticated identity, in words
    key_id: str | None = Field(default=None, max_length=24)
    key_name: str | None = Field(default=None, max_length=128)
    note: str | None = Field(default=None, max_length=200)  # free text: never the identity
    decision: str = Field(max_length=16)
    previous_verdict: str = Field(max_length=16)
    verdict: str = Field(max_length=16)  # the final verdict after this review
    finding: str | None = Field(default=None, max_length=32)  # "not_a_product", with inconclusive
    reason: str = Field(max_length=4000)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


@dataclass(frozen=True)
class ReportFilter:
    verdict: str | None = None  # final verdict
    initial_verdict: str | None = None
    review_status: str | None = None
    brand: str | None = None
    model: str | None = None
    client_ref: str | None = None
    key_id: str | None = None
    flagged: bool | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    needs_review: bool | None = None  # unreviewed and (inconclusive or flagged): the queue
    model_id: str | None = None  # the model that decided (classifier.model_id)

    def apply(self, query: Any) -> Any:
        exact = {"final_verdict": self.verdict, "verdict": self.initial_verdict,
                 "review_status": self.review_status, "client_ref": self.client_ref,
                 "key_id": self.key_id, "flagged": self.flagged, "model_id": self.model_id}
        for column, value in exact.items():
            if value is not None:
                query = query.where(getattr(ReportRow, column) == value)
        if self.brand is not None:
            query = query.where(func.lower(ReportRow.brand) == self.brand.casefold())
        if self.model is not None:
            query = query.where(func.lower(ReportRow.model) == self.model.casefold())
        if self.created_from is not None:
            query = query.where(col(ReportRow.created_at) >= _aware(self.created_from))
        if self.created_to is not None:
            query = query.where(col(ReportRow.created_at) < _aware(self.created_to))
        if self.needs_review is not None:
            waiting = (col(ReportRow.review_status) == "unreviewed") & (
                (col(ReportRow.final_verdict) == "inconclusive") | col(ReportRow.flagged))
            query = query.where(waiting if self.needs_review else ~waiting)
        return query


class ReportFiles(NamedTuple):
    """What a report's image routes need: its id, stored file names and heatmaps."""

    report_id: str
    stored: list[str]
    heatmaps: Heatmaps


class ReportStore:
    def __init__(self, engine: Engine, blobs: Blobs) -> None:
        self.engine, self.blobs = engine, blobs

    def save(self, report: Report, files: dict[str, bytes], *, tenant_id: str) -> None:
        """Store ``report`` (its files first) as ``tenant_id``'s."""
        row = ReportRow(id=report.id, created_at=datetime.fromisoformat(report.created_at),
                        client_ref=report.client_ref, brand=report.brand, model=report.model,
                        verdict=report.verdict, final_verdict=report.verdict,
                        flagged=report.flagged, key_id=report.submitted_by.key_id,
                        tenant_id=tenant_id, p_counterfeit=report.probabilities.counterfeit,
                        classifier=f"{report.classifier.name}@{report.classifier.version}",
                        model_id=report.classifier.model_id, body=report.stored())
        try:
            self.blobs.put_many(row.id, files)
        except FileExistsError:
            # Files without a row: an earlier attempt of this same report (an async job's retry)
            # died between writing its files and committing its row. Replace them; a report that
            # does have its row is never overwritten.
            with Session(self.engine) as session:
                if session.get(ReportRow, row.id) is not None:
                    raise
            log.warning("report %s: replacing the files of an interrupted earlier attempt", row.id)
            self.blobs.delete(row.id)
            self.blobs.put_many(row.id, files)
        try:
            with Session(self.engine) as session:
                session.add(row)
                session.commit()
        except BaseException:
            self.blobs.delete(row.id)
            raise

    def row(self, report_id: str, *, tenant: Visible) -> ReportRow:
        """The report's row if ``tenant`` may see it; else 404, as for an unknown id."""
        with Session(self.engine) as session:
            row: ReportRow | None = session.exec(visible_to(select(ReportRow), tenant)
                                                 .where(col(ReportRow.id) == report_id)).first()
        if row is None:
            raise ReportNotFound(f"no report with id {report_id!r}")
        return row

    def get(self, report_id: str, *, tenant: Visible) -> Report:
        """The immutable report with its current review state (``review``)."""
        row = self.row(report_id, tenant=tenant)
        report = Report.model_validate(row.body)
        report.review = ReviewState(status=row.review_status,  # type: ignore[arg-type]
                                    final_verdict=row.final_verdict,  # type: ignore[arg-type]
                                    version=row.version, reviews=self.reviews(report_id))
        return report

    def files(self, report_id: str, *, tenant: Visible) -> ReportFiles:
        """The report's stored files and heatmaps, if ``tenant`` may see it: one row read, for
        the image routes (a page asks for a dozen), not the whole report with its reviews."""
        body = self.row(report_id, tenant=tenant).body
        return ReportFiles(report_id, list(body.get("stored_files", [])),
                           Heatmaps.model_validate(body["heatmaps"]))

    def reviews(self, report_id: str) -> list[ReviewRecord]:
        """The report's reviews, oldest first."""
        with Session(self.engine) as session:
            rows = session.exec(select(ReviewRow).where(ReviewRow.report_id == report_id)
                                .order_by(col(ReviewRow.seq)))
            return [review_record(r) for r in rows]

    def find(self, where: ReportFilter, *, tenant: Visible, limit: int = 50,
             cursor: str | None = None) -> tuple[list[ReportRow], str | None]:
        """Newest first; the page and the cursor of the next one (None at the end)."""
        query = visible_to(where.apply(select(ReportRow)), tenant)
        return keyset_page(self.engine, query, ReportRow, limit=limit, cursor=cursor)

    def count(self, where: ReportFilter | None = None, *, tenant: Visible) -> int:
        query = visible_to((where or ReportFilter()).apply(
            select(func.count()).select_from(ReportRow)), tenant)
        with Session(self.engine) as session:
            return int(session.exec(query).one())

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:  # any driver error means "not reachable" for /readyz
            log.exception("database ping failed")
            return False
        return True


def review_record(row: ReviewRow) -> ReviewRecord:
    return ReviewRecord(seq=row.seq, created_at=iso_utc(row.created_at) or "",
                        reviewer=row.reviewer, key_id=row.key_id, key_name=row.key_name,
                        note=row.note, finding=row.finding,  # type: ignore[arg-type]
                        decision=row.decision,  # type: ignore[arg-type]
                        previous_verdict=row.previous_verdict,
                        verdict=row.verdict,  # type: ignore[arg-type]
                        reason=row.reason, hash=row.hash)


def visible_to(query: Any, tenant: Visible) -> Any:
    """``query`` limited to ``tenant``'s reports (None: every tenant's)."""
    return query if tenant is None else query.where(col(ReportRow.tenant_id) == tenant)


def _aware(when: datetime) -> datetime:
    """Times are stored with their zone; a filter given without one means UTC."""
    return when if when.tzinfo else when.replace(tzinfo=UTC)

