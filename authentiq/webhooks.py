"""Signed webhooks: when an async job ends, its key's endpoint hears about it, at least once.

Each API key may have one endpoint (``authentiq keys webhook KEY_ID URL``) and a signing secret
(``whsec_…``, shown when set). A job's end writes a delivery row in the same transaction that
marks the job done (an outbox), so no event is lost to a crash; the :class:`Dispatcher` posts
pending deliveries and retries failures with exponential backoff (with jitter) until
``webhook_max_attempts``; every attempt is logged on the row (``GET /v1/webhooks/deliveries``).

A delivery keeps its id across attempts (header ``AuthentiQ-Delivery``), so a receiver that got
it twice (a timeout after it already processed it) can drop the duplicate. The body is fixed at
creation; each attempt goes to the key's webhook *as it is at that attempt* (a client that moved
its endpoint gets retries and redeliveries at the new one) and signs it afresh::

    AuthentiQ-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>

Receivers check it with :func:`verify` (or the recipe in docs/webhooks.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
from sqlalchemy import JSON, Column, Index, update
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from authentiq import __version__
from authentiq.doorbell import Doorbell
from authentiq.errors import AuthentiqError, InvalidField
from authentiq.settings import JobSettings
from authentiq.tenants import Visible

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "AuthentiQ-Signature"
DELIVERY_HEADER = "AuthentiQ-Delivery"
EVENT_HEADER = "AuthentiQ-Event"
SECRET_PREFIX = "whsec_"
TOLERANCE_S = 300
Event = Literal["inspection.completed", "inspection.failed"]


class WebhookRow(SQLModel, table=True):
    """One endpoint per API key."""

    __tablename__ = "webhooks"
    key_id: str = Field(primary_key=True, max_length=24)
    url: str = Field(max_length=2048)
    secret: str = Field(max_length=128)  # kept in clear: signing needs it (like any HMAC secret)
    updated_at: datetime


class DeliveryRow(SQLModel, table=True):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (  # the dispatcher's due query
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),)
    id: str = Field(primary_key=True, max_length=32)
    key_id: str = Field(index=True, max_length=24)
    tenant_id: str = Field(index=True, max_length=64)
    job_id: str = Field(index=True, max_length=32)
    event: str = Field(max_length=64)
    url: str = Field(max_length=2048)  # where the latest attempt went (the key's webhook then)
    payload: str  # the exact body every attempt sends
    status: str = Field(default="pending", index=True, max_length=16)  # pending|delivered|failed
    attempts: int = 0
    next_attempt_at: datetime = Field(index=True)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    log: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime
    delivered_at: datetime | None = None


class DeliveryNotFound(AuthentiqError):
    slug, status, title = "delivery-not-found", 404, "No such webhook delivery"


# --- signing ---------------------------------------------------------------------------------


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``AuthentiQ-Signature`` header value for ``body``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, header: str, body: bytes, *, tolerance_s: int = TOLERANCE_S,
           now: float | None = None) -> bool:
    """True if ``header`` signs ``body`` with ``secret`` and is at most ``tolerance_s`` old
    (older signatures are refused, so a captured request cannot be replayed later)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        t = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance_s:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


# --- configuration ---------------------------------------------------------------------------


def check_url(url: str) -> str:
    parsed = httpx.URL(url)
    if parsed.scheme not in ("https", "http") or not parsed.host:
        raise InvalidField(f"webhook URL must be http(s)://host/...; got {url!r}", field="url")
    return url


def set_webhook(engine: Engine, key_id: str, url: str, *, rotate: bool = False) -> WebhookRow:
    """Point ``key_id``'s events at ``url``; the secret is kept unless new or ``rotate``."""
    check_url(url)
    with Session(engine) as session:
        row = session.get(WebhookRow, key_id)
        if row is None:
            row = WebhookRow(key_id=key_id, url=url, secret="", updated_at=datetime.now(UTC))
        if rotate or not row.secret:
            row.secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        row.url, row.updated_at = url, datetime.now(UTC)
        session.add(row)
        session.commit()
        session.refresh(row)
        return row


def remove_webhook(engine: Engine, key_id: str) -> bool:
    with Session(engine) as session:
        row = session.get(WebhookRow, key_id)
        if row is None:
            return False
        session.delete(row)
        session.commit()
        return True


def webhook_of(engine: Engine, key_id: str) -> WebhookRow | None:
    with Session(engine) as session:
        return session.get(WebhookRow, key_id)


def webhook_urls(engine: Engine) -> dict[str, str]:
    with Session(engine) as session:
        return {h.key_id: h.url for h in session.exec(select(WebhookRow))}


def enqueue(session: Session, key_id: str | None, tenant_id: str, job_id: str, event: Event,
            data: dict[str, Any]) -> DeliveryRow | None:
    """Add a delivery to ``session`` (the caller's transaction) if the key has an endpoint."""
    hook = session.get(WebhookRow, key_id) if key_id else None
    if hook is None:
        return None
    now = datetime.now(UTC)
    delivery_id = uuid.uuid4().hex
    payload = json.dumps({"id": delivery_id, "type": event, "created_at": now.isoformat(),
                          "data": data}, separators=(",", ":"), sort_keys=True)
    row = DeliveryRow(id=delivery_id, key_id=hook.key_id, tenant_id=tenant_id, job_id=job_id,
                      event=event, url=hook.url, payload=payload, next_attempt_at=now, created_at=now)
    session.add(row)
    return row


def iso_utc(when: datetime | None) -> str | None:
    """Stored times are UTC; SQLite gives them back without their zone."""
    if when is None:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()


def delivery_view(row: DeliveryRow) -> dict[str, Any]:
    return {
        "id": row.id, "job_id": row.job_id, "event": row.event, "url": row.url,
        "status": row.status, "attempts": row.attempts,
        "next_attempt_at": iso_utc(row.next_attempt_at) if row.status == "pending" else None,
        "last_status_code": row.last_status_code, "last_error": row.last_error,
        "created_at": iso_utc(row.created_at), "delivered_at": iso_utc(row.delivered_at),
        "log": row.log,
    }


# --- delivery --------------------------------------------------------------------------------


class Dispatcher:
    """Posts due deliveries; several workers may run one each (a claim is a conditional update).

    ``backoff(n)`` is the wait after the n-th failed attempt: ``base * 2**(n-1)``, capped, with
    ±20 % jitter so that a receiver coming back is not hit by every retry at once.
    """

    def __init__(self, engine: Engine, config: JobSettings, *, concurrency: int = 8,
                 on_outcome: Callable[[str], None] | None = None) -> None:
        self.engine, self.timeout_s = engine, config.webhook_timeout_s
        self.max_attempts = config.webhook_max_attempts
        self.backoff_s, self.backoff_max_s = config.webhook_backoff_s, config.webhook_backoff_max_s
        self.poll_s = config.poll_s
        self.concurrency = concurrency
        self.on_outcome = on_outcome or (lambda outcome: None)
        self._bell = Doorbell()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._stopping = False

    def backoff(self, attempt: int) -> float:
        delay: float = min(self.backoff_s * 2.0 ** (attempt - 1), self.backoff_max_s)
        return delay * random.uniform(0.8, 1.2)

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False,
                                         headers={"User-Agent": f"AuthentiQ-Webhooks/{__version__}"})
        self._task = asyncio.create_task(self._loop(), name="authentiq-webhooks")

    def wake(self) -> None:
        self._bell.ring()

    async def close(self) -> None:
        """Stop claiming; attempts in flight finish (bounded by the timeout); pending rows stay
        in the database for the next start."""
        self._stopping = True
        self._bell.ring()
        if self._task is not None:
            await self._task
        if self._client is not None:
            await self._client.aclose()

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                due = await asyncio.to_thread(self._claim, self.concurrency)
                if due:
                    for failure in await asyncio.gather(*(self._attempt(d, secret) for d, secret in due),
                                                        return_exceptions=True):
                        if isinstance(failure, Exception):  # the database went away mid-way:
                            log.error("webhook attempt not recorded (%s); it is retried", failure)
                    continue
            except Exception:  # the database is away: keep the loop, try again shortly
                log.exception("webhook dispatcher: could not read deliveries; retrying")
            await self._bell.wait(self.poll_s)

    def _claim(self, limit: int) -> list[tuple[DeliveryRow, WebhookRow | None]]:
        """Due pending rows with their key's webhook as it is now (None: it was removed), each
        pushed ``timeout_s`` + 30 s ahead so that no other worker takes it while this one is
        sending (if this one dies, it becomes due again)."""
        now = datetime.now(UTC)
        hold = now + timedelta(seconds=self.timeout_s + 30)
        claimed: list[DeliveryRow] = []
        with Session(self.engine, expire_on_commit=False) as session:
            due = session.exec(select(DeliveryRow).where(
                col(DeliveryRow.status) == "pending", col(DeliveryRow.next_attempt_at) <= now)
                .order_by(col(DeliveryRow.next_attempt_at)).limit(limit)).all()
            for row in due:
                taken = session.execute(update(DeliveryRow).where(
                    col(DeliveryRow.id) == row.id, col(DeliveryRow.status) == "pending",
                    col(DeliveryRow.next_attempt_at) == row.next_attempt_at,
                ).values(next_attempt_at=hold))
                if taken.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(row)
            session.commit()
            owners = {row.key_id for row in claimed}
            hooks = {h.key_id: h for h in session.exec(
                select(WebhookRow).where(col(WebhookRow.key_id).in_(owners)))} if owners else {}
            return [(row, hooks.get(row.key_id)) for row in claimed]

    async def _attempt(self, row: DeliveryRow, hook: WebhookRow | None) -> None:
        """One attempt, to the key's webhook as it is now: a retry or a redelivery after the
        client moved its endpoint goes to the new one, signed with the current secret."""
        if self._client is None:
            raise RuntimeError("the dispatcher was not started")
        body = row.payload.encode()
        started = datetime.now(UTC)
        code: int | None = None
        error: str | None = None
        url = hook.url if hook is not None else row.url
        if hook is None:
            error = "the key's webhook was removed"
        else:
            try:
                response = await self._client.post(url, content=body, headers={
                    "Content-Type": "application/json", DELIVERY_HEADER: row.id,
                    EVENT_HEADER: row.event, SIGNATURE_HEADER: sign(hook.secret, body)})
                code = response.status_code
                if not 200 <= code < 300:
                    error = f"HTTP {code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
        await asyncio.to_thread(self._record, row.id, url, started, code, error, hook is None)

    def _record(self, delivery_id: str, url: str, started: datetime, code: int | None,
                error: str | None, final: bool) -> None:
        now = datetime.now(UTC)
        with Session(self.engine) as session:
            row = session.get(DeliveryRow, delivery_id)
            if row is None:
                return
            row.attempts += 1
            row.url, row.last_status_code, row.last_error = url, code, error
            row.log = [*row.log, {"at": started.isoformat(), "url": url, "status_code": code,
                                  "error": error,
                                  "ms": round((now - started).total_seconds() * 1000, 1)}]
            if error is None:
                row.status, row.delivered_at = "delivered", now
                outcome = "delivered"
            elif final or row.attempts >= self.max_attempts:
                row.status = "failed"
                outcome = "failed"
            else:
                row.next_attempt_at = now + timedelta(seconds=self.backoff(row.attempts))
                outcome = "retry"
            session.add(row)
            session.commit()
        if error is not None:
            log.warning("webhook %s to %s: %s (%s)", delivery_id, url, error, outcome)
        self.on_outcome(outcome)


def list_deliveries(engine: Engine, *, tenant: Visible, job_id: str | None = None,
                    status: str | None = None, limit: int = 50) -> list[DeliveryRow]:
    """Newest first; ``tenant`` None means every tenant's (an auditor)."""
    query = select(DeliveryRow)
    if tenant is not None:
        query = query.where(col(DeliveryRow.tenant_id) == tenant)
    if job_id is not None:
        query = query.where(col(DeliveryRow.job_id) == job_id)
    if status is not None:
        query = query.where(col(DeliveryRow.status) == status)
    with Session(engine) as session:
        return list(session.exec(query.order_by(col(DeliveryRow.created_at).desc()).limit(limit)))


def _delivery(session: Session, delivery_id: str, tenant: Visible) -> DeliveryRow:
    query = select(DeliveryRow).where(col(DeliveryRow.id) == delivery_id)
    if tenant is not None:
        query = query.where(col(DeliveryRow.tenant_id) == tenant)
    row = session.exec(query).first()
    if row is None:
        raise DeliveryNotFound(f"no webhook delivery {delivery_id!r}")
    return row


def get_delivery(engine: Engine, delivery_id: str, *, tenant: Visible) -> DeliveryRow:
    """The delivery if ``tenant`` may see it (None: every tenant); else 404."""
    with Session(engine) as session:
        return _delivery(session, delivery_id, tenant)


def redeliver(engine: Engine, delivery_id: str, *, tenant: Visible) -> DeliveryRow:
    """Send a delivery again now (same id and body), whatever its state, to the key's webhook
    as it is now (the dispatcher reads it at each attempt)."""
    with Session(engine) as session:
        row = _delivery(session, delivery_id, tenant)
        row.status, row.next_attempt_at = "pending", datetime.now(UTC)
        session.add(row)
        session.commit()
        session.refresh(row)
        return row
