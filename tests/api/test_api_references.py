"""Reference enrolment, search and fused verdicts through the real app (SQLite and PostgreSQL)."""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageFilter

from authentiq.api.app import create_app
from authentiq.contract.model_spec import model_id
from authentiq.modelling.synthetic import SyntheticItem, find_spec, make_item, passes_quality
from authentiq.modelling.synthetic.catalog import Spec
from authentiq.settings import DEFAULT_MODEL, DEFAULT_REFERENCES, Settings
from tests.conftest import files_of, make_settings

AMANDE, ORSAY = find_spec("Verlaine", "Amande"), find_spec("Verlaine", "Orsay")


@functools.cache
def genuine(seed: int, spec: Spec = AMANDE) -> SyntheticItem:
    """A genuine item whose photos all pass the quality check (the first from this seed on)."""
    seed = 41_000_000 + seed * 100
    while True:
        item = make_item(seed, counterfeit=False, spec=spec)
        if passes_quality(item.views):
            return item
        seed += 1


def enrol(client: TestClient, item: SyntheticItem, **form: str) -> dict:  # type: ignore[type-arg]
    data = {"brand": item.brand, "model": item.model, "source": "test boutique", **form}
    return client.post("/v1/references", files=files_of(item), data=data)  # type: ignore[return-value]


def inspect(client: TestClient, item: SyntheticItem, brand: str | None = None,
            model: str | None = None) -> dict:  # type: ignore[type-arg]
    r = client.post("/v1/inspections", files=files_of(item),
                    data={"brand": brand or item.brand, "model": model or item.model})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def codes(report: dict) -> list[str]:  # type: ignore[type-arg]
    return [r["code"] for r in report["reasons"]]


def blurred(data: bytes) -> bytes:
    img = Image.open(io.BytesIO(data)).filter(ImageFilter.GaussianBlur(8))
    buf = io.BytesIO()
    img.save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture
def app_client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(tmp_path, database_url=database_url))) as c:
        yield c


def test_enrolled_references_are_searched_and_fused_into_the_verdict(app_client: TestClient) -> None:
    client = app_client
    for i in range(3):
        r = enrol(client, genuine(i))
        assert r.status_code == 201, r.text
        ref = r.json()
        assert ref["brand"] == "Verlaine" and ref["warnings"] == [] and ref["source"] == "test boutique"
        assert ref["embedded_with"] == [model_id(DEFAULT_MODEL)]
        assert client.get(ref["links"]["self"]).json()["embedded_with"] == ref["embedded_with"]
        assert all(v["usable"] for v in ref["views"]) and len(ref["views"]) == 6
        photo = client.get(ref["links"]["views"]["logo"])
        assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    for i in range(2):
        assert enrol(client, genuine(10 + i, ORSAY)).status_code == 201

    report = inspect(client, genuine(100))
    refs = report["references"]
    assert refs["claimed"]["count"] == 3 and len(refs["claimed"]["matches"]) == 3
    assert refs["claimed"]["best"] >= report["fusion"]["thresholds"]["min_similarity"]
    assert refs["other_products"][0]["model"] == "Orsay"
    assert report["fusion"]["applied"] and report["verdict"] == "authentic"
    assert {"classifier", "reference_similarity", "score_authentic"} <= set(codes(report))
    assert 0.5 < report["confidence"] <= 1 and report["timings"]["reference_search_ms"] >= 0
    stored = client.get(report["links"]["self"]).json()
    assert stored["references"] == refs and stored["fusion"] == report["fusion"]

    # A genuine Orsay claimed as an Amande: the classifier cannot tell, the references can.
    wrong = inspect(client, genuine(101, ORSAY), model="Amande")
    assert wrong["verdict"] != "authentic" and "model_mismatch" in codes(wrong)
    mismatch = next(r for r in wrong["reasons"] if r["code"] == "model_mismatch")
    assert mismatch["model"] == "Orsay"

    listed = client.get("/v1/references", params={"model": "amande", "limit": 2}).json()
    assert listed["count"] == 2 and listed["next_cursor"] and listed["total"] == 3  # as /v1/reports
    rest = client.get("/v1/references", params={"model": "amande", "cursor": listed["next_cursor"]}).json()
    assert rest["count"] == 1 and rest["next_cursor"] is None and rest["total"] == 3
    everything = client.get("/v1/references", params={"limit": 500}).json()
    assert everything["total"] == everything["count"] > 3
    assert client.get("/v1/references", params={"brand": "castellan"}).json()["total"] == 0
    assert client.get("/v1/references", params={"cursor": "garbage!"}).status_code == 422


def test_enrolment_refuses_bad_input_and_leaves_nothing(client: TestClient, settings: Settings) -> None:
    ref_blobs = settings.blob_dir / "references"

    def nothing_new(before: int) -> None:
        assert client.get("/v1/references", params={"include_deleted": True}).json()["count"] == before
        assert len([p for p in ref_blobs.rglob("*") if p.is_file()]) == before * 6

    item = genuine(0)
    r = enrol(client, item, brand="Maison Inconnue")
    assert r.status_code == 422 and r.json()["type"].endswith("/unknown-product")
    assert "PUT /v1/products" in r.json()["detail"]
    nothing_new(0)

    bad = [(v, (f"{v}.jpg", blurred(b) if v == "label" else b, "image/jpeg")) for v, b in item.views.items()]
    r = client.post("/v1/references", files=bad, data={"brand": item.brand, "model": item.model})
    assert r.status_code == 422 and r.json()["type"].endswith("/reference-rejected")
    assert r.json()["views"] == {"label": "blurred"} and "label (blurred" in r.json()["detail"]
    nothing_new(0)

    # the view gate guards the reference database too: a photo in the wrong slot is refused
    other = genuine(1).views["overall"]  # another item's overall photo, in the interior slot
    swapped = [(v, (f"{v}.jpg", other if v == "interior" else b, "image/jpeg"))
               for v, b in item.views.items()]
    r = client.post("/v1/references", files=swapped, data={"brand": item.brand, "model": item.model})
    assert r.status_code == 422, r.text
    assert list(r.json()["views"].items()) in ([("interior", "wrong_view")], [("interior", "not_a_product")])
    assert "Photograph the interior as the guide shows" in r.json()["detail"]
    nothing_new(0)

    first = enrol(client, item).json()
    r = enrol(client, item)
    assert r.status_code == 409 and r.json()["reference_id"] == first["id"]
    assert r.headers["content-type"] == "application/problem+json"
    nothing_new(1)

    fake = make_item(41_000_500, defects=["stitch_pitch", "serial_format", "lining"], spec=AMANDE)
    r = enrol(client, fake)
    assert r.status_code == 201
    assert [w["code"] for w in r.json()["warnings"]][:1] == ["counterfeit_looking"]

    r = client.post("/v1/references", files=files_of(item), data={"model": item.model})
    assert r.status_code == 422 and r.json()["type"].endswith("/invalid-field")
    assert client.get("/v1/references/nope").status_code == 404


def test_delete_is_soft_and_reports_keep_their_copy(client: TestClient) -> None:
    ref = enrol(client, genuine(0)).json()
    before = inspect(client, genuine(100))
    assert before["references"]["claimed"]["matches"][0]["id"] == ref["id"]

    r = client.delete(f"/v1/references/{ref['id']}")
    assert r.status_code == 422  # a reason is required
    r = client.delete(f"/v1/references/{ref['id']}", params={"reason": "found to be a replica"})
    assert r.status_code == 200 and r.json()["deleted_reason"] == "found to be a replica"
    assert r.json()["deleted_at"]
    assert client.delete("/v1/references/nope", params={"reason": "xyz"}).status_code == 404

    kept = client.get(before["links"]["self"]).json()
    assert kept["references"]["claimed"]["matches"][0]["id"] == ref["id"]
    after = inspect(client, genuine(100))
    assert after["references"]["claimed"]["count"] == 0 and "no_references" in codes(after)
    assert not after["fusion"]["applied"]
    assert client.get("/v1/references").json()["count"] == 0
    assert client.get("/v1/references", params={"include_deleted": True}).json()["count"] == 1
    assert client.get(f"/v1/references/{ref['id']}").json()["deleted_at"]


def test_products_and_threshold_overrides(client: TestClient) -> None:
    products = client.get("/v1/products").json()
    assert products["count"] == 6 and all(p["trained_on"] for p in products["items"])
    for i in range(2):
        enrol(client, genuine(i))
    item = genuine(100)
    assert inspect(client, item)["verdict"] == "authentic"

    r = client.put("/v1/products/Verlaine/Amande", json={"thresholds": {"min_similarity": 0.9999}})
    assert r.status_code == 200 and r.json()["overrides"] == {"min_similarity": 0.9999}
    assert r.json()["references"] == 2
    strict = inspect(client, item)
    assert strict["verdict"] == "inconclusive" and "below_min_similarity" in codes(strict)
    assert strict["fusion"]["thresholds"]["overridden"] == ["min_similarity"]

    bad = client.put("/v1/products/Verlaine/Amande",
                     json={"thresholds": {"authentic_below": 0.9, "counterfeit_above": 0.1}})
    assert bad.status_code == 422
    assert client.put("/v1/products/Verlaine/Amande", json={"thresholds": {"typo": 1}}).status_code == 422

    # A product the model was not trained on: created explicitly, then served with references.
    r = client.put("/v1/products/Maison Neuve/Sac Un", json={})
    assert r.status_code == 200 and not r.json()["trained_on"]
    new = genuine(50)
    assert enrol(client, new, brand="Maison Neuve", model="Sac Un").status_code == 201
    report = inspect(client, genuine(101), brand="maison neuve", model="sac un")
    assert report["references"]["claimed"]["count"] == 1


def test_shipped_reference_set_is_enrolled_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, reference_seed_dir=DEFAULT_REFERENCES)
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").json()["references"] == 30
        assert {p["references"] for p in client.get("/v1/products").json()["items"]} == {5}
        first = client.get("/v1/references", params={"limit": 1}).json()["items"][0]
        assert first["source"] == "shipped synthetic reference set"
        client.delete(f"/v1/references/{first['id']}", params={"reason": "withdrawn by the team"})
        report = inspect(client, make_item(900_000_004, counterfeit=False))
        assert report["fusion"]["applied"] and report["references"]["claimed"]["count"] >= 4
    with TestClient(create_app(settings)) as client:  # restart: nothing enrolled twice or again
        assert client.get("/readyz").json()["references"] == 29


def test_enrolment_retries_are_idempotent(client: TestClient) -> None:
    item = genuine(0)
    key = {"Idempotency-Key": "enrol-batch-7-item-1"}
    first = client.post("/v1/references", files=files_of(item), headers=key,
                        data={"brand": item.brand, "model": item.model})
    again = client.post("/v1/references", files=files_of(item), headers=key,
                        data={"brand": item.brand, "model": item.model})
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
    other = client.post("/v1/references", files=files_of(genuine(1)), headers=key,
                        data={"brand": item.brand, "model": item.model})
    assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")
