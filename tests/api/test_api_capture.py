"""Capture support through the real app: views guide, instant quality check, QR code, and
Idempotency-Key on inspections (real HTTP for the concurrent case)."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from PIL import Image, ImageFilter

from authentiq.modelling.synthetic import SyntheticItem
from tests.conftest import files_of, live_server, make_settings


def form(item: SyntheticItem) -> dict[str, str]:
    return {"brand": item.brand, "model": item.model}


def test_views_guide_and_quality_check(client: TestClient, genuine_item: SyntheticItem) -> None:
    guide = client.get("/v1/views").json()
    assert [v["name"] for v in guide["views"]][:2] == ["overall", "logo"] and guide["max_long_edge"] == 1600
    assert all(v["hint"] for v in guide["views"]) and not guide["views"][-1]["required"]
    good = client.post("/v1/quality", data={"view": "logo"},
                       files={"photo": ("logo.jpg", genuine_item.views["logo"], "image/jpeg")})
    assert good.status_code == 200 and good.json()["usable"] and good.json()["view"] == "logo"
    img = Image.open(io.BytesIO(genuine_item.views["label"])).filter(ImageFilter.GaussianBlur(6))
    buf = io.BytesIO()
    img.save(buf, "JPEG")
    bad = client.post("/v1/quality", data={"view": "label"}, files={"photo": ("l.jpg", buf.getvalue(), "image/jpeg")})
    assert bad.json()["usable"] is False and bad.json()["reason"] == "blurred" and bad.json()["message"]
    for data, files, status in [
        ({"view": "sole"}, {"photo": ("a.jpg", genuine_item.views["logo"], "image/jpeg")}, 422),
        ({"view": "logo"}, {"photo": ("a.gif", b"GIF89a....", "image/gif")}, 415),
        ({"view": "logo"}, {"photo": ("a.jpg", b"", "image/jpeg")}, 422),
        ({"view": "logo"}, {"picture": ("a.jpg", genuine_item.views["logo"], "image/jpeg")}, 422),
    ]:
        r = client.post("/v1/quality", data=data, files=files)
        assert r.status_code == status and r.headers["content-type"] == "application/problem+json", (data, r.text)
    assert client.post("/v1/quality", content=b"{}", headers={"content-type": "application/json"}).status_code == 415


def test_an_overcompressed_photo_is_retaken_at_the_counter_and_in_the_report(
        client: TestClient, genuine_item: SyntheticItem) -> None:
    """A view re-saved at JPEG quality 4 (a messaging app's copy of a copy): /v1/quality says
    so at once, and an inspection asks for it again instead of judging its blocks."""
    buf = io.BytesIO()
    Image.open(io.BytesIO(genuine_item.views["hardware"])).save(buf, "JPEG", quality=4)
    quick = client.post("/v1/quality", data={"view": "hardware"},
                        files={"photo": ("h.jpg", buf.getvalue(), "image/jpeg")}).json()
    assert quick["usable"] is False and quick["reason"] == "overcompressed"
    assert quick["jpeg_quality"] == 4 and "about 4 of 100" in quick["message"]
    files = [(v, f) if v != "hardware" else (v, ("h.jpg", buf.getvalue(), "image/jpeg"))
             for v, f in files_of(genuine_item)]
    report = client.post("/v1/inspections", files=files, data=form(genuine_item)).json()
    assert report["schema_version"] == "7" and report["verdict"] == "inconclusive"
    assert {"view": "hardware", "reason": "overcompressed"} in [
        {"view": r["view"], "reason": r["reason"]} for r in report["retake"]]
    qualities = {v["view"]: v["jpeg_quality"] for v in report["views"]}
    assert qualities["hardware"] == 4 and all(q is not None and q >= 50 for v, q in qualities.items()
                                              if v != "hardware")


def test_idempotency_key_replays_refuses_other_bodies(client: TestClient, genuine_item: SyntheticItem) -> None:
    key = {"Idempotency-Key": "sku-77-attempt-1"}
    first = client.post("/v1/inspections", files=files_of(genuine_item), data=form(genuine_item), headers=key)
    again = client.post("/v1/inspections", files=files_of(genuine_item), data=form(genuine_item), headers=key)
    assert first.status_code == 201 and again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert again.json()["id"] == first.json()["id"]
    assert client.get("/v1/reports").json()["total"] == 1
    other = client.post("/v1/inspections", files=files_of(genuine_item, ["overall", "logo", "stitching",
                                                                         "hardware", "label"]),
                        data=form(genuine_item), headers=key)
    assert other.status_code == 422 and other.json()["type"].endswith("/idempotency-key-reused")
    assert client.post("/v1/inspections", files=files_of(genuine_item), data=form(genuine_item),
                       headers={"Idempotency-Key": "x" * 300}).status_code == 422
    # A failed first attempt releases its key: the retry runs.
    bad = client.post("/v1/inspections", files=files_of(genuine_item), data={**form(genuine_item), "model": "Nope"},
                      headers={"Idempotency-Key": "k2"})
    assert bad.status_code == 422
    assert client.get("/v1/reports").json()["total"] == 1


def test_concurrent_duplicates_run_once(tmp_path: Path, genuine_item: SyntheticItem) -> None:
    with live_server(make_settings(tmp_path)) as server:
        files = files_of(genuine_item)

        async def send(client: httpx.AsyncClient) -> httpx.Response:
            return await client.post("/v1/inspections", files=files, data=form(genuine_item),
                                     headers={"Idempotency-Key": "same-retry"})

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
                return await asyncio.gather(*(send(client) for _ in range(5)))

        answers = asyncio.run(burst())
        assert {r.status_code for r in answers} == {201}
        assert len({r.json()["id"] for r in answers}) == 1
        assert sum(r.headers.get("idempotent-replayed") == "true" for r in answers) == 4
        assert httpx.get(server.url + "/v1/reports").json()["total"] == 1


def test_a_dead_workers_idempotency_claim_is_taken_over_without_a_second_report(
        client: TestClient, genuine_item: SyntheticItem) -> None:
    """A worker killed mid-request leaves its claim behind; a retry past the staleness limit takes
    it over under the claim's reserved report id: made once, whether or not the dead worker had
    already stored it."""
    from sqlalchemy import update
    from sqlmodel import Session, col

    from authentiq.storage.idempotency import IdempotencyRow

    engine = client.app.state.services.store.engine  # type: ignore[attr-defined]
    key = {"Idempotency-Key": "killed-mid-request"}

    def dead_worker_left(result_id: str) -> None:
        with Session(engine) as session:
            session.execute(update(IdempotencyRow).where(
                col(IdempotencyRow.key) == "default:inspections:killed-mid-request").values(
                result_id=result_id, created_at=datetime.now(UTC) - timedelta(hours=1)))
            session.commit()

    stored = client.post("/v1/inspections", files=files_of(genuine_item), data=form(genuine_item),
                         headers=key).json()["id"]
    dead_worker_left(stored)  # killed after storing its report, before marking the claim done
    again = client.post("/v1/inspections", files=files_of(genuine_item), data=form(genuine_item),
                        headers=key)
    assert again.json()["id"] == stored and again.headers["idempotent-replayed"] == "true"

    reserved = "ab" * 16
    dead_worker_left(reserved)  # killed before storing anything under the id it had reserved
    retry = client.post("/v1/inspections", files=files_of(genuine_item), data=form(genuine_item),
                        headers=key)
    assert retry.status_code == 201 and retry.json()["id"] == reserved
    assert "idempotent-replayed" not in retry.headers
    assert client.get("/v1/reports").json()["total"] == 2
