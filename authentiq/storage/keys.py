"""API keys with scopes: random, shown once, stored as a SHA-256 hash, revocable.

A key reads ``aq_<id>_<secret>``: the id is public (logged, stored on reports as ``key_id``), the
secret is 32 random bytes and only its hash is kept. Scopes: ``submit`` (marketplaces, kiosks:
inspections, quality checks, reading a report by id), ``review`` (auditors: listing, reviewing,
the review pages), ``admin`` (references, products; implies submit and review), ``auditor``
(review across every tenant: the one scope that crosses tenants; implies review).

Every key belongs to a tenant (:mod:`authentiq.storage.tenants`); what it makes is its tenant's, and
what it reads is its tenant's, unless it holds ``auditor``.

``AUTHENTIQ_AUTH``: ``required`` — every API call needs a key; ``auto`` (default) — required as
soon as one key exists, open before that (a fresh local install works out of the box, and the
start-up log says it is open); ``off`` — never checked (a trusted network behind a gateway).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import JSON, Column, func
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from authentiq.contract.text import check_text
from authentiq.errors import AuthentiqError, Unauthorized
from authentiq.storage.tenants import DEFAULT_TENANT, Visible, require_tenant

Scope = Literal["submit", "review", "admin", "auditor"]
SCOPES: tuple[Scope, ...] = ("submit", "review", "admin", "auditor")
PREFIX = "aq_"


class ApiKeyRow(SQLModel, table=True):
    __tablename__ = "api_keys"
    id: str = Field(primary_key=True, max_length=24)
    name: str = Field(max_length=128)
    tenant_id: str = Field(foreign_key="tenants.id", index=True, max_length=64)
    scopes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    secret_sha256: str = Field(max_length=64)
    rate_limit: str | None = Field(default=None, max_length=32)  # overrides AUTHENTIQ_RATE_LIMIT
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the key, its holder's name and its tenant."""

    key_id: str
    name: str
    tenant_id: str
    scopes: frozenset[str]
    rate_limit: str | None = None

    def allows(self, scope: Scope) -> bool:
        if scope in self.scopes:
            return True
        if scope == "review" and "auditor" in self.scopes:
            return True
        return scope != "auditor" and "admin" in self.scopes

    @property
    def visible(self) -> Visible:
        """The tenant whose items this caller sees (None: every tenant)."""
        return None if "auditor" in self.scopes else self.tenant_id

    @property
    def identity(self) -> str:
        """How records name this caller: the key's name and id."""
        return f"{self.name} (key {self.key_id})"


def principal(row: ApiKeyRow) -> Principal:
    return Principal(row.id, row.name, row.tenant_id, frozenset(row.scopes), row.rate_limit)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(engine: Engine, name: str, scopes: list[str], rate_limit: str | None = None,
               *, tenant: str = DEFAULT_TENANT) -> tuple[ApiKeyRow, str]:
    """The new row and the key itself, which is never stored and cannot be shown again."""
    check_text(name, "name", 128)
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise AuthentiqError(f"scopes must be some of {', '.join(SCOPES)}; got {scopes}")
    if rate_limit is not None:
        from limits import parse

        try:
            parse(rate_limit)
        except ValueError as exc:
            raise AuthentiqError(f"rate limit {rate_limit!r} is not like '600/minute'") from exc
    require_tenant(engine, tenant)  # after the checks that need no database
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    row = ApiKeyRow(id=key_id, name=name, tenant_id=tenant, scopes=sorted(set(scopes)),
                    secret_sha256=_digest(secret), rate_limit=rate_limit, created_at=datetime.now(UTC))
    with Session(engine) as session:
        session.add(row)
        session.commit()
        session.refresh(row)
    return row, f"{PREFIX}{key_id}_{secret}"


def list_keys(engine: Engine) -> list[ApiKeyRow]:
    with Session(engine) as session:
        return list(session.exec(select(ApiKeyRow).order_by(col(ApiKeyRow.created_at))))


def revoke_key(engine: Engine, key_id: str) -> ApiKeyRow:
    with Session(engine) as session:
        row = session.get(ApiKeyRow, key_id)
        if row is None:
            raise AuthentiqError(f"no key with id {key_id!r}")
        if row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
            session.add(row)
            session.commit()
            session.refresh(row)
        return row


class KeyRing:
    """Verifies presented keys; knows whether any key exists (for ``auto``), re-read every few
    seconds so that a key created or revoked by the CLI or another worker takes effect."""

    def __init__(self, engine: Engine, mode: Literal["auto", "required", "off"],
                 refresh_s: float = 2.0) -> None:
        self.engine, self.mode, self.refresh_s = engine, mode, refresh_s
        self._checked, self._any = float("-inf"), False

    @property
    def stale(self) -> bool:
        """Whether :attr:`enforced` would ask the database (at most every ``refresh_s``)."""
        return self.mode == "auto" and time.monotonic() - self._checked > self.refresh_s

    @property
    def enforced(self) -> bool:
        if self.mode != "auto":
            return self.mode == "required"
        if self.stale:
            with Session(self.engine) as session:
                self._any = bool(session.exec(select(func.count()).select_from(ApiKeyRow)).one())
            self._checked = time.monotonic()
        return self._any

    def verify(self, presented: str) -> Principal:
        try:
            key_id, secret = presented.removeprefix(PREFIX).split("_", 1)
        except ValueError:
            raise Unauthorized("that is not an AuthentiQ API key (aq_<id>_<secret>)") from None
        with Session(self.engine) as session:
            row = session.get(ApiKeyRow, key_id)
        if row is None or not hmac.compare_digest(row.secret_sha256, _digest(secret)) \
                or not presented.startswith(PREFIX):
            raise Unauthorized("unknown API key")
        if row.revoked_at is not None:
            raise Unauthorized(f"API key {key_id} was revoked")
        return principal(row)


class ServerSecret(SQLModel, table=True):
    __tablename__ = "server_secrets"
    name: str = Field(primary_key=True, max_length=32)
    value: str = Field(max_length=128)


def server_secret(engine: Engine, name: str = "session") -> bytes:
    """One random secret shared by every worker (created on first use)."""
    with Session(engine) as session:
        row = session.get(ServerSecret, name)
        if row is None:
            session.add(ServerSecret(name=name, value=secrets.token_hex(32)))
            try:
                session.commit()
            except Exception:  # a concurrent worker created it: use theirs
                session.rollback()
            row = session.get(ServerSecret, name, populate_existing=True)
        if row is None:
            raise RuntimeError("server secret missing after creation")
        return row.value.encode()


def principal_of(engine: Engine, key_id: str) -> Principal | None:
    """The caller a live key id stands for (None: unknown or revoked)."""
    with Session(engine) as session:
        row = session.get(ApiKeyRow, key_id)
    if row is None or row.revoked_at is not None:
        return None
    return principal(row)
