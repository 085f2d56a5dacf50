"""Customer share links through the real app: built from AUTHENTIQ_PUBLIC_BASE_URL (never the
Host header), signed, expiring, revocable by a review key of the report's tenant, opening a
summary with nothing internal on it; the QR code encodes exactly the link."""

from __future__ import annotations

import dataclasses
import io
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import segno
from fastapi.testclient import TestClient

from authentiq.api.app import create_app
from authentiq.modelling.synthetic import SyntheticItem
from authentiq.storage.keys import create_key
from authentiq.storage.tenants import create_tenant
from tests.conftest import allow_classifier_only, files_of, make_settings

BASE = "https://verify.example.com/aq"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(tmp_path, public_base_url=BASE + "/"))) as c:
        allow_classifier_only(c)
        yield c


def keys(client: TestClient) -> dict[str, dict[str, str]]:
    engine = client.app.state.services.store.engine  # type: ignore[attr-defined]
    create_tenant(engine, "other")
    made = {"submit": create_key(engine, "kiosk-milano", ["submit"])[1],
            "review": create_key(engine, "auditor-ana", ["review"])[1],
            "outsider": create_key(engine, "other-review", ["review"], tenant="other")[1]}
    client.app.state.services.keys._checked = float("-inf")  # type: ignore[attr-defined]
    return {name: {"X-API-Key": key} for name, key in made.items()}


def qr_of(url: str) -> str:
    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="svg", scale=6, border=2, xmldecl=False,
                                     title="Report")
    return buf.getvalue().decode()


def path_of(url: str) -> str:
    return url.removeprefix(BASE)


def test_a_share_link_opens_the_customer_summary_only(client: TestClient,
                                                     genuine_item: SyntheticItem) -> None:
    k = keys(client)
    report = client.post("/v1/inspections", files=files_of(genuine_item), headers=k["submit"], data={
        "brand": genuine_item.brand, "model": genuine_item.model, "client_ref": "SKU-SECRET-9"}).json()
    rid = report["id"]
    review = client.post(f"/v1/reports/{rid}/reviews", headers=k["review"], json={
        "decision": "confirm", "reason": "internal: matched under the loupe", "note": "Ana R.",
        "expected_version": 0})
    assert review.status_code == 201
    made = client.post(f"/v1/reports/{rid}/share-links", headers={**k["submit"], "Host": "evil.example"})
    assert made.status_code == 201, made.text
    link = made.json()
    assert link["url"].startswith(f"{BASE}/r/") and "evil" not in link["url"]  # not the Host header
    assert link["live"] and link["revoked_at"] is None
    qr = client.get(link["qr"], headers={**k["submit"], "Host": "evil.example"})
    assert qr.headers["content-type"] == "image/svg+xml"
    assert qr.text == qr_of(link["url"]).replace('<title>Report</title>', f"<title>Report {rid}</title>")
    assert client.get(f"/v1/reports/{rid}/qr.svg", headers=k["submit"]).text == qr.text  # newest live

    page = client.get(path_of(link["url"]))  # no key, no cookie: the token is the authority
    assert page.status_code == 200 and page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    html = page.text
    assert "AUTHENTIC" in html and "confirmed by a human reviewer" in html
    for internal in ("SKU-SECRET-9", "auditor-ana", "Ana R.", "matched under the loupe", "key ",
                     report["submitted_by"]["key_id"], "default", "kiosk-milano", "Sign out"):
        assert internal not in html, internal
    for reason in report["reasons"]:
        if reason["code"] != "automated_decision":
            assert reason["detail"].replace("'", "&#39;") in html
    view = next(iter(report["links"]["views"]))
    photo = client.get(f"{path_of(link['url'])}/views/{view}")
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    cls = report["heatmaps"]["classes"][0]
    heat = client.get(f"{path_of(link['url'])}/heatmaps/{cls}/{view}")
    assert heat.status_code == 200 and heat.headers["content-type"] == "image/webp"
    assert "/r/" in html and f"/v1/reports/{rid}" not in html  # images through the link only
    assert client.get(f"/reports/{rid}", follow_redirects=False).status_code == 303  # auditor page: login


def test_forged_expired_and_revoked_links_open_nothing(client: TestClient,
                                                       genuine_item: SyntheticItem) -> None:
    k = keys(client)
    rid = client.post("/v1/inspections", files=files_of(genuine_item), headers=k["submit"],
                      data={"brand": genuine_item.brand, "model": genuine_item.model}).json()["id"]
    link = client.post(f"/v1/reports/{rid}/share-links", headers=k["submit"]).json()
    path = path_of(link["url"])
    assert client.get(path).status_code == 200
    link_id, expires, mac = path.removeprefix("/r/").split(".")
    forged = [f"/r/{link_id}.{int(expires) + 86400}.{mac}",  # a longer life, same signature
              f"/r/{link_id}.{expires}.{'0' * 32}", f"/r/{'0' * 32}.{expires}.{mac}", "/r/nonsense"]
    for bad in forged:
        r = client.get(bad)
        assert r.status_code == 404 and "not available" in r.text, bad
        assert client.get(bad + "/views/overall").status_code == 404

    # Revoking needs review in the report's tenant; afterwards the link opens nothing.
    url = f"/v1/reports/{rid}/share-links/{link['id']}"
    assert client.delete(url, headers=k["submit"]).status_code == 403
    assert client.delete(url, headers=k["outsider"]).status_code == 404
    assert client.get(f"/v1/reports/{rid}/share-links", headers=k["outsider"]).status_code == 404
    revoked = client.delete(url, headers=k["review"])
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] and not revoked.json()["live"]
    assert client.get(path).status_code == 404
    assert client.get(f"{path}/views/overall").status_code == 404
    assert client.get(f"/v1/reports/{rid}/qr.svg", headers=k["submit"]).status_code == 404
    listed = client.get(f"/v1/reports/{rid}/share-links", headers=k["review"]).json()["items"]
    assert [(i["id"], i["live"]) for i in listed] == [(link["id"], False)]

    # Expiry is part of what is signed: a link past it opens nothing, whatever its row says.
    services: Any = client.app.state.services  # type: ignore[attr-defined]
    # Expiry counts from the whole second the link was made in, so a 3 s link has 2-3 s to live.
    services.share_links = dataclasses.replace(services.share_links, lifetime=timedelta(seconds=3))
    short = client.post(f"/v1/reports/{rid}/share-links", headers=k["submit"]).json()
    assert client.get(path_of(short["url"])).status_code == 200
    time.sleep(3.1)
    assert client.get(path_of(short["url"])).status_code == 404


def test_every_reader_of_the_report_gets_its_qr_codes(client: TestClient,
                                                     genuine_item: SyntheticItem) -> None:
    """Submit, review and auditor keys and a review sign-in session alike (issue 23: a review
    key was reported to get 403 here); another tenant's review key sees nothing (404)."""
    k = keys(client)
    engine = client.app.state.services.store.engine  # type: ignore[attr-defined]
    k["auditor"] = {"X-API-Key": create_key(engine, "head-office", ["auditor"])[1]}
    report = client.post("/v1/inspections", files=files_of(genuine_item), headers=k["submit"], data={
        "brand": genuine_item.brand, "model": genuine_item.model}).json()
    rid = report["id"]
    link = client.post(f"/v1/reports/{rid}/share-links", headers=k["review"]).json()
    for who in ("submit", "review", "auditor"):
        for url in (link["qr"], f"/v1/reports/{rid}/qr.svg"):
            got = client.get(url, headers=k[who])
            assert got.status_code == 200 and got.headers["content-type"] == "image/svg+xml", (who, url)
    assert client.get(link["qr"], headers=k["outsider"]).status_code == 404
    signed_in = client.post("/login", data={"key": k["review"]["X-API-Key"], "next": "/review"},
                            headers={"Origin": "http://testserver"}, follow_redirects=False)
    assert signed_in.status_code == 303
    cookie = signed_in.headers["set-cookie"].split(";", 1)[0]  # Secure (an https base URL): sent by hand
    client.cookies.clear()
    assert client.get(f"/v1/reports/{rid}/qr.svg", headers={"Cookie": cookie}).status_code == 200


def test_public_base_url_is_validated() -> None:
    from authentiq.settings import Settings

    assert Settings(public_base_url="https://aq.example.com/").public_base_url == "https://aq.example.com"
    for bad in ("aq.example.com", "ftp://aq.example.com", "https://aq.example.com/?x=1"):
        with pytest.raises(ValueError, match="public_base_url"):
            Settings(public_base_url=bad)
