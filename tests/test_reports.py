"""The report store on SQLite and PostgreSQL (real servers, no mocks)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from authentiq.blobs import BlobStore
from authentiq.errors import ReportNotFound
from authentiq.reports import ReportRow, ReportStore


def row(i: int, client_ref: str | None = "ref", verdict: str = "authentic") -> ReportRow:
    rid = f"{i:032x}"
    return ReportRow(id=rid, created_at=datetime(2026, 11, 22, tzinfo=UTC) + timedelta(minutes=i),
                     client_ref=client_ref, brand="Castellan", model="Riva", verdict=verdict,
                     p_counterfeit=0.1, classifier="m@1",
                     body={"id": rid, "verdict": verdict, "client_ref": client_ref, "nested": {"x": [1, 2]}})


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> ReportStore:
    s = ReportStore(database_url, BlobStore(tmp_path / "blobs"))
    yield s  # type: ignore[misc]
    s.close()


def test_save_get_find(store: ReportStore) -> None:
    store.save(row(1), {"logo.jpg": b"a"})
    store.save(row(2, verdict="counterfeit"), {"logo.jpg": b"b"})
    store.save(row(3, client_ref="other"), {})
    assert store.get(f"{1:032x}")["nested"] == {"x": [1, 2]}
    assert [r["id"] for r in store.find(client_ref="ref")] == [f"{2:032x}", f"{1:032x}"]  # newest first
    assert [r["id"] for r in store.find(verdict="counterfeit")] == [f"{2:032x}"]
    assert len(store.find(limit=2)) == 2
    assert store.count() == 3
    assert store.blobs.get(f"{2:032x}", "logo.jpg") == b"b"
    assert store.ping()


def test_missing_report(store: ReportStore) -> None:
    with pytest.raises(ReportNotFound):
        store.get("nope")


def test_failed_insert_removes_its_blobs(store: ReportStore, tmp_path: Path) -> None:
    store.save(row(7), {"logo.jpg": b"first"})
    store.blobs.delete(f"{7:032x}")  # keep the row, free the blob folder name
    with pytest.raises(IntegrityError):
        store.save(row(7), {"logo.jpg": b"second"})  # same primary key
    assert not (tmp_path / "blobs" / f"{7:032x}").exists()
    assert store.count() == 1
