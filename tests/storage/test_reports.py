"""The report store and the review chain on SQLite and PostgreSQL (real servers, no mocks)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from authentiq.contract.report import Report
from authentiq.errors import InvalidField, ReportNotFound, ReviewConflict
from authentiq.storage.blobs import BlobStore
from authentiq.storage.db import open_database
from authentiq.storage.reports import ReportFilter, ReportRow, ReportStore
from authentiq.storage.reviews import append_review, ensure_chain, verify_chain

T0 = datetime(2026, 11, 22, tzinfo=UTC)


def row(i: int, client_ref: str | None = "ref", verdict: str = "authentic", brand: str = "Castellan",
        flagged: bool = False) -> Report:
    """A small but complete report (the store only takes whole, valid reports)."""
    rid = f"{i:032x}"
    return Report.model_validate({
        "schema_version": "5", "id": rid, "created_at": (T0 + timedelta(minutes=i)).isoformat(),
        "client_ref": client_ref, "brand": brand, "model": "Riva", "verdict": verdict,
        "confidence": None if verdict == "inconclusive" else 0.9,
        "probabilities": {"authentic": 0.9, "counterfeit": 0.1},
        "reasons": [{"code": "classifier", "detail": "p 0.1", "value": 0.1}],
        "review_advised": ["a person should look"] if flagged else [],
        "fusion": {"applied": False, "p_classifier": 0.1, "p_counterfeit": 0.1, "thresholds": {}},
        "references": {"model_version": "m@1", "k": 5, "other_products": [],
                       "claimed": {"brand": brand, "model": "Riva", "count": 0, "best": None,
                                   "mean_top_k": None, "matches": []}},
        "views": [], "missing_views": [],
        "classifier": {"name": "m", "version": "1", "precision": "int8", "backend": "onnxruntime",
                       "device": "cpu", "engine_id": "e", "thresholds": {}},
        "heatmaps": {"classes": [], "colormap": "inferno", "notice": "n", "views": ["overview"]},
        "submitted_by": {"key_id": None},
        "statement_of_reasons": {"automated": True, "text": "t", "how_to_contest": "h"},
        "timings": {}, "stored_files": []})


def save(store: ReportStore, report: Report, files: dict[str, bytes]) -> None:
    store.save(report, files, tenant_id="default")


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[ReportStore]:
    engine = open_database(database_url)
    ensure_chain(engine)
    yield ReportStore(engine, BlobStore(tmp_path / "blobs"))
    engine.dispose()


def ids(rows: list[ReportRow]) -> list[int]:
    return [int(r.id, 16) for r in rows]


def test_save_get_find_and_filters(store: ReportStore) -> None:
    save(store, row(1), {"logo.jpg": b"a"})
    save(store, row(2, verdict="counterfeit"), {"logo.jpg": b"b"})
    save(store, row(3, client_ref="other", brand="Verlaine", verdict="inconclusive"), {})
    save(store, row(4, flagged=True), {})
    report = store.get(f"{1:032x}", tenant=None)
    assert report == row(1).model_copy(update={"review": report.review})  # as saved
    assert report.reasons[0].model_extra == {"value": 0.1}
    assert report.review is not None and report.review.model_dump() == {
        "status": "unreviewed", "final_verdict": "authentic", "version": 0, "reviews": []}
    assert store.row(f"{4:032x}", tenant=None).flagged  # from review_advised
    assert ids(store.find(ReportFilter(client_ref="ref"), tenant=None)[0]) == [4, 2, 1]  # newest first
    assert ids(store.find(ReportFilter(verdict="counterfeit"), tenant=None)[0]) == [2]
    assert ids(store.find(ReportFilter(brand="verlaine"), tenant=None)[0]) == [3]  # case-insensitive
    assert ids(store.find(ReportFilter(created_from=T0 + timedelta(minutes=2),
                                       created_to=T0 + timedelta(minutes=4)), tenant=None)[0]) == [3, 2]
    assert ids(store.find(ReportFilter(needs_review=True), tenant=None)[0]) == [4, 3]  # flagged or inconclusive
    assert store.count(ReportFilter(client_ref="ref"), tenant=None) == 3 and store.count(tenant=None) == 4
    page, cursor = store.find(ReportFilter(), tenant=None, limit=3)
    assert ids(page) == [4, 3, 2] and cursor is not None
    page, cursor = store.find(ReportFilter(), tenant=None, limit=3, cursor=cursor)
    assert ids(page) == [1] and cursor is None
    with pytest.raises(InvalidField):
        store.find(ReportFilter(), tenant=None, cursor="not-a-cursor")
    assert len(store.find(ReportFilter(), tenant=None, limit=10**9)[0]) == 4  # capped, not refused
    assert store.blobs.get(f"{2:032x}", "logo.jpg") == b"b"
    assert store.ping()


def test_missing_report(store: ReportStore) -> None:
    with pytest.raises(ReportNotFound):
        store.get("nope", tenant=None)


def test_failed_insert_removes_its_blobs(store: ReportStore, tmp_path: Path) -> None:
    save(store, row(7), {"logo.jpg": b"first"})
    store.blobs.delete(f"{7:032x}")  # keep the row, free the blob folder name
    with pytest.raises(IntegrityError):
        save(store, row(7), {"logo.jpg": b"second"})  # same primary key
    assert not (tmp_path / "blobs" / f"{7:032x}").exists()
    assert store.count(tenant=None) == 1


def test_files_left_by_an_interrupted_attempt_are_replaced(store: ReportStore) -> None:
    """A job's attempt killed between its files and its row must not block the retry forever."""
    rid = f"{8:032x}"
    store.blobs.put_many(rid, {"logo.jpg": b"from the attempt that died", "stale.jpg": b"x"})
    save(store, row(8), {"logo.jpg": b"retry"})
    assert store.blobs.get(rid, "logo.jpg") == b"retry" and store.count(tenant=None) == 1
    with pytest.raises(ReportNotFound):  # nothing of the dead attempt is left
        store.blobs.get(rid, "stale.jpg")
    with pytest.raises(FileExistsError):  # a stored report's files are never overwritten
        save(store, row(8), {"logo.jpg": b"another"})
    assert store.blobs.get(rid, "logo.jpg") == b"retry"


def test_reviews_chain_concurrency_and_tampering(store: ReportStore) -> None:
    save(store, row(1, verdict="inconclusive"), {})
    save(store, row(2), {})
    r1, r2 = f"{1:032x}", f"{2:032x}"
    first = append_review(store.engine, r1, decision="override", verdict="counterfeit",
                          reason="serial font is wrong under the loupe", tenant=None, reviewer=None,
                          note="ana", expected_version=0)
    assert first.seq == 1 and first.previous_verdict == "inconclusive"
    with pytest.raises(ReviewConflict) as exc:  # somebody reviewed it meanwhile
        append_review(store.engine, r1, decision="confirm", verdict=None, reason="looks right",
                      tenant=None, reviewer=None, note="bo", expected_version=0)
    assert exc.value.extra["current_version"] == 1
    with pytest.raises(InvalidField, match="reason"):
        append_review(store.engine, r2, decision="confirm", verdict=None, reason="  ", tenant=None,
                      reviewer=None, note="bo", expected_version=0)
    with pytest.raises(InvalidField, match="verdict"):
        append_review(store.engine, r2, decision="override", verdict=None, reason="because",
                      tenant=None, reviewer=None, note="bo", expected_version=0)
    with pytest.raises(ReportNotFound):
        append_review(store.engine, "nope", decision="confirm", verdict=None, reason="because",
                      tenant=None, reviewer=None, note="bo", expected_version=0)
    append_review(store.engine, r2, decision="confirm", verdict=None, reason="matches the references",
                  tenant=None, reviewer=None, note="bo", expected_version=0)
    append_review(store.engine, r1, decision="override", verdict="authentic", reason="second opinion",
                  tenant=None, reviewer=None, note="cy", expected_version=1)

    got = store.get(r1, tenant=None)
    assert got.verdict == "inconclusive" and got.review is not None  # the automated verdict stays
    assert got.review.final_verdict == "authentic" and got.review.status == "overridden"
    assert [r.seq for r in got.review.reviews] == [1, 3] and got.review.version == 2
    assert store.get(r2, tenant=None).review.status == "confirmed"  # type: ignore[union-attr]
    assert ids(store.find(ReportFilter(review_status="overridden"), tenant=None)[0]) == [1]
    assert verify_chain(store.engine).ok and verify_chain(store.engine).entries == 3

    with store.engine.begin() as conn:  # an insider edits a reason
        conn.execute(text("UPDATE report_reviews SET reason = 'looks fine' WHERE seq = 2"))
    result = verify_chain(store.engine)
    assert not result.ok and "entry 2: content does not match its hash" in result.problems[0]
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE report_reviews SET reason = 'matches the references' WHERE seq = 2"))
        conn.execute(text("DELETE FROM report_reviews WHERE seq = 3"))  # and removes the last entry
    result = verify_chain(store.engine)
    assert any("removed from the end" in p for p in result.problems)
    assert any("final verdict 'authentic' is not its last review's 'counterfeit'" in p
               for p in result.problems)


def test_sweep_removes_only_old_orphan_folders(store: ReportStore, tmp_path: Path) -> None:
    """What a SIGKILL between the files and the row leaves behind is removed at the next start."""
    from authentiq.api.resources import webhook_body
    from authentiq.inference.batcher import Priority
    from authentiq.pipeline.inspection import Upload
    from authentiq.services.container import sweep_orphans
    from authentiq.storage.jobs import JobRow, JobStore
    from authentiq.storage.references import ReferenceRow, ReferenceStore
    from authentiq.storage.reports import ReportRow

    refs = ReferenceStore(store.engine, BlobStore(store.blobs.root / "references"))
    jobs = JobStore(store.engine, BlobStore(store.blobs.root / "jobs"), webhook_body)
    save(store, row(1), {"logo.jpg": b"kept"})
    store.blobs.put_many(f"{2:032x}", {"logo.jpg": b"orphan"})  # files written, row never was
    refs.blobs.put_many(f"{3:032x}", {"logo.jpg": b"orphan reference"})
    jobs.blobs.put_many(f"{4:032x}", {"0.bin": b"orphan job photo"})
    accepted = jobs.submit([Upload("logo", b"accepted job photo")], brand="b", model="m",
                           client_ref=None, priority=Priority.BULK, key_id=None,
                           tenant_id="default")
    stores = [(store.blobs, ReportRow), (refs.blobs, ReferenceRow), (jobs.blobs, JobRow)]
    assert sweep_orphans(store.engine, stores, grace_s=3600) == []  # too young: a write in progress?
    assert sorted(sweep_orphans(store.engine, stores, grace_s=0)) == [
        f"{2:032x}", f"{3:032x}", f"{4:032x}"]
    assert jobs.uploads(accepted) == [("logo", b"accepted job photo")]
    assert store.blobs.get(f"{1:032x}", "logo.jpg") == b"kept"
    assert (store.blobs.root / "references").is_dir()
    assert [f for f, _ in store.blobs.folders()] == [f"{1:032x}"]


def test_filter_by_model_id_in_the_query_and_per_tenant(store: ReportStore) -> None:
    """Issue 18: reports name the model that decided (classifier.model_id, a column); the filter
    is in the store's query, scoped to the caller's tenant; reports of schema < 7 have none."""
    def by(i: int, model: str | None) -> Report:
        report = row(i)
        report.schema_version, report.classifier.model_id = "7", model
        return report

    old, new = "00000000000000aa", "00000000000000bb"
    store.save(by(1, old), {}, tenant_id="default")
    store.save(by(2, new), {}, tenant_id="default")
    store.save(by(3, new), {}, tenant_id="other")
    save(store, row(4), {})  # schema 5: no model id
    assert store.row(f"{2:032x}", tenant="default").model_id == new
    assert store.get(f"{2:032x}", tenant="default").classifier.model_id == new
    assert ids(store.find(ReportFilter(model_id=new), tenant="default")[0]) == [2]
    assert ids(store.find(ReportFilter(model_id=new), tenant="other")[0]) == [3]
    assert ids(store.find(ReportFilter(model_id=new), tenant=None)[0]) == [3, 2]  # an auditor
    assert store.count(ReportFilter(model_id=old), tenant="default") == 1
    assert store.count(ReportFilter(model_id=old), tenant="other") == 0
    assert store.row(f"{4:032x}", tenant="default").model_id is None
