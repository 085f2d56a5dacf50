"""API keys and scopes through the real app: open until the first key, then 401/403, hashed
storage, revocation and the CLI (sign-in sessions: tests/api/test_sessions.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from authentiq.cli import main
from authentiq.modelling.synthetic import SyntheticItem
from authentiq.settings import Settings
from authentiq.storage.keys import ApiKeyRow, create_key, revoke_key
from tests.conftest import files_of


def form(item: SyntheticItem) -> dict[str, str]:
    return {"brand": item.brand, "model": item.model}


def test_scopes_401_403_and_revocation(client: TestClient, genuine_item: SyntheticItem) -> None:
    engine = client.app.state.services.store.engine  # type: ignore[attr-defined]
    assert client.get("/v1/products").status_code == 200  # no key exists yet: open (auto)
    _, submit = create_key(engine, "marketplace", ["submit"])
    reviewer_row, review = create_key(engine, "auditor", ["review"])
    _, admin = create_key(engine, "ops", ["admin"])
    client.app.state.services.keys._checked = float("-inf")  # type: ignore[attr-defined]  # no 2 s wait

    r = client.post("/v1/inspections", files=files_of(genuine_item), data=form(genuine_item))
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert r.headers["content-type"] == "application/problem+json"
    bad = client.get("/v1/products", headers={"X-API-Key": "aq_nope_nope"})
    assert bad.status_code == 401 and bad.json()["type"].endswith("/unauthorized")

    r = client.post("/v1/inspections", files=files_of(genuine_item), data=form(genuine_item),
                    headers={"Authorization": f"Bearer {submit}"})
    assert r.status_code == 201
    report = r.json()
    assert report["submitted_by"]["key_id"] == submit.split("_")[1]
    assert client.get(report["links"]["self"], headers={"X-API-Key": submit}).status_code == 200
    listing = client.get("/v1/reports", headers={"X-API-Key": submit})
    assert listing.status_code == 403 and listing.json()["type"].endswith("/forbidden")
    assert "lacks the review scope (it has submit)" in listing.json()["detail"]
    assert client.get("/v1/reports", headers={"X-API-Key": review},
                      params={"key_id": report["submitted_by"]["key_id"]}).json()["total"] == 1
    assert client.post("/v1/references", files=files_of(genuine_item), data=form(genuine_item),
                       headers={"X-API-Key": review}).status_code == 403
    assert client.put("/v1/products/A/B", json={}, headers={"X-API-Key": admin}).status_code == 200
    assert client.get("/v1/reports", headers={"X-API-Key": admin}).status_code == 200  # admin: all

    revoke_key(engine, reviewer_row.id)
    gone = client.get("/v1/reports", headers={"X-API-Key": review})
    assert gone.status_code == 401 and "revoked" in gone.json()["detail"]
    with Session(engine) as session:  # only hashes are stored
        stored = [r.secret_sha256 for r in session.exec(select(ApiKeyRow))]
    assert all(key.split("_", 2)[2] not in stored for key in (submit, review, admin))
    assert client.get("/healthz").status_code == 200 and client.get("/kiosk").status_code == 200


def test_auth_required_and_off(tmp_path: object, settings: Settings) -> None:
    from authentiq.api.app import create_app

    with TestClient(create_app(settings.model_copy(update={"auth": "required"}))) as c:
        assert c.get("/v1/products").status_code == 401  # required even before any key
    with TestClient(create_app(settings.model_copy(update={"auth": "off"}))) as c:
        engine = c.app.state.services.store.engine  # type: ignore[attr-defined]
        create_key(engine, "x", ["submit"])
        assert c.get("/v1/products").status_code == 200  # off: never checked


def test_keys_cli(settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = ["--database-url", settings.database_url]
    # Listing reads only: a database that is not there (a typo in the URL, say) is said, not
    # created empty.
    typo = tmp_path / "athentiq.db"
    assert main(["keys", "list", "--database-url", f"sqlite:///{typo}"]) == 2
    assert f"there is no database at {typo}" in capsys.readouterr().err and not typo.exists()
    assert main(["keys", "create", "kiosk-milano-1", "--scopes", "submit", *db]) == 0
    out = capsys.readouterr().out
    key = next(line for line in out.splitlines() if line.startswith("aq_"))
    key_id = key.split("_")[1]
    assert main(["keys", "list", *db]) == 0
    listed = capsys.readouterr().out
    assert key_id in listed and "kiosk-milano-1" in listed and key.split("_", 2)[2] not in listed
    assert main(["keys", "revoke", key_id, *db]) == 0 and "revoked" in capsys.readouterr().out
    assert main(["keys", "create", "x", "--scopes", "root", *db]) == 2
    assert "scopes must be some of" in capsys.readouterr().err


def test_keys_webhook_cli(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    db = ["--database-url", settings.database_url]
    assert main(["keys", "create", "market", "--scopes", "submit", "--webhook",
                 "https://hooks.example.com/a", *db]) == 0
    out = capsys.readouterr().out
    key_id = next(line for line in out.splitlines() if line.startswith("aq_")).split("_")[1]
    secret = out.split("signing secret: ")[1].split()[0]
    assert secret.startswith("whsec_")
    assert main(["keys", "webhook", key_id, "https://hooks.example.com/b", *db]) == 0
    assert f"signing secret: {secret}" in capsys.readouterr().out  # a new URL keeps the secret
    assert main(["keys", "webhook", key_id, "https://hooks.example.com/b", "--rotate-secret", *db]) == 0
    assert secret not in capsys.readouterr().out
    assert main(["keys", "list", *db]) == 0 and "webhook https://hooks.example.com/b" in capsys.readouterr().out
    assert main(["keys", "webhook", key_id, "ftp://nowhere", *db]) == 2
    assert "webhook URL must be http(s)" in capsys.readouterr().err
    assert main(["keys", "webhook", key_id, "--remove", *db]) == 0
    assert main(["keys", "webhook", key_id, *db]) == 0 and "has no webhook" in capsys.readouterr().out
    assert main(["keys", "webhook", "nope", "https://x.example", *db]) == 2
    assert "no active key" in capsys.readouterr().err


@pytest.mark.parametrize("storage", ["memory://", "redis://127.0.0.1:6379"])
def test_rate_limit_per_key(settings: Settings, storage: str) -> None:
    """Past its rate a key gets 429 + Retry-After; another key is unaffected. With Redis, two app
    instances (two workers) share the count."""
    import uuid

    from authentiq.api.app import create_app
    from authentiq.services.ratelimit import RateLimiter

    if storage.startswith("redis"):
        try:
            RateLimiter("1/second", storage).storage.check()
        except Exception:
            if os.environ.get("CI"):
                raise
            pytest.skip("Redis is not reachable at 127.0.0.1:6379")
    config = settings.model_copy(update={"rate_limit_storage": storage, "auth": "required"})
    with TestClient(create_app(config)) as a, TestClient(create_app(config)) as b:
        engine = a.app.state.services.store.engine  # type: ignore[attr-defined]
        _, slow = create_key(engine, f"slow-{uuid.uuid4().hex[:6]}", ["submit"], rate_limit="3/minute")
        _, other = create_key(engine, "other", ["submit"])
        shared = storage.startswith("redis")
        # Three calls allowed: with Redis spread over both workers, in memory all on one.
        callers = [a, a, b] if shared else [a, a, a]
        assert [c.get("/v1/views", headers={"X-API-Key": slow}).status_code for c in callers] == [200] * 3
        limited = b.get("/v1/views", headers={"X-API-Key": slow}) if shared else \
            a.get("/v1/views", headers={"X-API-Key": slow})
        assert limited.status_code == 429 and limited.json()["type"].endswith("/rate-limited")
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert a.get("/v1/views", headers={"X-API-Key": other}).status_code == 200
        if not shared:  # in memory, the other worker counts on its own
            assert b.get("/v1/views", headers={"X-API-Key": slow}).status_code == 200
    with pytest.raises(Exception, match="not like"):
        create_key(engine, "bad", ["submit"], rate_limit="lots")


def test_cors_only_for_configured_origins(settings: Settings) -> None:
    from authentiq.api.app import create_app

    config = settings.model_copy(update={"cors_origins": ("https://kiosk.example.com",)})
    with TestClient(create_app(config)) as c:
        pre = {"Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "X-API-Key, Idempotency-Key"}
        ok = c.options("/v1/inspections", headers={"Origin": "https://kiosk.example.com", **pre})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://kiosk.example.com"
        evil = c.options("/v1/inspections", headers={"Origin": "https://evil.example", **pre})
        assert "access-control-allow-origin" not in evil.headers
    with TestClient(create_app(settings)) as c:  # default: same origin only
        r = c.get("/v1/views", headers={"Origin": "https://kiosk.example.com"})
        assert "access-control-allow-origin" not in r.headers
    with pytest.raises(ValueError, match="'\\*' would let any site"):
        Settings(cors_origins=("*",))
