"""Sign-in sessions of the auditor pages through the real app: only a review scope ever rides on
a cookie (an admin key's session cannot call admin endpoints, nor change anything through the
API), form posts from other origins and without the session's CSRF token are refused, sign-out
ends the session on the server, sign-in attempts are rate limited; reviews record the
authenticated key, in the hash chain."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from authentiq.api.app import create_app
from authentiq.modelling.synthetic import SyntheticItem
from authentiq.storage.keys import create_key
from authentiq.storage.reviews import verify_chain
from tests.conftest import allow_classifier_only, files_of, make_settings

SAME = {"Origin": "http://testserver"}  # TestClient's own origin


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(tmp_path, login_rate_limit="5/minute",
                                             public_base_url="https://aq.example.com"))) as c:
        allow_classifier_only(c)
        yield c


def keys(client: TestClient, *scopes: str) -> dict[str, str]:
    engine = client.app.state.services.store.engine  # type: ignore[attr-defined]
    made = {s: create_key(engine, f"{s}-holder", [s])[1] for s in scopes}
    client.app.state.services.keys._checked = float("-inf")  # type: ignore[attr-defined]
    return made


def sign_in(client: TestClient, key: str, **headers: str) -> str:
    r = client.post("/login", data={"key": key, "next": "/review"}, headers=headers or SAME,
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    return r.cookies["aq_session"]


def report_id(client: TestClient, item: SyntheticItem, key: str) -> str:
    r = client.post("/v1/inspections", files=files_of(item), headers={"X-API-Key": key},
                    data={"brand": item.brand, "model": item.model})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{64})"', page)
    assert found, "no CSRF token in the page"
    return found.group(1)


def test_sign_in_keeps_only_a_review_session(client: TestClient) -> None:
    k = keys(client, "review", "submit", "admin")
    r = client.get("/review", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/review"
    assert client.post("/login", data={"key": k["submit"]}, headers=SAME).status_code == 403
    r = client.post("/login", data={"key": k["review"], "next": "https://evil.example/"},
                    headers=SAME, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/review"  # no open redirect
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" in cookie  # https base
    assert k["review"] not in cookie  # a random token, never the key
    assert client.get("/review").status_code == 200
    client.cookies.clear()
    client.cookies.set("aq_session", "forged")
    assert client.get("/review", follow_redirects=False).status_code == 303


def test_an_admin_keys_session_never_authorises_admin_calls(client: TestClient,
                                                            genuine_item: SyntheticItem) -> None:
    """Finding 8: a session carries at most review, and only reads through the API."""
    k = keys(client, "admin", "submit")
    rid = report_id(client, genuine_item, k["submit"])
    client.cookies.set("aq_session", sign_in(client, k["admin"]))
    assert client.get("/review").status_code == 200  # the pages work
    assert client.get(f"/v1/reports/{rid}").status_code == 200  # and their photos' reads
    put = client.put("/v1/products/Castellan/Riva", json={"thresholds": {}})
    assert put.status_code == 401 and put.json()["type"].endswith("/unauthorized")
    refs = client.get("/v1/references")
    assert refs.status_code == 403 and "through a sign-in session" in refs.json()["detail"]
    review = client.post(f"/v1/reports/{rid}/reviews", json={
        "decision": "confirm", "reason": "looks right", "expected_version": 0})
    assert review.status_code == 401  # a review through the API needs the key itself
    assert client.post("/v1/inspections", files=files_of(genuine_item),
                       data={"brand": "Castellan", "model": "Riva"}).status_code == 401
    # The same admin key sent as a header may do all of it.
    assert client.put("/v1/products/Castellan/Riva", json={"thresholds": {}},
                      headers={"X-API-Key": k["admin"]}).status_code == 200


def test_form_posts_need_the_same_origin_and_the_sessions_csrf_token(
        client: TestClient, genuine_item: SyntheticItem) -> None:
    k = keys(client, "review", "submit")
    rid = report_id(client, genuine_item, k["submit"])
    for headers in ({}, {"Origin": "https://evil.example"}, {"Origin": "null"},
                    {"Referer": "https://evil.example/page"}):
        r = client.post("/login", data={"key": k["review"]}, headers=headers, follow_redirects=False)
        assert r.status_code == 403 and r.json()["type"].endswith("/cross-site-request"), headers
    assert client.post("/login", data={"key": k["review"]}, follow_redirects=False,
                       headers={"Referer": "http://testserver/login"}).status_code == 303
    client.cookies.set("aq_session", sign_in(client, k["review"], Origin="https://aq.example.com"))
    page = client.get(f"/reports/{rid}").text
    token = csrf_of(page)
    form = {"decision": "confirm", "reason": "matches", "expected_version": "0"}
    url = f"/reports/{rid}/review"
    cross = client.post(url, data={**form, "csrf": token}, headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    missing = client.post(url, data=form, headers=SAME)
    assert missing.status_code == 403 and "CSRF" in missing.json()["detail"]
    wrong = client.post(url, data={**form, "csrf": "0" * 64}, headers=SAME)
    assert wrong.status_code == 403
    assert client.get(f"/v1/reports/{rid}").json()["review"]["version"] == 0  # nothing recorded
    ok = client.post(url, data={**form, "csrf": token, "note": "Ana at the desk"}, headers=SAME,
                     follow_redirects=False)
    assert ok.status_code == 303
    [entry] = client.get(f"/v1/reports/{rid}").json()["review"]["reviews"]
    assert re.fullmatch(r"review-holder \(key [0-9a-f]{12}\)", entry["reviewer"])


def test_sign_out_ends_the_session_on_the_server(client: TestClient) -> None:
    k = keys(client, "review")
    token = sign_in(client, k["review"])
    client.cookies.set("aq_session", token)
    page = client.get("/review").text
    assert "Sign out" in page and "review-holder" in page
    assert client.post("/logout", data={}, headers=SAME).status_code == 403  # no CSRF token
    out = client.post("/logout", data={"csrf": csrf_of(page)}, headers=SAME, follow_redirects=False)
    assert out.status_code == 303 and 'aq_session=""' in out.headers["set-cookie"]
    client.cookies.set("aq_session", token)  # a copy of the cookie kept from before
    assert client.get("/review", follow_redirects=False).status_code == 303
    assert client.get("/v1/reports").status_code == 401


def test_sign_in_attempts_are_rate_limited(client: TestClient) -> None:
    k = keys(client, "review")
    for _ in range(5):
        assert client.post("/login", data={"key": "aq_guess_guess"}, headers=SAME).status_code == 401
    limited = client.post("/login", data={"key": k["review"]}, headers=SAME, follow_redirects=False)
    assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 60
    assert "aq_session" not in limited.headers.get("set-cookie", "")  # even the right key waits


def test_a_review_records_the_authenticated_key_in_the_chain(
        client: TestClient, genuine_item: SyntheticItem) -> None:
    """Finding 7: the reviewer is the key, not a name the caller types; the name is a note."""
    k = keys(client, "review", "submit")
    rid = report_id(client, genuine_item, k["submit"])
    r = client.post(f"/v1/reports/{rid}/reviews", headers={"X-API-Key": k["review"]}, json={
        "decision": "override", "verdict": "counterfeit", "reason": "stitch count is off",
        "reviewer": "The CEO", "expected_version": 0})
    assert r.status_code == 201, r.text
    review = r.json()
    key_id = k["review"].split("_")[1]
    assert review["reviewer"] == f"review-holder (key {key_id})"
    assert review["key_id"] == key_id and review["key_name"] == "review-holder"
    assert review["note"] == "The CEO"
    page = client.get(f"/reports/{rid}", headers={"X-API-Key": k["review"]}).text
    assert f"by review-holder (key {key_id})" in page and "note: The CEO" in page
    engine = client.app.state.services.store.engine  # type: ignore[attr-defined]
    assert verify_chain(engine).ok
    with engine.begin() as conn:  # an insider rewrites who reviewed
        conn.execute(text("UPDATE report_reviews SET key_id = 'aaaaaaaaaaaa'"))
    assert not verify_chain(engine).ok
