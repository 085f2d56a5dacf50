"""Tenants through the real app over HTTP, on the run's database (SQLite or PostgreSQL): a key
sees its own tenant's reports, files, PDFs, QR codes, CSV rows, jobs and deliveries, and another
tenant's id answers exactly like an unknown one; auditors see every tenant; idempotency keys are
per tenant; redeliveries go to the key's current webhook; the CLI."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from authentiq.api.app import create_app
from authentiq.cli import main
from authentiq.modelling.synthetic import SyntheticItem
from authentiq.settings import Settings
from authentiq.storage.keys import create_key
from authentiq.storage.tenants import create_tenant
from authentiq.storage.webhooks import set_webhook
from benchmarks.faults import WebhookReceiver
from tests.conftest import allow_classifier_only, files_of, make_settings
from tests.services.test_jobs import FAST, finished, wait


@dataclass
class Tenancy:
    client: TestClient
    keys: dict[str, str]  # name → key
    ids: dict[str, str]  # name → key id

    def h(self, name: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[name]}


KEYS = {  # name: (tenant, scopes)
    "a-submit": ("market-a", ["submit"]), "a-submit-2": ("market-a", ["submit"]),
    "a-review": ("market-a", ["review"]), "a-admin": ("market-a", ["admin"]),
    "b-submit": ("market-b", ["submit"]), "b-review": ("market-b", ["review"]),
    "b-admin": ("market-b", ["admin"]), "auditor": ("default", ["auditor"]),
}


@pytest.fixture
def tenancy(tmp_path: Path) -> Iterator[Tenancy]:
    with TestClient(create_app(make_settings(tmp_path, **FAST))) as client:
        allow_classifier_only(client)  # while the API is still open
        engine = client.app.state.services.store.engine  # type: ignore[attr-defined]
        create_tenant(engine, "market-a", "Marketplace A")
        create_tenant(engine, "market-b")
        keys, ids = {}, {}
        for name, (tenant, scopes) in KEYS.items():
            row, keys[name] = create_key(engine, name, scopes, "10000/minute", tenant=tenant)
            ids[name] = row.id
        client.app.state.services.keys._checked = float("-inf")  # type: ignore[attr-defined]
        yield Tenancy(client, keys, ids)


def inspect(t: Tenancy, item: SyntheticItem, key: str, **headers: str) -> Any:
    return t.client.post("/v1/inspections", files=files_of(item), headers={**t.h(key), **headers},
                         data={"brand": item.brand, "model": item.model, "client_ref": "sku-1"})


def not_found_alike(got: Any, unknown: Any, real_id: str, fake_id: str) -> None:
    """Another tenant's item answers exactly as an unknown id: status, type, detail."""
    assert got.status_code == unknown.status_code == 404, (got.text, unknown.text)
    assert got.headers["content-type"] == unknown.headers["content-type"] == "application/problem+json"
    mine, other = got.json(), unknown.json()
    assert mine["type"] == other["type"]
    assert mine["detail"].replace(real_id, "<id>") == other["detail"].replace(fake_id, "<id>")


def test_reports_and_their_files_are_the_tenants_own(tenancy: Tenancy,
                                                     genuine_item: SyntheticItem) -> None:
    t, c = tenancy, tenancy.client
    report = inspect(t, genuine_item, "a-submit").json()
    rid, fake = report["id"], uuid.uuid4().hex
    assert "tenant" not in str(report.keys())  # never in the customer-facing JSON
    view = next(iter(report["links"]["views"]))
    cls = report["heatmaps"]["classes"][0]
    share = c.post(f"/v1/reports/{rid}/share-links", headers=t.h("a-submit"))
    assert share.status_code == 201, share.text
    urls = ["/v1/reports/{}", "/v1/reports/{}.pdf", f"/v1/reports/{{}}/views/{view}",
            f"/v1/reports/{{}}/heatmaps/{cls}/overview", "/v1/reports/{}/qr.svg",
            f"/v1/reports/{{}}/share-links/{share.json()['id']}/qr.svg"]
    for url in urls:
        assert c.get(url.format(rid), headers=t.h("a-submit-2")).status_code == 200, url  # same tenant
        assert c.get(url.format(rid), headers=t.h("auditor")).status_code == 200, url
        for outsider in ("b-submit", "b-review", "b-admin"):
            not_found_alike(c.get(url.format(rid), headers=t.h(outsider)),
                            c.get(url.format(fake), headers=t.h(outsider)), rid, fake)
    assert c.post(f"/v1/reports/{rid}/share-links", headers=t.h("b-submit")).status_code == 404

    # Listing and CSV: the caller's tenant only; an auditor sees every tenant.
    inspect(t, genuine_item, "b-submit")
    assert c.get("/v1/reports", headers=t.h("a-review")).json()["total"] == 1
    assert c.get("/v1/reports", headers=t.h("a-admin")).json()["total"] == 1
    b_listed = c.get("/v1/reports", headers=t.h("b-review")).json()
    assert b_listed["total"] == 1 and b_listed["items"][0]["id"] != rid
    assert c.get("/v1/reports", headers=t.h("auditor")).json()["total"] == 2
    assert rid in c.get("/v1/reports.csv", headers=t.h("a-review")).text
    assert rid not in c.get("/v1/reports.csv", headers=t.h("b-review")).text
    assert len(c.get("/v1/reports.csv", headers=t.h("auditor")).text.strip().splitlines()) == 3

    # Reviews: another tenant's reviewer cannot find the report; the auditor can review it.
    review = {"decision": "confirm", "reason": "checked", "expected_version": 0}
    not_found_alike(c.post(f"/v1/reports/{rid}/reviews", json=review, headers=t.h("b-review")),
                    c.post(f"/v1/reports/{fake}/reviews", json=review, headers=t.h("b-review")),
                    rid, fake)
    done = c.post(f"/v1/reports/{rid}/reviews", json=review, headers=t.h("auditor"))
    assert done.status_code == 201 and done.json()["key_id"] == t.ids["auditor"]
    assert c.get("/v1/reports", headers=t.h("auditor")).status_code == 200
    assert c.post("/v1/inspections", headers=t.h("auditor")).status_code == 403  # review, not submit


def test_jobs_and_deliveries_are_the_tenants_own(tenancy: Tenancy, genuine_item: SyntheticItem) -> None:
    t, c = tenancy, tenancy.client
    engine = c.app.state.services.store.engine  # type: ignore[attr-defined]
    receiver = WebhookReceiver()
    try:
        set_webhook(engine, t.ids["a-submit"], receiver.url)
        job = c.post("/v1/inspections?mode=async", files=files_of(genuine_item), headers=t.h("a-submit"),
                     data={"brand": genuine_item.brand, "model": genuine_item.model}).json()
        assert finished(c, job["id"], t.h("a-submit-2"))["status"] == "succeeded"  # same tenant
        wait(receiver.accepted)
        [delivery] = c.get("/v1/webhooks/deliveries", headers=t.h("a-submit-2")).json()["items"]
        fake = uuid.uuid4().hex
        not_found_alike(c.get(f"/v1/jobs/{job['id']}", headers=t.h("b-submit")),
                        c.get(f"/v1/jobs/{fake}", headers=t.h("b-submit")), job["id"], fake)
        assert c.get("/v1/webhooks/deliveries", headers=t.h("b-submit")).json()["items"] == []
        assert c.get("/v1/webhooks/deliveries", headers=t.h("b-admin")).json()["items"] == []
        assert len(c.get("/v1/webhooks/deliveries", headers=t.h("auditor")).json()["items"]) == 1
        redeliver = "/v1/webhooks/deliveries/{}/redeliver"
        not_found_alike(c.post(redeliver.format(delivery["id"]), headers=t.h("b-submit")),
                        c.post(redeliver.format(fake), headers=t.h("b-submit")), delivery["id"], fake)
        assert len(receiver.received) == 1  # the outsider's redelivery sent nothing
        assert c.get(f"/v1/reports/{job['id']}", headers=t.h("b-submit")).status_code == 404
    finally:
        receiver.close()


def test_redelivery_goes_to_the_keys_current_webhook(tenancy: Tenancy,
                                                     genuine_item: SyntheticItem) -> None:
    """Finding 12: a client that moved its endpoint gets the redelivery at the new one."""
    t, c = tenancy, tenancy.client
    engine = c.app.state.services.store.engine  # type: ignore[attr-defined]
    old, new = WebhookReceiver(), WebhookReceiver()
    try:
        set_webhook(engine, t.ids["a-submit"], old.url)
        job = c.post("/v1/inspections?mode=async", files=files_of(genuine_item), headers=t.h("a-submit"),
                     data={"brand": genuine_item.brand, "model": genuine_item.model}).json()
        finished(c, job["id"], t.h("a-submit"))
        wait(old.accepted)
        [delivery] = c.get("/v1/webhooks/deliveries", headers=t.h("a-submit")).json()["items"]
        assert delivery["url"] == old.url

        set_webhook(engine, t.ids["a-submit"], new.url)  # the client moved its endpoint
        again = c.post(f"/v1/webhooks/deliveries/{delivery['id']}/redeliver", headers=t.h("a-submit"))
        assert again.status_code == 202
        wait(new.accepted)
        assert new.accepted()[0].delivery_id == delivery["id"] and len(old.received) == 1
        logged = c.get("/v1/webhooks/deliveries", headers=t.h("a-submit")).json()["items"][0]
        wait(lambda: c.get("/v1/webhooks/deliveries", headers=t.h("a-submit")).json()
             ["items"][0]["status"] == "delivered")
        logged = c.get("/v1/webhooks/deliveries", headers=t.h("a-submit")).json()["items"][0]
        assert logged["url"] == new.url and [a["url"] for a in logged["log"]] == [old.url, new.url]
    finally:
        old.close()
        new.close()


def test_idempotency_keys_are_per_tenant(tenancy: Tenancy, genuine_item: SyntheticItem) -> None:
    """Finding 6: one tenant's key neither blocks another's nor replays another's report."""
    t = tenancy
    first = inspect(t, genuine_item, "a-submit", **{"Idempotency-Key": "order-1"})
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    # Another tenant, the same key and the exact same body: its own new report, not A's.
    other = inspect(t, genuine_item, "b-submit", **{"Idempotency-Key": "order-1"})
    assert other.status_code == 201 and "idempotent-replayed" not in other.headers
    assert other.json()["id"] != first.json()["id"]
    # Within a tenant the key is shared: another key of A replays A's report.
    again = inspect(t, genuine_item, "a-submit-2", **{"Idempotency-Key": "order-1"})
    assert again.headers.get("idempotent-replayed") == "true" and again.json()["id"] == first.json()["id"]
    # And a different body under B's key is B's own conflict, not A's.
    t.client.post("/v1/inspections", files=files_of(genuine_item), headers={
        **t.h("b-submit"), "Idempotency-Key": "order-2"},
        data={"brand": genuine_item.brand, "model": genuine_item.model})
    reused = t.client.post("/v1/inspections", files=files_of(genuine_item), headers={
        **t.h("b-submit"), "Idempotency-Key": "order-2"},
        data={"brand": genuine_item.brand, "model": genuine_item.model, "client_ref": "x"})
    assert reused.status_code == 422 and reused.json()["type"].endswith("/idempotency-key-reused")
    fresh = inspect(t, genuine_item, "a-submit", **{"Idempotency-Key": "order-2"})
    assert fresh.status_code == 201 and "idempotent-replayed" not in fresh.headers


def test_tenants_cli(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    db = ["--database-url", settings.database_url]
    assert main(["tenants", "create", "store-chain-1", "--name", "Store chain", *db]) == 0
    assert "tenant store-chain-1 (Store chain) created" in capsys.readouterr().out
    assert main(["tenants", "create", "store-chain-1", *db]) == 2
    assert "exists already" in capsys.readouterr().err
    assert main(["tenants", "create", "Bad Name!", *db]) == 2
    assert "tenant id" in capsys.readouterr().err
    assert main(["keys", "create", "kiosk-1", "--scopes", "submit", "--tenant", "store-chain-1", *db]) == 0
    out = capsys.readouterr().out
    assert "tenant store-chain-1" in out
    assert main(["keys", "create", "kiosk-2", "--scopes", "submit", "--tenant", "nowhere", *db]) == 2
    assert "no tenant 'nowhere'" in capsys.readouterr().err
    assert main(["tenants", "list", *db]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert any(line.startswith("default ") for line in listed)
    assert any(line.startswith("store-chain-1 ") and line.endswith("  1 active key") for line in listed)
    assert main(["keys", "list", *db]) == 0 and "store-chain-1" in capsys.readouterr().out
