"""Shadow evaluation through the real app, ONNX Runtime and the run's database (SQLite, then
PostgreSQL): `authentiq models shadow` re-scores stored inspections with a candidate, and its
figures equal those of the candidate served for real on the same photos; the live shadow
(AUTHENTIQ_SHADOW_MODEL) scores each inspection after its answer is sent, stores the result
beside the report, never shows it to the client, and counts agreement in /metrics."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import onnx
import pytest
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from authentiq.api.app import create_app
from authentiq.cli import main
from authentiq.contract.model_spec import model_id
from authentiq.errors import AuthentiqError
from authentiq.modelling.synthetic import SyntheticItem, find_spec, make_item, passes_quality
from authentiq.services.shadow_live import LiveShadow
from authentiq.settings import Settings
from authentiq.storage.blobs import BlobStore
from authentiq.storage.db import make_engine
from authentiq.storage.shadow_results import ShadowResults
from tests.conftest import (
    FP32_MODEL,
    allow_classifier_only,
    build_tiny_model,
    files_of,
    make_settings,
    riva_item,
)
from tests.services.test_jobs import finished

# A retrained model stands in for the candidate: the FP32 flavour (other weights than the served
# INT8 one: another model id) with a much wider inconclusive band, so verdicts change.
WIDE_BAND = {"authentic_below": 0.001, "counterfeit_above": 0.999}


def candidate_model(folder: Path) -> Path:
    model = onnx.load(str(FP32_MODEL))
    for prop in model.metadata_props:
        if prop.key == "authentiq.thresholds":
            prop.value = json.dumps(WIDE_BAND)
        if prop.key == "authentiq.model_version":
            prop.value = "0.3.0-rc1"
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "candidate.onnx"))
    return folder / "candidate.onnx"


def clean_items(n: int, seed: int = 77_000_000, **kind: Any) -> list[SyntheticItem]:
    """Genuine and counterfeit items (alternately) whose photos pass the quality check."""
    items: list[SyntheticItem] = []
    while len(items) < n:
        item = make_item(seed, counterfeit=len(items) % 2 == 1, **kind)
        if passes_quality(item.views):
            items.append(item)
        seed += 1
    return items


def inspect_all(client: TestClient, items: list[SyntheticItem]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        r = client.post("/v1/inspections", files=files_of(item),
                        data={"brand": item.brand, "model": item.model})
        assert r.status_code == 201, r.text
        out.append(r.json())
    return out


def served(settings: Settings, items: list[SyntheticItem], reference: SyntheticItem
           ) -> list[dict[str, Any]]:
    """Reports of ``items`` from a server of ``settings`` with ``reference`` enrolled."""
    with TestClient(create_app(settings)) as client:
        allow_classifier_only(client)
        r = client.post("/v1/references", files=files_of(reference),
                        data={"brand": reference.brand, "model": reference.model})
        assert r.status_code == 201, r.text
        return inspect_all(client, items)


def shadow_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(["models", "shadow", *args])
    out = capsys.readouterr()
    return status, out.out, out.err


@pytest.mark.slow  # two servers and three runs of the command: 14-21 s on 2 shared cores
def test_shadow_rescores_stored_inspections_as_the_candidate_would_serve_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    reference = riva_item()  # the one product with a reference: fusion decides there
    items = clean_items(5) + clean_items(2, 78_000_000, spec=find_spec("Castellan", "Riva"))
    candidate = candidate_model(tmp_path / "models")
    a = make_settings(tmp_path / "a")
    with TestClient(create_app(a)) as client:
        allow_classifier_only(client)
        r = client.post("/v1/references", files=files_of(reference),
                        data={"brand": reference.brand, "model": reference.model})
        assert r.status_code == 201, r.text
        reports = inspect_all(client, items)
        # Two reviews: the first report confirmed, the second overridden to the other verdict.
        for report, decision in zip(reports[:2], ("confirm", "override"), strict=True):
            other = "authentic" if report["verdict"] != "authentic" else "counterfeit"
            body = {"decision": decision, "reason": "checked in the shop", "reviewer": "ana",
                    "expected_version": 0,
                    **({"verdict": other} if decision == "override" else {})}
            r = client.post(f"/v1/reports/{report['id']}/reviews", json=body)
            assert r.status_code == 201, r.text
        finals = [client.get(f"/v1/reports/{rep['id']}").json()["review"]["final_verdict"]
                  for rep in reports[:2]]
    # The candidate served for real, on a database of its own with the same reference.
    b = make_settings(tmp_path / "b", model_path=candidate)
    truth = [rep["verdict"] for rep in served(b, items, reference)]
    first = [rep["verdict"] for rep in reports]
    assert first != truth  # the candidate does change verdicts: the figures below are not trivial

    monkeypatch.setenv("AUTHENTIQ_BLOB_DIR", str(a.storage.blob_dir))
    monkeypatch.setenv("AUTHENTIQ_ORT_THREADS", "2")
    status, out, err = shadow_cli([str(candidate), "--since", "1d", "--json", "--quiet",
                                   "--database-url", a.storage.database_url], capsys)
    assert status == 0, err
    summary = json.loads(out)
    agree = sum(x == y for x, y in zip(first, truth, strict=True))
    assert summary["candidate"] == f"{model_id(candidate)} (authentiq-default@0.3.0-rc1)"
    assert summary["references"] == 1 and summary["not_scored"] == {}
    assert (summary["scored"], summary["agree"]) == (len(items), agree)
    assert summary["agreement"] == round(agree / len(items), 4)
    changes = Counter(zip(first, truth, strict=True))
    assert {(s, c): n for s, row in summary["matrix"].items() for c, n in row.items() if n} == changes
    assert [c["report_id"] for c in summary["changed"]] == [
        rep["id"] for rep, t in zip(reports[::-1], truth[::-1], strict=True)
        if rep["verdict"] != t]  # newest first
    per_product = Counter(f"{i.brand} / {i.model}" for i in items)
    assert {k: v["scored"] for k, v in summary["products"].items()} == per_product
    reviewed = summary["reviewed"]
    assert reviewed["cases"] == 2
    assert reviewed["served_correct"] == sum(f == s for f, s in zip(finals, first, strict=False))
    assert reviewed["candidate_correct"] == sum(f == t for f, t in zip(finals, truth, strict=False))
    with TestClient(create_app(a)) as client:  # nothing stored: still the same reports
        assert client.get("/v1/reports").json()["total"] == len(items)

    # The same in words, for a person, on the newest two, one of whose photos are gone: it is
    # counted apart, the run goes on. Then the readable refusals.
    BlobStore(a.storage.blob_dir).delete(reports[-1]["id"])
    status, out, _ = shadow_cli([str(candidate), "--quiet", "--limit", "2",
                                 "--database-url", a.storage.database_url], capsys)
    assert status == 0 and "re-scored    1\n" in out and "served \\ candidate" in out
    assert "not scored   1: photos no longer stored 1" in out
    assert "Castellan / Riva                  1" in out
    assert "reviewed     none of these inspections has been reviewed yet" in out
    tiny = build_tiny_model(tmp_path / "models" / "tiny.onnx")
    (tmp_path / "notes.onnx").write_text("not a model")
    url = ["--database-url", a.storage.database_url, "--quiet"]
    for args, said in [
            ([str(tmp_path / "missing.onnx")], "model file not found"),
            ([str(tmp_path / "notes.onnx")], "not a readable ONNX file"),
            ([str(tiny)], "the candidate's views (front, back) differ from those of the stored "
                          "inspections: the candidate has no hardware, interior, label, logo, "
                          "overall, stitching view; it requires front, missing from the stored "
                          "inspections"),
            ([str(candidate), "--tenant", "nobody"], "nobody"),
            ([], "give a candidate model, or --live"),
            ([str(candidate), "--since", "last tuesday"], None)]:
        try:
            status, out, err = shadow_cli([*args, *url], capsys)
        except SystemExit as exc:  # argparse: a usage error, exit 2
            status, err = int(str(exc.code)), capsys.readouterr().err
            assert "neither a span" in err
        assert status == 2, (args, err)
        assert said is None or said in err, err
        assert "Traceback" not in err


class Recorder:
    """The app as an ASGI server sees it, noting what the live shadow had been offered when
    each inspection's response finished going out."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        self.offered_when_sent: list[int] = []

    @property
    def shadow(self) -> LiveShadow:
        shadow = self.app.state.services.shadow
        assert isinstance(shadow, LiveShadow)
        return shadow

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def sent(message: Message) -> None:
            await send(message)
            if (scope["type"] == "http" and scope["path"] == "/v1/inspections"
                    and message["type"] == "http.response.body" and not message.get("more_body")):
                self.offered_when_sent.append(self.shadow.counts["offered"])
        await self.app(scope, receive, sent)


def test_live_shadow_scores_after_the_answer_and_stores_beside_the_report(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    candidate = candidate_model(tmp_path / "models")
    items = clean_items(3)
    settings = make_settings(tmp_path, shadow_model=candidate, shadow_queue=2)
    server = Recorder(settings)
    with TestClient(server) as client:
        allow_classifier_only(client)
        reports = inspect_all(client, items)
        shadow = server.shadow
        client.portal.call(shadow.drain)
        # Each response had gone out before the shadow was even offered its inspection.
        assert server.offered_when_sent == [0, 1, 2]
        assert shadow.counts["agree"] + shadow.counts["disagree"] == 3
        metrics = client.get("/metrics").text
        for outcome in ("agree", "disagree"):
            n = float(shadow.counts[outcome])
            if n:
                assert f'authentiq_shadow_inspections_total{{outcome="{outcome}"}} {n}' in metrics
        for report in reports:  # never shown to the client
            stored = client.get(f"/v1/reports/{report['id']}").text
            for body in (json.dumps(report), stored):
                assert "shadow" not in body and model_id(candidate) not in body

        # An async job is offered once it has finished, and scored from its stored photos.
        r = client.post("/v1/inspections?mode=async", files=files_of(items[0]),
                        data={"brand": items[0].brand, "model": items[0].model})
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        assert finished(client, job_id)["status"] == "succeeded"
        client.portal.call(shadow.drain)
        assert shadow.counts["offered"] == 4
        assert shadow.counts["agree"] + shadow.counts["disagree"] == 4
        reports.append(client.get(f"/v1/reports/{job_id}").json())

        # A full queue drops (and counts) what it cannot take; nothing waits for the shadow.
        def burst() -> list[bool]:
            return [shadow.offer(reports[0]["id"], "default") for _ in range(4)]
        taken = client.portal.call(burst)
        assert taken[:2] == [True, True] and taken[2:] == [False, False]
        client.portal.call(shadow.drain)
        assert shadow.counts["dropped"] == 2
        assert 'authentiq_shadow_inspections_total{outcome="dropped"} 2.0' in client.get("/metrics").text

    engine = make_engine(settings.storage.database_url)
    try:
        results = ShadowResults(engine)
        pairs = results.find(since=_long_ago(), tenant="default")
        assert sorted(r.report_id for r, _ in pairs) == sorted(rep["id"] for rep in reports)
        assert {r.model_id for r, _ in pairs} == {model_id(candidate)}
        assert all(r.tenant_id == "default" and r.reasons for r, _ in pairs)
        assert results.find(since=_long_ago(), tenant="another") == []  # scoped in the query
    finally:
        engine.dispose()
    agree = sum(r.verdict == row.verdict for r, row in pairs)
    assert agree == shadow.counts["agree"]

    status = main(["models", "shadow", "--live", "--since", "1d", "--json",
                   "--database-url", settings.storage.database_url])
    out = capsys.readouterr()
    assert status == 0, out.err
    [summary] = json.loads(out.out)
    assert summary["scored"] == 4 and summary["agree"] == agree and summary["live"] is True


def test_live_shadow_searches_references_enrolled_and_deleted_after_it_started(
        tmp_path: Path) -> None:
    """The candidate embeds every live reference when it opens; one enrolled later is embedded
    before the next item it scores, and one deleted is dropped, as the served model's index
    follows them (it used to search the references of its start-up until restarted)."""
    candidate = candidate_model(tmp_path / "models")
    [item] = clean_items(1)
    reference = make_item(930_000_007, counterfeit=False)
    settings = make_settings(tmp_path, shadow_model=candidate, reference_sync_s=0)
    server = Recorder(settings)
    with TestClient(server) as client:
        allow_classifier_only(client)
        shadow = server.shadow

        def scored_once() -> tuple[int, int]:
            inspect_all(client, [item])
            client.portal.call(shadow.drain)
            assert shadow.candidate is not None
            return shadow.candidate.references, shadow.candidate.inspector.references.size

        assert scored_once() == (0, 0)
        r = client.post("/v1/references", files=files_of(reference),
                        data={"brand": reference.brand, "model": reference.model})
        assert r.status_code == 201, r.text
        assert scored_once() == (1, 1)  # embedded by the candidate, and searched
        assert client.delete(f"/v1/references/{r.json()['id']}",
                             params={"reason": "withdrawn"}).status_code == 200
        assert scored_once() == (0, 0)
        # Enrolled again and withdrawn between two of the candidate's searches: caught up with
        # both times, never handed to its index.
        assert shadow.candidate is not None
        r = client.post("/v1/references", files=files_of(reference),
                        data={"brand": reference.brand, "model": reference.model})
        assert r.status_code == 201, r.text
        assert client.portal.call(shadow.candidate.catch_up) == 1
        assert client.delete(f"/v1/references/{r.json()['id']}",
                             params={"reason": "withdrawn"}).status_code == 200
        assert client.portal.call(shadow.candidate.catch_up) == 1
        assert scored_once() == (0, 0)
        assert shadow.counts["failed"] == 0


def _long_ago() -> datetime:
    return datetime(2000, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("kind", ["missing", "other views"])
def test_a_live_shadow_that_cannot_fit_stops_start_up_naming_the_variable(
        tmp_path: Path, kind: str) -> None:
    path = (tmp_path / "missing.onnx" if kind == "missing" else
            build_tiny_model(tmp_path / "tiny.onnx"))
    said = "model file not found" if kind == "missing" else "the candidate's views (front, back)"
    with pytest.raises(AuthentiqError) as caught, \
            TestClient(create_app(make_settings(tmp_path, shadow_model=path))):
        pass
    assert caught.value.detail.startswith("AUTHENTIQ_SHADOW_MODEL: ") and said in caught.value.detail
