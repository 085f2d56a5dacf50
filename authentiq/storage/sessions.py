"""Sign-in sessions of the auditor pages: server-side, so that signing out ends them.

``/login`` checks a key once and sets a cookie holding a random token; the database keeps only
the token's SHA-256, the key id and the expiry. A session stands for its key while the key is
live: revoking the key ends its sessions, and ``/logout`` deletes the row (a copied cookie is
worthless afterwards). What a session may do is narrower than its key (see
:func:`authentiq.api.auth.authenticate`): at most review (and auditor), never admin, and on the
API only reads. Form posts also carry :func:`csrf_token`, an HMAC of the session token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col

from authentiq.storage.keys import Principal, principal_of

COOKIE = "aq_session"
LIFETIME = timedelta(hours=8)
PAGE_SCOPES = frozenset({"review", "auditor"})  # what a session may carry of its key's scopes


class SessionRow(SQLModel, table=True):
    __tablename__ = "web_sessions"
    token_sha256: str = Field(primary_key=True, max_length=64)
    key_id: str = Field(index=True, max_length=24)
    created_at: datetime
    expires_at: datetime = Field(index=True)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(engine: Engine, key_id: str) -> str:
    """A new session for ``key_id``; the token goes into the cookie, only its hash is stored.
    Expired sessions are swept on the way."""
    now = datetime.now(UTC)
    token = secrets.token_urlsafe(32)
    with Session(engine) as session:
        session.exec(delete(SessionRow).where(col(SessionRow.expires_at) < now))  # type: ignore[call-overload]
        session.add(SessionRow(token_sha256=_digest(token), key_id=key_id, created_at=now,
                               expires_at=now + LIFETIME))
        session.commit()
    return token


def session_principal(engine: Engine, token: str) -> Principal | None:
    """Who a live session stands for, narrowed to what sessions may do; None if the session
    ended, expired, or its key was revoked or lost its review scope."""
    with Session(engine) as session:
        row = session.get(SessionRow, _digest(token))
    if row is None or _aware(row.expires_at) <= datetime.now(UTC):
        return None
    key = principal_of(engine, row.key_id)
    if key is None or not key.allows("review"):
        return None
    scopes = {"review"} | ({"auditor"} if "auditor" in key.scopes else set())
    return Principal(key.key_id, key.name, key.tenant_id, frozenset(scopes & PAGE_SCOPES),
                     key.rate_limit)


def end_session(engine: Engine, token: str) -> None:
    with Session(engine) as session:
        session.exec(delete(SessionRow).where(  # type: ignore[call-overload]
            col(SessionRow.token_sha256) == _digest(token)))
        session.commit()


def csrf_token(secret: bytes, token: str) -> str:
    """The token every form of a session posts back (bound to that session)."""
    return hmac.new(secret, b"csrf." + token.encode(), hashlib.sha256).hexdigest()


def csrf_ok(secret: bytes, token: str, presented: str) -> bool:
    return hmac.compare_digest(csrf_token(secret, token), presented)


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class Sessions:
    """Sign-in sessions on one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def open(self, key_id: str) -> str:
        return open_session(self.engine, key_id)

    def principal(self, token: str) -> Principal | None:
        return session_principal(self.engine, token)

    def end(self, token: str) -> None:
        end_session(self.engine, token)
