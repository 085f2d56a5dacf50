"""Control characters in client text are a 422 naming the field, on SQLite and PostgreSQL alike
(a NUL used to reach PostgreSQL and fail there as a 500), and nothing is stored."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from authentiq.modelling.synthetic import SyntheticItem
from tests.conftest import files_of


@pytest.mark.parametrize("field,value", [("client_ref", "sku\x00-1"), ("brand", "Castellan\x1b[2J"),
                                         ("model", "Riva\x08")])
def test_control_characters_in_form_fields_are_refused(client: TestClient, genuine_item: SyntheticItem,
                                                       field: str, value: str) -> None:
    data = {"brand": genuine_item.brand, "model": genuine_item.model, field: value}
    r = client.post("/v1/inspections", files=files_of(genuine_item), data=data)
    assert r.status_code == 422 and r.json()["type"].endswith("/invalid-field"), r.text
    assert r.json()["field"] == field and "control character" in r.json()["detail"]
    assert client.get("/v1/reports").json()["total"] == 0


def test_control_characters_in_reviews_and_filters_are_refused(client: TestClient,
                                                               genuine_item: SyntheticItem) -> None:
    rid = client.post("/v1/inspections", files=files_of(genuine_item),
                      data={"brand": genuine_item.brand, "model": genuine_item.model}).json()["id"]
    for body in ({"reason": "fine\x00"}, {"reason": "fine", "note": "Ana\x00"}):
        r = client.post(f"/v1/reports/{rid}/reviews",
                        json={"decision": "confirm", "expected_version": 0, **body})
        assert r.status_code == 422 and r.json()["type"].endswith("/invalid-field"), r.text
    ok = client.post(f"/v1/reports/{rid}/reviews", json={
        "decision": "confirm", "expected_version": 0, "reason": "two lines:\nboth fine\tok"})
    assert ok.status_code == 201 and ok.json()["reason"] == "two lines:\nboth fine\tok"
    for name in ("client_ref", "brand", "model", "key_id"):
        r = client.get("/v1/reports", params={name: "x\x00y"})
        assert r.status_code == 422 and r.json()["field"] == name, r.text
    r = client.post("/v1/references", files=files_of(genuine_item), data={
        "brand": genuine_item.brand, "model": genuine_item.model, "notes": "a\nb", "source": "x\x00"})
    assert r.status_code == 422 and r.json()["field"] == "source"
    r = client.put("/v1/products/Castellan/Ri%00va", json={"thresholds": {}})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.text
