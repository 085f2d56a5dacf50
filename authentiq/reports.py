"""Stored reports: one row per inspection (SQLModel on SQLite or PostgreSQL) + its photos as blobs.

A report is written atomically: blobs first, then the row in one transaction; if the row cannot be
written the blobs are removed, so a failure leaves neither a half report nor an orphan file.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Column, text
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, create_engine, select

from authentiq.blobs import BlobStore
from authentiq.errors import ReportNotFound

log = logging.getLogger(__name__)


class ReportRow(SQLModel, table=True):
    __tablename__ = "reports"

    id: str = Field(primary_key=True, max_length=32)
    created_at: datetime = Field(index=True)
    client_ref: str | None = Field(default=None, index=True, max_length=128)
    brand: str = Field(max_length=128)
    model: str = Field(max_length=128)
    verdict: str = Field(index=True, max_length=16)
    p_counterfeit: float
    classifier: str = Field(max_length=200)  # name@version (precision)
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


def make_engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return create_engine(url, connect_args={"check_same_thread": False})
    return create_engine(url, pool_pre_ping=True)


class ReportStore:
    def __init__(self, url: str, blobs: BlobStore) -> None:
        self.engine = make_engine(url)
        self.blobs = blobs
        SQLModel.metadata.create_all(self.engine)

    def save(self, row: ReportRow, photos: dict[str, bytes]) -> None:
        self.blobs.put_many(row.id, photos)
        try:
            with Session(self.engine) as session:
                session.add(row)
                session.commit()
        except BaseException:
            self.blobs.delete(row.id)
            raise

    def get(self, report_id: str) -> dict[str, Any]:
        with Session(self.engine) as session:
            row = session.get(ReportRow, report_id)
        if row is None:
            raise ReportNotFound(f"no report with id {report_id!r}")
        return dict(row.body)

    def find(self, *, client_ref: str | None = None, verdict: str | None = None,
             limit: int = 50) -> list[dict[str, Any]]:
        query = select(ReportRow)
        if client_ref is not None:
            query = query.where(ReportRow.client_ref == client_ref)
        if verdict is not None:
            query = query.where(ReportRow.verdict == verdict)
        query = query.order_by(col(ReportRow.created_at).desc(), col(ReportRow.id)).limit(limit)
        with Session(self.engine) as session:
            return [dict(r.body) for r in session.exec(query)]

    def count(self) -> int:
        with Session(self.engine) as session:
            return int(session.exec(text("SELECT COUNT(*) FROM reports")).one()[0])  # type: ignore[call-overload]

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:  # any driver error means "not reachable" for /readyz
            log.exception("database ping failed")
            return False
        return True

    def close(self) -> None:
        self.engine.dispose()
