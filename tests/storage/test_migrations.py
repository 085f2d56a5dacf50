"""Schema migrations (Alembic) on the run's database: from empty, from release 0.1.0, refusals.

The suite runs on SQLite, then on PostgreSQL (``AUTHENTIQ_TEST_DATABASE=postgres``); the
release 0.1.0 databases are real dumps of what that release made (tests/data/release-0.1.0).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text

from authentiq.api.app import create_app
from authentiq.cli import main
from authentiq.contract.model_spec import model_id
from authentiq.errors import DatabaseSchemaError
from authentiq.modelling.synthetic import SyntheticItem
from authentiq.settings import DEFAULT_MODEL
from authentiq.storage.blobs import BlobStore
from authentiq.storage.db import BASELINE, current, head, make_engine, open_database, upgrade
from authentiq.storage.keys import create_key
from authentiq.storage.references import ReferenceStore, ViewFeatures
from authentiq.storage.tables import metadata
from authentiq.storage.tenants import create_tenant
from tests.conftest import files_of, make_settings

RELEASE_0_1_0 = Path(__file__).parents[1] / "data" / "release-0.1.0"


def load_release_0_1_0(url: str) -> None:
    """Restore the dump of a database made by release 0.1.0 into the empty database at ``url``."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.executescript((RELEASE_0_1_0 / "sqlite.sql").read_text())
        return
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute((RELEASE_0_1_0 / "postgres.sql").read_text().encode())


def test_migrations_from_empty_build_exactly_the_models(database_url: str) -> None:
    """Upgrading an empty database gives the schema the code declares: no drift either way."""
    engine = open_database(database_url)
    try:
        assert current(engine) == head()
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata())
        assert diff == []
        assert upgrade(engine) == (head(), head())  # a second run changes nothing
    finally:
        engine.dispose()


def test_release_0_1_0_database_upgrades_and_keeps_serving(
        tmp_path: Path, database_url: str, genuine_item: SyntheticItem,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "db").mkdir(exist_ok=True)
    load_release_0_1_0(database_url)
    engine = make_engine(database_url)
    with engine.connect() as conn:
        report_id = conn.execute(text("SELECT id FROM reports WHERE client_ref = 'rel-0.1.0-sync'")
                                 ).scalar_one()
        job_id = conn.execute(text("SELECT id FROM jobs")).scalar_one()
    assert current(engine) is None  # 0.1.0 kept no migration history

    assert main(["db", "current", "--database-url", database_url]) == 1
    assert main(["db", "upgrade", "--database-url", database_url]) == 0
    assert f"database schema upgraded: {BASELINE} → {head()}" in capsys.readouterr().out
    assert current(engine) == head()
    indexes = {i["name"] for i in inspect(engine).get_indexes("jobs")}
    assert "ix_jobs_status_created_at" in indexes  # revision 0002 ran
    with engine.connect() as conn:  # revision 0003: everything stored so far is the default tenant's
        assert conn.execute(text("SELECT id FROM tenants")).scalars().all() == ["default"]
        for table in ("api_keys", "reports", "jobs", "webhook_deliveries"):
            owners = conn.execute(text(f"SELECT DISTINCT tenant_id FROM {table}")).scalars().all()
            assert owners == ["default"], table
    engine.dispose()

    # Everything 0.1.0 stored is served as before: keys, reports with their reviews, jobs,
    # webhook deliveries, the review chain; and new work is stored next to it.
    assert main(["keys", "list", "--database-url", database_url]) == 0
    assert "ops" in capsys.readouterr().out
    assert main(["keys", "create", "auditor", "--scopes", "submit,review,admin",
                 "--database-url", database_url]) == 0
    key = capsys.readouterr().out.splitlines()[1]
    assert main(["audit", "verify", "--database-url", database_url]) == 0
    headers = {"X-API-Key": key}
    settings = make_settings(tmp_path, database_url=database_url)
    with TestClient(create_app(settings)) as client:
        report = client.get(f"/v1/reports/{report_id}", headers=headers).json()
        assert report["verdict"] == "authentic"
        assert report["review"]["final_verdict"] == "counterfeit"
        assert report["review"]["reviews"][0]["reason"] == "release 0.1.0 review"
        # Revision 0004: the stored body keeps ids; the API makes the same links from them.
        assert report["links"]["self"] == f"/v1/reports/{report_id}"
        assert report["links"]["pdf"] == f"/v1/reports/{report_id}.pdf"
        assert set(report["links"]["views"]) == {v["view"] for v in report["views"]}
        for cls, images in report["heatmaps"]["images"].items():
            assert images == {v: f"/v1/reports/{report_id}/heatmaps/{cls}/{v}"
                              for v in report["heatmaps"]["views"]}
        with client.app.state.services.store.engine.connect() as conn:  # type: ignore[attr-defined]
            stored = conn.execute(text("SELECT body FROM reports WHERE id = :id"),
                                  {"id": report_id}).scalar_one()
        stored = json.loads(stored) if isinstance(stored, str) else stored
        assert "links" not in stored and "images" not in stored["heatmaps"]
        assert "/v1/" not in json.dumps(stored)
        job = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        assert job["status"] == "succeeded" and job["deliveries"][0]["status"] == "failed"
        listed = client.get("/v1/reports", headers=headers).json()
        assert len(listed["items"]) == 2
        new = client.post("/v1/inspections", files=files_of(genuine_item), headers=headers,
                          data={"brand": genuine_item.brand, "model": genuine_item.model})
        assert new.status_code == 201, new.text
        assert len(client.get("/v1/reports", headers=headers).json()["items"]) == 3
        # A key of another tenant sees none of it.
        engine = client.app.state.services.store.engine  # type: ignore[attr-defined]
        create_tenant(engine, "elsewhere")
        _, other = create_key(engine, "elsewhere", ["submit", "review"], tenant="elsewhere")
        assert client.get(f"/v1/reports/{report_id}", headers={"X-API-Key": other}).status_code == 404
        assert client.get(f"/v1/jobs/{job_id}", headers={"X-API-Key": other}).status_code == 404
        assert client.get("/v1/reports", headers={"X-API-Key": other}).json()["total"] == 0


def test_a_database_older_than_0_1_0_is_refused_untouched(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE reports (id VARCHAR(32) PRIMARY KEY, verdict VARCHAR(16))"))
        with pytest.raises(DatabaseSchemaError, match=r"older than 0\.1\.0.*'reports' lacks body, brand, .*Point AUTHENTIQ_DATABASE_URL"):
            upgrade(engine)
        assert inspect(engine).get_table_names() == ["reports"]  # nothing created, nothing stamped
    finally:
        engine.dispose()


def test_a_database_from_a_newer_release_is_refused(database_url: str) -> None:
    engine = open_database(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))
        for migrate in (True, False):
            with pytest.raises(DatabaseSchemaError, match="revision 0999, which this release"):
                open_database(database_url, migrate=migrate)
    finally:
        engine.dispose()


def test_migrate_false_refuses_to_start_until_db_upgrade_ran(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(tmp_path, database_url=database_url, migrate=False)
    with pytest.raises(DatabaseSchemaError, match="run `authentiq db upgrade`"), \
            TestClient(create_app(settings)):
        pass
    assert main(["db", "upgrade", "--database-url", database_url]) == 0
    assert main(["db", "current", "--database-url", database_url]) == 0
    assert f"schema revision {head()} (this release's head)" in capsys.readouterr().out
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 200


def test_workers_starting_at_once_migrate_once(database_url: str) -> None:
    """Eight processes' worth of engines upgrade the same empty database at once: a lock (an
    advisory lock on PostgreSQL, a file lock beside a SQLite file) lets one migrate; the others
    wait, then find the schema at head."""
    engines = [make_engine(database_url) for _ in range(8)]
    results: list[tuple[str | None, str | None]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(engines))

    def start(engine: object) -> None:
        barrier.wait()
        try:
            results.append(upgrade(engine))  # type: ignore[arg-type]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "concurrent upgrades deadlocked"
    for e in engines:
        e.dispose()
    assert errors == []
    assert sorted(results, key=lambda r: r[0] or "") == [(None, head())] + [(head(), head())] * 7


def test_0006_view_features_upgrade_fill_and_downgrade(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A reference embedded under 0005 keeps its embedding through 0006, with no per-view
    descriptors until they are written (what re-embed does); the downgrade drops the columns
    and keeps the embedding; upgrading again works."""
    engine = make_engine(database_url)
    try:
        assert upgrade(engine, "0005") == (None, "0005")
        now = datetime.now(UTC)
        vector = np.asarray([0.6, 0.8], "<f4").tobytes()
        with engine.begin() as conn:  # a reference as 0005 stored it
            conn.execute(text(
                "INSERT INTO reference_items (id, product_key, brand, model, created_at, "
                "content_hash, body, seq) VALUES ('ref1', 'verlaine/amande', 'Verlaine', "
                "'Amande', :t, 'h1', '{}', 0)"), {"t": now})
            conn.execute(text(
                "INSERT INTO reference_embeddings (reference_id, model_version, vector, "
                "created_at, seq) VALUES ('ref1', 'm@1', :v, :t, 0)"), {"v": vector, "t": now})
        assert main(["db", "upgrade", "--database-url", database_url]) == 0
        assert current(engine) == head()
        columns = {c["name"] for c in inspect(engine).get_columns("reference_embeddings")}
        assert {"view_features", "feature_views", "features_id"} <= columns
        store = ReferenceStore(engine, BlobStore(tmp_path / "refs"))
        assert store.missing_embeddings("m@1") == []
        assert [r.id for r in store.missing_embeddings("m@1", features_id="f1")] == ["ref1"]
        [up] = store.changes("m@1", -1).upserts
        assert up.view_features is None and np.allclose(up.vector, [0.6, 0.8])
        logo = np.arange(4, dtype=np.float32)
        store.add_embedding("ref1", "m@1", up.vector, ViewFeatures("f1", {"logo": logo, "label": -logo}))
        [up] = store.changes("m@1", -1).upserts
        assert up.view_features is not None and list(up.view_features) == ["logo", "label"]
        assert up.features_id == "f1" and store.missing_embeddings("m@1", features_id="f1") == []
        assert np.array_equal(up.view_features["label"], -logo)
        assert store.counts("m@1") == {"live": 1, "embedded": 1, "view_features": 1}

        assert main(["db", "downgrade", "0005", "--database-url", database_url]) == 0
        assert f"database schema downgraded: {head()} → 0005" in capsys.readouterr().out
        columns = {c["name"] for c in inspect(engine).get_columns("reference_embeddings")}
        assert not {"view_features", "feature_views", "features_id"} & columns
        with engine.connect() as conn:
            kept = conn.execute(text("SELECT vector FROM reference_embeddings")).scalar_one()
        assert bytes(kept) == vector
        assert upgrade(engine) == ("0005", head())
        [up] = store.changes("m@1", -1).upserts
        assert up.view_features is None  # dropped with the column: re-embed fills it again
    finally:
        engine.dispose()


def test_0008_shadow_results_upgrade_and_downgrade(
        database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The live shadow's table comes with 0008 and goes with its downgrade, the reports staying;
    upgrading again gives it back, empty."""
    engine = make_engine(database_url)
    try:
        assert upgrade(engine, "0006") == (None, "0006")
        assert "shadow_results" not in inspect(engine).get_table_names()
        now = datetime.now(UTC)
        assert main(["db", "upgrade", "--database-url", database_url]) == 0
        assert "shadow_results" in inspect(engine).get_table_names()
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO reports (id, created_at, brand, model, verdict, final_verdict, "
                "review_status, flagged, tenant_id, version, p_counterfeit, classifier, body) "
                "VALUES ('r1', :t, 'Castellan', 'Riva', 'authentic', 'authentic', 'unreviewed', "
                "false, 'default', 0, 0.01, 'm@1', '{}')"), {"t": now})
            conn.execute(text(
                "INSERT INTO shadow_results (report_id, model_id, model, tenant_id, created_at, "
                "verdict, p_counterfeit, confidence, reasons) VALUES ('r1', 'abc', 'm@2', "
                "'default', :t, 'inconclusive', 0.3, NULL, '[]')"), {"t": now})
        assert main(["db", "downgrade", "0006", "--database-url", database_url]) == 0
        assert f"database schema downgraded: {head()} → 0006" in capsys.readouterr().out
        assert "shadow_results" not in inspect(engine).get_table_names()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT id FROM reports")).scalar_one() == "r1"
        assert upgrade(engine) == ("0006", head())
        with engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM shadow_results")).scalar_one() == 0
    finally:
        engine.dispose()


def test_0007_model_registry_upgrade_first_start_and_downgrade(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Embeddings of 0006 (keyed name@version) survive 0007 under their old key, which no model
    serves; the first start of a server adopts its own name@version rows as made by its model
    and records the registration and promotion as such; other rows stay unserved. A report of
    before has no model id. The downgrade gives the rows their name@version back and drops the
    registry."""
    engine = make_engine(database_url)
    try:
        assert upgrade(engine, "0006") == (None, "0006")
        now = datetime.now(UTC)
        vector = np.full(128, 128 ** -0.5, "<f4").tobytes()  # the default model's embedding size
        with engine.begin() as conn:
            for ref, key in (("ref1", "authentiq-default@0.2.0"), ("ref2", "other@1")):
                conn.execute(text(
                    "INSERT INTO reference_items (id, product_key, brand, model, created_at, "
                    "content_hash, body, seq) VALUES (:id, 'verlaine/amande', 'Verlaine', "
                    "'Amande', :t, :h, '{}', 0)"), {"id": ref, "t": now, "h": ref})
                conn.execute(text(
                    "INSERT INTO reference_embeddings (reference_id, model_version, vector, "
                    "created_at, seq) VALUES (:id, :key, :v, :t, 0)"),
                    {"id": ref, "key": key, "v": vector, "t": now})
        assert main(["db", "upgrade", "--database-url", database_url]) == 0
        assert current(engine) == head()
        store = ReferenceStore(engine, BlobStore(tmp_path / "refs"))
        assert store.embedded_with(["ref1", "ref2"]) == {"ref1": ["authentiq-default@0.2.0"],
                                                        "ref2": ["other@1"]}
        served = model_id(DEFAULT_MODEL)
        assert [r.id for r in store.missing_embeddings(served)] == ["ref1", "ref2"]

        settings = make_settings(tmp_path, database_url=database_url)
        with TestClient(create_app(settings)) as client:
            ready = client.get("/readyz").json()
        assert ready["model_id"] == served and ready["promoted_release"] == served
        assert ready["model_promoted"] is True and ready["references"] == 1  # ref1, adopted
        assert store.embedded_with(["ref1", "ref2"]) == {"ref1": [served], "ref2": ["other@1"]}
        capsys.readouterr()
        assert main(["models", "list", "--database-url", database_url, "--json"]) == 0
        listed = json.loads(capsys.readouterr().out)
        [model] = listed["items"]
        assert model["id"] == served and model["acceptance"] == "missing" and model["forced"]
        assert model["registered_by"].startswith("server (first start")
        assert [p["action"] for p in listed["promotions"]] == ["first start"]

        assert main(["db", "downgrade", "0006", "--database-url", database_url]) == 0
        assert current(engine) == "0006"
        found = inspect(engine)
        assert not found.has_table("models") and not found.has_table("model_promotions")
        assert "model_id" not in {c["name"] for c in found.get_columns("reports")}
        with engine.connect() as conn:
            keys = dict(conn.execute(text(
                "SELECT reference_id, model_version FROM reference_embeddings")).all())
        assert keys == {"ref1": "authentiq-default@0.2.0", "ref2": "other@1"}
        assert upgrade(engine) == ("0006", head())
    finally:
        engine.dispose()


def test_0010_final_finding_comes_from_the_latest_review(database_url: str) -> None:
    """0010 gives every report its latest review's finding (listings and the CSV show it); a
    report whose latest review has none, or that has no review, gets NULL. Downgrading drops it."""
    engine = make_engine(database_url)
    try:
        assert upgrade(engine, "0009") == (None, "0009")
        now = datetime.now(UTC)
        with engine.begin() as conn:
            for rid in ("r1", "r2", "r3"):
                conn.execute(text(
                    "INSERT INTO reports (id, created_at, brand, model, verdict, final_verdict, "
                    "review_status, flagged, tenant_id, version, p_counterfeit, classifier, body) "
                    "VALUES (:id, :t, 'Castellan', 'Riva', 'counterfeit', 'inconclusive', "
                    "'overridden', false, 'default', 2, 0.9, 'm@1', '{}')"), {"id": rid, "t": now})
            for seq, rid, finding in ((1, "r1", None), (2, "r2", "not_a_product"),
                                      (3, "r1", "not_a_product"), (4, "r2", None)):
                conn.execute(text(
                    "INSERT INTO report_reviews (seq, report_id, created_at, reviewer, decision, "
                    "previous_verdict, verdict, reason, prev_hash, hash, finding) VALUES (:seq, "
                    ":rid, :t, 'ana', 'override', 'counterfeit', 'inconclusive', 'seen', :prev, :hash, "
                    ":finding)"), {"seq": seq, "rid": rid, "t": now, "finding": finding,
                                   "prev": f"h{seq - 1}", "hash": f"h{seq}"})
        assert upgrade(engine) == ("0009", head())
        with engine.connect() as conn:
            found = dict(conn.execute(text("SELECT id, final_finding FROM reports")).all())
        assert found == {"r1": "not_a_product", "r2": None, "r3": None}
        assert main(["db", "downgrade", "0009", "--database-url", database_url]) == 0
        assert "final_finding" not in {c["name"] for c in inspect(engine).get_columns("reports")}
    finally:
        engine.dispose()
