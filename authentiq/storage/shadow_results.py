"""The live shadow's results: a candidate model's verdict on each inspection, beside its report.

One row per report and candidate (``model_id``, a hash of the candidate's weights): the verdict,
counterfeit probability, confidence and reason codes the candidate would have given. Rows belong
to the report's tenant (``tenant_id``), every read is scoped to a tenant in its query, and none
of it is ever part of a report clients get: only ``authentiq models shadow --live`` and
``/metrics`` (counts) read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from authentiq.storage.reports import ReportRow
from authentiq.storage.tenants import Visible


class ShadowResultRow(SQLModel, table=True):
    __tablename__ = "shadow_results"

    report_id: str = Field(primary_key=True, foreign_key="reports.id", max_length=32)
    model_id: str = Field(primary_key=True, max_length=64)  # the candidate's model_id
    model: str = Field(max_length=200)  # name@version, for people
    tenant_id: str = Field(index=True, max_length=64)  # the report's
    created_at: datetime = Field(index=True)
    verdict: str = Field(max_length=16)
    p_counterfeit: float
    confidence: float | None = None
    reasons: list[str] = Field(sa_column=Column(JSON, nullable=False))  # reason codes


@dataclass(frozen=True)
class ShadowResult:
    """What a candidate decided about one inspection."""

    report_id: str
    model_id: str
    model: str
    verdict: str
    p_counterfeit: float
    confidence: float | None
    reasons: list[str]


class ShadowResults:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(self, result: ShadowResult, *, tenant_id: str) -> None:
        """Store ``result`` as ``tenant_id``'s (its report's tenant); a repeat is replaced."""
        row = ShadowResultRow(**result.__dict__, tenant_id=tenant_id, created_at=datetime.now(UTC))
        with Session(self.engine) as session:
            session.merge(row)
            session.commit()

    def find(self, *, since: datetime, tenant: Visible, model_id: str | None = None,
             limit: int | None = None) -> list[tuple[ShadowResultRow, ReportRow]]:
        """Results of reports made since ``since`` that ``tenant`` may see (None: every tenant),
        with their reports' rows (served verdict, review state); newest first."""
        query: Any = (select(ShadowResultRow, ReportRow)
                      .join(ReportRow, col(ReportRow.id) == col(ShadowResultRow.report_id))
                      .where(col(ReportRow.created_at) >= _aware(since)))
        if tenant is not None:
            query = query.where(col(ShadowResultRow.tenant_id) == tenant,
                                col(ReportRow.tenant_id) == tenant)
        if model_id is not None:
            query = query.where(col(ShadowResultRow.model_id) == model_id)
        query = query.order_by(col(ReportRow.created_at).desc(), col(ReportRow.id).desc())
        if limit is not None:
            query = query.limit(limit)
        with Session(self.engine) as session:
            return [(s, r) for s, r in session.exec(query)]

    def models(self, *, tenant: Visible) -> list[str]:
        """The candidates with stored results, as ``model_id``s."""
        query: Any = select(ShadowResultRow.model_id).distinct()
        if tenant is not None:
            query = query.where(col(ShadowResultRow.tenant_id) == tenant)
        with Session(self.engine) as session:
            return sorted(session.exec(query))


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)
