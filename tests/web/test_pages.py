"""The auditor pages through the real app: a report's headline after a review (the reviewer's
verdict named as such, the automated figures beside it, labelled), no confidence on an
inconclusive report (schema v3 and v2 bodies), the photos to retake, reasons that argue against
the verdict, the review queue; and screenshots of the pages in a real browser."""

from __future__ import annotations

import copy
import html
import io
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageFilter

from authentiq.api.app import create_app
from authentiq.contract.report import Report
from authentiq.modelling.synthetic import SyntheticItem
from authentiq.settings import DEFAULT_REFERENCES, Settings
from authentiq.storage.keys import create_key
from tests.conftest import REPO, LiveServer, live_server, make_settings, riva_item

SHOTS = REPO / "var" / "screenshots"


@pytest.fixture(scope="module")
def item() -> SyntheticItem:
    return riva_item()


@pytest.fixture
def with_refs(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, reference_seed_dir=DEFAULT_REFERENCES)


@pytest.fixture
def client(with_refs: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(with_refs)) as c:
        yield c


def inspect(client: TestClient, views: dict[str, bytes], ref: str) -> dict[str, Any]:
    r = client.post("/v1/inspections", files=[(v, (f"{v}.jpg", b, "image/jpeg")) for v, b in views.items()],
                    data={"brand": "Castellan", "model": "Riva", "client_ref": ref})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def blurred(item: SyntheticItem, view: str = "label") -> dict[str, bytes]:
    buf = io.BytesIO()
    Image.open(io.BytesIO(item.views[view])).filter(ImageFilter.GaussianBlur(6)).save(buf, "JPEG")
    return {**item.views, view: buf.getvalue()}


def text(markup: str) -> str:
    """What a reader sees: tags out, entities decoded, white space collapsed."""
    markup = re.sub(r"<(script|style)\b.*?</\1>", " ", markup, flags=re.S)
    words = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())
    return re.sub(r" ([:;,.])", r"\1", words)  # "<strong>label</strong>: ..." reads "label: ..."


def part(markup: str, element_id: str) -> str:
    """The text of the (unnested) element with this id."""
    found = re.search(rf'<(\w+)[^>]* id="{element_id}"[^>]*>(.*?)</\1>', markup, flags=re.S)
    assert found, f"no #{element_id}"
    return text(found.group(2))


def store_variant(client: TestClient, body: dict[str, Any], ref: str) -> str:
    """Save a changed copy of a stored body as a new report (how an older body reads today)."""
    body = copy.deepcopy(body)
    body.pop("review", None)
    body["id"] = uuid.uuid4().hex
    body["client_ref"] = ref
    body["created_at"] = datetime.now(UTC).isoformat()
    report = Report.model_validate(body)  # the API's links are not part of the stored report
    client.app.state.services.store.save(report, {}, tenant_id="default")  # type: ignore[attr-defined]
    return str(body["id"])


def test_an_override_headlines_the_reviewers_verdict(client: TestClient, item: SyntheticItem) -> None:
    report = inspect(client, item.views, "to-override")
    confirmed = inspect(client, item.views, "to-confirm")
    assert report["verdict"] == "authentic" and report["confidence"] is not None
    engine = client.app.state.services.store.engine  # type: ignore[attr-defined]
    (ana, ana_key), (bo, bo_key) = (create_key(engine, name, ["review"]) for name in ("ana", "bo"))
    client.app.state.services.keys._checked = float("-inf")  # type: ignore[attr-defined]
    url = f"/v1/reports/{report['id']}/reviews"
    r = client.post(url, headers={"X-API-Key": ana_key}, json={
        "decision": "override", "verdict": "counterfeit", "reason": "lining stitched by machine",
        "expected_version": 0})
    assert r.status_code == 201, r.text
    client.post(url, headers={"X-API-Key": bo_key}, json={
        "decision": "confirm", "reason": "agreed", "expected_version": 1})  # keeps ana's override

    page = client.get(f"/reports/{report['id']}", headers={"X-API-Key": bo_key}).text
    head = part(page, "headline")
    assert head.startswith("COUNTERFEIT reviewer's verdict (overrides the automated verdict) · "
                           f"by ana (key {ana.id}) · ")
    assert "confidence" not in head.lower()  # the automated figures are not the reviewer's
    automated = part(page, "automated")
    assert automated.startswith("automated The automated verdict was authentic · confidence "
                                f"{report['confidence']:.3f} · p(counterfeit) "
                                f"{report['probabilities']['counterfeit']:.3f}")
    assert page.index('id="headline"') < page.index('id="automated"')
    assert "lining stitched by machine" in page and "agreed" in page

    # The form: a key sent as a header needs no CSRF token, but the post must be same-origin.
    r = client.post(f"/reports/{confirmed['id']}/review", headers={
        "X-API-Key": bo_key, "Origin": "http://testserver"}, data={
        "decision": "confirm", "reason": "matches the references", "note": "typed name",
        "expected_version": "0", "verdict": ""})
    assert r.status_code == 200, r.text  # followed the redirect to the page
    page = client.get(f"/reports/{confirmed['id']}", headers={"X-API-Key": bo_key}).text
    assert part(page, "headline").startswith(f"AUTHENTIC confirmed by bo (key {bo.id}) · ")
    assert part(page, "automated").startswith("automated The automated verdict was authentic · confidence ")


def test_reviews_are_numbered_within_their_report(client: TestClient, item: SyntheticItem) -> None:
    a, b = inspect(client, item.views, "a"), inspect(client, item.views, "b")
    for rid, version in ((a["id"], 0), (a["id"], 1), (b["id"], 0)):
        assert client.post(f"/v1/reports/{rid}/reviews", json={
            "decision": "confirm", "reason": "matches", "expected_version": version}).status_code == 201
    rows = re.findall(r"<td>(\d+)<br><span[^>]*>log entry (\d+)</span>", client.get(f"/reports/{b['id']}").text)
    assert rows == [("1", "3")]  # b's first review, the third entry of the log
    rows = re.findall(r"<td>(\d+)<br><span[^>]*>log entry (\d+)</span>", client.get(f"/reports/{a['id']}").text)
    assert rows == [("1", "1"), ("2", "2")]


def test_the_closest_references_are_shown_beside_the_item(client: TestClient, item: SyntheticItem) -> None:
    report = inspect(client, item.views, "compare")
    closest = [m["id"] for m in report["references"]["claimed"]["matches"]][:3]
    page = client.get(f"/reports/{report['id']}").text
    grid = part(page, "compare")
    assert grid.startswith("overall logo stitching hardware label interior this item reference 1 similarity")
    shown = re.findall(rf'src="/v1/reports/{report["id"]}/references/(\w+)/views/(\w+)"', page)
    assert [ref for ref, _ in shown[::6]] == closest and len(shown) == 6 * len(closest)
    for ref, view in shown:
        photo = client.get(f"/v1/reports/{report['id']}/references/{ref}/views/{view}")
        assert photo.status_code == 200 and photo.headers["content-type"].startswith("image/")
    # only the report's own matches: another reference, or another report's id, is 404
    matched = {m["id"] for m in report["references"]["claimed"]["matches"]} | \
        {m["id"] for m in report["references"]["other_products"]}
    other = next(r["id"] for r in client.get("/v1/references", params={"limit": 100}).json()["items"]
                 if r["id"] not in matched)
    assert client.get(f"/v1/reports/{report['id']}/references/{other}/views/logo").status_code == 404
    assert client.get(f"/v1/reports/{'0' * 32}/references/{closest[0]}/views/logo").status_code == 404
    assert client.get(f"/v1/reports/{report['id']}/references/{closest[0]}/views/sole").status_code == 404


def test_an_inconclusive_report_shows_no_confidence_and_what_to_retake(
        client: TestClient, item: SyntheticItem) -> None:
    report = inspect(client, blurred(item), "needs-retake")
    assert report["verdict"] == "inconclusive" and report["confidence"] is None
    label = next(t for t in report["retake"] if t["view"] == "label")
    page = client.get(f"/reports/{report['id']}").text
    assert "confidence" not in text(page).lower()
    assert part(page, "headline") == "INCONCLUSIVE automated verdict"
    retake = part(page, "retake")
    assert retake.startswith("Photos to retake") and f"label (blurred): {label['message']}" in retake

    # A v2 body stored a confidence for an inconclusive verdict, and had no retake list.
    old = copy.deepcopy(report) | {"schema_version": "2", "confidence": 0.9731}
    del old["retake"]
    old_id = store_variant(client, old, "old-v2")
    page = client.get(f"/reports/{old_id}").text
    assert "confidence" not in text(page).lower() and "0.973" not in page
    assert 'id="retake"' not in page

    queue = client.get("/review").text
    rows = {ref: row for row in re.findall(r"<tr>(.*?)</tr>", queue, flags=re.S)
            for ref in ("needs-retake", "old-v2") if ref in row}
    assert set(rows) == {"needs-retake", "old-v2"}
    assert not re.search(r"\d\.\d{3}", rows["old-v2"])  # no confidence figure in the queue
    pdf = client.get(report["links"]["pdf"])
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_reasons_against_the_verdict_and_gate_findings(client: TestClient, item: SyntheticItem) -> None:
    report = inspect(client, item.views, "against")
    body = copy.deepcopy(report)
    body["verdict"], body["confidence"] = "counterfeit", 0.91
    body["reasons"] = [
        {"code": "classifier", "value": 0.3, "stance": "against",
         "detail": "The classifier's counterfeit probability is 0.300."},
        {"code": "not_a_product", "view": "logo",
         "detail": "This photo does not look like the logo of an item this model knows."},
        {"code": "model_mismatch", "detail": "The item matches genuine Castellan/Lumen references."},
        *body["reasons"]]
    body["views"][1]["gate"] = {"distance": 3.2, "looks_like": None, "finding": "not_a_product",
                                "other_view": None}
    page = client.get(f"/reports/{store_variant(client, body, 'against')}").text
    items = [text(li) for li in re.findall(r"<li[^>]*>(.*?)</li>", page, flags=re.S)]
    marked = [li for li in items if li.endswith("argues against the automated verdict")]
    assert marked == ["The classifier's counterfeit probability is 0.300. argues against the automated verdict"]
    assert "This photo does not look like the logo of an item this model knows." in items
    assert "retake: not a product" in text(page)
    assert part(page, "automated").startswith("Confidence 0.910 · p(counterfeit)")


@pytest.mark.browser
def test_screenshots_of_the_auditor_page(browser: Any, with_refs: Settings, item: SyntheticItem) -> None:
    """An overridden report and one with photos to retake, as an auditor sees them."""
    with live_server(with_refs) as server:
        shots = _screenshots(browser, server, item)
    for path in shots:
        assert path.stat().st_size > 10_000


def _screenshots(browser: Any, server: LiveServer, item: SyntheticItem) -> list[Path]:
    import httpx

    files = [(v, (f"{v}.jpg", b, "image/jpeg")) for v, b in item.views.items()]
    form = {"brand": "Castellan", "model": "Riva", "client_ref": "sku-88"}
    report = httpx.post(server.url + "/v1/inspections", files=files, data=form, timeout=60).json()
    httpx.post(server.url + f"/v1/reports/{report['id']}/reviews", timeout=10, json={
        "decision": "override", "verdict": "counterfeit", "reviewer": "ana.k",
        "reason": "The lining is glued, not stitched: seen under the loupe.", "expected_version": 0})
    retake = httpx.post(server.url + "/v1/inspections", timeout=60, data=form, files=[
        (v, (f"{v}.jpg", b, "image/jpeg")) for v, b in blurred(item).items()]).json()
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    SHOTS.mkdir(parents=True, exist_ok=True)
    shots = []
    for name, rid, says in (("pages-1-overridden", report["id"], "reviewer's verdict"),
                            ("pages-2-retake", retake["id"], "automated verdict")):
        page.goto(server.url + f"/reports/{rid}")
        page.wait_for_load_state("networkidle")
        assert says in str(page.text_content("#headline"))
        path = SHOTS / f"{name}.png"
        page.screenshot(path=str(path))
        shots.append(path)
    assert errors == []
    page.close()
    return shots


@pytest.mark.browser
def test_the_printed_page(browser: Any, with_refs: Settings, item: SyntheticItem) -> None:
    """As printed: the header line ends with the report's own facts (no dangling separators
    where the PDF and JSON links were), no "Review recorded." banner, no form; the compared
    references' photos are loaded beside the item's."""
    import httpx

    with live_server(with_refs) as server:
        files = [(v, (f"{v}.jpg", b, "image/jpeg")) for v, b in item.views.items()]
        report = httpx.post(server.url + "/v1/inspections", files=files, timeout=60, data={
            "brand": "Castellan", "model": "Riva", "client_ref": "sku-91"}).json()
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + f"/reports/{report['id']}")
        page.fill("#reason", "Stitching and hardware match the references.")
        page.click("form.review button[type=submit]")
        page.wait_for_url("**reviewed=true")
        assert page.is_visible("text=Review recorded.")
        page.locator("#compare").scroll_into_view_if_needed()  # its images load lazily
        loaded = "[...document.querySelectorAll('#compare img')].every(i => i.complete && i.naturalWidth > 0)"
        for _ in range(200):
            if page.evaluate(loaded):
                break
            page.wait_for_timeout(100)
        assert page.evaluate(loaded)
        assert page.locator("#compare img").count() == 6 * 4  # the item and 3 references
        page.screenshot(path=str(SHOTS / "pages-3-compared.png"), full_page=True)
        page.emulate_media(media="print")
        line = page.inner_text("#report-line")
        assert line.endswith("your reference sku-91") and "PDF" not in line, line
        assert not page.is_visible("text=Review recorded.") and not page.is_visible("form.review")
        page.screenshot(path=str(SHOTS / "pages-4-printed.png"), full_page=True)
        pdf = httpx.get(server.url + f"/v1/reports/{report['id']}.pdf", timeout=60)
        assert pdf.status_code == 200
        (SHOTS / "report.pdf").write_bytes(pdf.content)
        assert errors == []
        page.close()
