"""`authentiq models ...` (issue 18, item 3) on the run's database, with real ONNX models and
the real app over HTTP: registration and its acceptance gate, promotion (re-embedding first)
switching what servers serve, two servers on one database agreeing, rollback."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from authentiq.api.app import create_app
from authentiq.cli import main
from authentiq.contract.model_spec import model_id
from authentiq.settings import DEFAULT_MODEL
from authentiq.storage.db import open_database
from authentiq.storage.models import ModelRegistry
from tests.api.test_api_references import enrol, genuine
from tests.conftest import (
    build_tiny_model,
    database_url_for,
    files_of,
    make_settings,
    retrained,
    tiny_spec,
)

PASSED = json.dumps({"passed": True, "forced": False, "thresholds": {"test_auc": 0.95},
                     "figures": {"test_auc": 0.99}, "failed": []})
FAILED = json.dumps({"passed": False, "forced": False,
                     "thresholds": {"test_auc": 0.95, "decided_accuracy": 0.97},
                     "figures": {"test_auc": 0.41, "decided_accuracy": 0.42},
                     "failed": ["test_auc 0.41 < 0.95",
                                {"name": "decided_accuracy", "value": 0.42, "min": 0.97}]})


def tiny(path: Path, version: str, acceptance: str | None) -> Path:
    spec = tiny_spec(model_version=version)
    props = spec.to_props() | ({"authentiq.acceptance": acceptance} if acceptance else {})
    return build_tiny_model(path, spec, props=props)


def models(db: str, *args: str) -> int:
    return main(["models", *args, "--database-url", db])


def test_register_is_gated_by_the_acceptance_record_unless_forced(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = database_url_for(tmp_path)
    bare = tiny(tmp_path / "bare.onnx", "1.0.0", None)
    failed = retrained(tiny(tmp_path / "f.onnx", "1.1.0", FAILED), tmp_path / "failed.onnx")
    passed = retrained(tiny(tmp_path / "p.onnx", "1.2.0", PASSED), tmp_path / "passed.onnx",
                       nudge=0.5)

    assert models(db, "register", str(bare)) == 2
    assert "carries no acceptance record (authentiq.acceptance" in capsys.readouterr().err
    assert models(db, "register", str(failed)) == 2
    err = capsys.readouterr().err
    assert "failed its acceptance gate: test_auc 0.41 < 0.95; decided_accuracy (value 0.42, " \
           "min 0.97)" in err and "--force" in err
    assert models(db, "list") == 0  # nothing was left behind
    assert capsys.readouterr().out.startswith("no models registered yet")

    assert models(db, "register", str(failed), "--force") == 0
    assert f"registered {model_id(failed)}  tiny@1.1.0 fp32  acceptance failed (forced)" \
        in capsys.readouterr().out
    assert models(db, "register", str(passed), "--json") == 0
    [row] = json.loads(capsys.readouterr().out)["items"]
    assert row["id"] == row["release"] == model_id(passed) and row["acceptance"] == "passed"
    assert row["forced"] is False and row["summary"]["acceptance"]["figures"]["test_auc"] == 0.99
    assert row["registered_by"].endswith("(cli)") and row["path"] == str(passed.resolve())

    assert models(db, "register", str(passed)) == 2
    assert f"already registered: {model_id(passed)}" in capsys.readouterr().err
    assert models(db, "register", "--force", str(bare), str(passed)) == 2  # two models, one call
    assert "name tiny@1.0.0, tiny@1.2.0" in capsys.readouterr().err

    assert models(db, "list") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["id", "release", "model", "flavour", "acceptance",
                                           "registered", "state"]
    assert f"{model_id(passed)}  {model_id(passed)}  tiny@1.2.0" in out
    assert "failed (forced)" in out and "promoted" not in out
    assert models(db, "show", model_id(passed)[:6]) == 0
    shown = capsys.readouterr().out
    assert f"id          {model_id(passed)}" in shown
    assert "acceptance  passed" in shown and "0 of 0 live references embedded" in shown
    assert models(db, "show", "ffffffff") == 2
    assert "no registered model with id 'ffffffff'" in capsys.readouterr().err
    assert models(db, "rollback") == 2
    assert "nothing has been promoted" in capsys.readouterr().err


def serving(server: TestClient, wanted: str, timeout_s: float = 60.0) -> dict:  # type: ignore[type-arg]
    """``/readyz`` once the server serves model ``wanted`` (it switches in the background)."""
    deadline = time.monotonic() + timeout_s
    while True:
        ready = server.get("/readyz").json()
        if ready["model_id"] == wanted or time.monotonic() > deadline:
            return ready  # type: ignore[no-any-return]
        time.sleep(0.1)


def test_promotion_reembeds_then_every_server_switches_to_it_and_rollback_returns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(tmp_path)
    db = settings.database_url
    monkeypatch.setenv("AUTHENTIQ_BLOB_DIR", str(settings.blob_dir))  # the CLI's photos
    old = model_id(DEFAULT_MODEL)
    candidate = retrained(DEFAULT_MODEL, tmp_path / "candidate.int8-cpu.onnx", version="0.3.0",
                          props={"authentiq.acceptance": PASSED})
    new = model_id(candidate)
    item = genuine(0)

    with TestClient(create_app(settings)) as a, TestClient(create_app(settings)) as b:
        for server in (a, b):  # two workers on one database: one registration, one promotion
            ready = server.get("/readyz").json()
            assert ready["model_id"] == old == ready["promoted_release"]
            assert ready["model_promoted"] is True
        for i in range(2):
            assert enrol(a, genuine(i)).status_code == 201
        before = a.post("/v1/inspections", files=files_of(item),
                        data={"brand": item.brand, "model": item.model}).json()
        served: Any = a.app.state.services  # type: ignore[attr-defined]
        assert models(db, "register", str(candidate)) == 0
        capsys.readouterr()
        assert models(db, "promote", new[:8], "--quiet") == 0
        out = capsys.readouterr().out
        assert f"int8-cpu {new}: embedded 2 references" in out
        assert f"promoted release {new} (authentiq-default@0.3.0: int8-cpu); previously {old}" \
            in out
        assert main(["re-embed", "--database-url", db]) == 0  # the CLI takes the promoted model
        assert capsys.readouterr().out == ("nothing to re-embed: every live reference has an "
                                           f"embedding of authentiq-default@0.3.0 (model {new})\n")
        for server in (a, b):  # both switch while running: no restart, nothing refused
            ready = serving(server, new)
            assert ready["model_id"] == new and ready["model"] == "authentiq-default@0.3.0"
            assert ready["ready"] is True and ready["model_promoted"] is True
            assert ready["references"] == 2  # the new model's embeddings, made by promote
            report = server.post("/v1/inspections", files=files_of(item),
                                 data={"brand": item.brand, "model": item.model})
            assert report.status_code == 201, report.text
            assert report.json()["classifier"]["model_id"] == new
            assert report.json()["references"]["claimed"]["count"] == 2
        # Per-client counts (rate limits, uploads in flight) carry over to the new model's set.
        switched: Any = a.app.state.services  # type: ignore[attr-defined]
        assert switched is not served and switched.rate_limiter is served.rate_limiter
        assert switched.in_flight is served.in_flight
        # Reports made before the switch keep the model that made them.
        assert a.get(f"/v1/reports/{before['id']}").json()["classifier"]["model_id"] == old
        listed = a.get("/v1/reports", params={"model_id": new}).json()
        assert listed["total"] == 2 and before["id"] not in [i["id"] for i in listed["items"]]
        assert a.get("/v1/reports", params={"model_id": old}).json()["total"] == 1
        csv_text = a.get("/v1/reports.csv", params={"model_id": new}).text
        assert "model_id" in csv_text.splitlines()[0].split(",") and new in csv_text
        assert a.get("/v1/reports", params={"model_id": "X"}).status_code == 422

        assert models(db, "rollback", "--note", "drift on Amande") == 0
        assert f"rolled back to release {old} (authentiq-default@0.2.0) from {new}" \
            in capsys.readouterr().out
        for server in (a, b):  # and back, its embeddings kept
            ready = serving(server, old)
            assert ready["model_id"] == old and ready["references"] == 2 and ready["ready"]

        # Two promotions in quick succession (the second while the first switch may be under
        # way): every worker ends on the last one.
        third = retrained(DEFAULT_MODEL, tmp_path / "third.int8-cpu.onnx", version="0.4.0",
                          props={"authentiq.acceptance": PASSED}, nudge=0.01)
        assert models(db, "register", str(third)) == 0
        assert models(db, "promote", new[:8], "--quiet") == 0
        assert models(db, "promote", model_id(third)[:8], "--quiet") == 0
        capsys.readouterr()
        for server in (a, b):
            ready = serving(server, model_id(third))
            assert ready["model"] == "authentiq-default@0.4.0" and ready["ready"] is True
            assert server.post("/v1/inspections", files=files_of(item), data={
                "brand": item.brand, "model": item.model}).json()["classifier"]["model_id"] == \
                model_id(third)
        assert models(db, "rollback") == 0 and models(db, "rollback") == 0  # to new, then third
        assert models(db, "promote", old[:8], "--quiet") == 0
        capsys.readouterr()
        for server in (a, b):
            assert serving(server, old)["ready"] is True

        # A release with no file on this host: the worker keeps its model and refuses (503);
        # once the file arrives it switches without a restart. Twice: on the model it started
        # with, and on one it had switched to (whose file is not the configured one).
        for serving_now in (old, model_id(third)):
            if serving_now != old:
                assert models(db, "promote", serving_now[:8], "--quiet") == 0
                for server in (a, b):
                    assert serving(server, serving_now)["ready"] is True
            away = candidate.rename(tmp_path / "not-copied-yet.onnx")
            # (promoted on a host that has the file: here, through the registry itself)
            engine = open_database(db)
            ModelRegistry(engine).promote(new, action="promote", by="another host", note=None)
            engine.dispose()
            for server in (a, b):
                deadline = time.monotonic() + 60
                while (r := server.get("/readyz")).status_code == 200 and \
                        time.monotonic() < deadline:
                    time.sleep(0.1)
                assert r.status_code == 503 and r.json()["model_promoted"] is False
                assert r.json()["model_id"] == serving_now and f"release {new} is promoted" in \
                    r.json()["model_error"]
                refused = server.post("/v1/inspections", files=files_of(item),
                                      data={"brand": item.brand, "model": item.model})
                assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
                assert refused.json()["type"].endswith("/model-not-promoted")
            away.rename(candidate)  # the file arrives
            for server in (a, b):
                ready = serving(server, new)
                assert ready["ready"] is True and ready["model_promoted"] is True
                assert server.post("/v1/inspections", files=files_of(item), data={
                    "brand": item.brand, "model": item.model}).json()["classifier"]["model_id"] \
                    == new
        assert models(db, "promote", old[:8], "--quiet") == 0
        capsys.readouterr()

    with TestClient(create_app(settings)) as back:
        ready = back.get("/readyz").json()
        assert ready["model_id"] == old and ready["references"] == 2  # its embeddings stayed
    assert models(db, "list", "--json") == 0
    history = json.loads(capsys.readouterr().out)["promotions"]
    assert [(p["action"], p["release"]) for p in history] == [
        ("first start", old), ("promote", new), ("rollback", old), ("promote", new),
        ("promote", model_id(third)), ("rollback", new), ("rollback", model_id(third)),
        ("promote", old), ("promote", new), ("promote", model_id(third)), ("promote", new),
        ("promote", old)]
    assert history[2]["note"] == "drift on Amande" and history[2]["previous_release"] == new
