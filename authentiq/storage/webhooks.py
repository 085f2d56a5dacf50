"""Signed webhooks: when an async job ends, its key's endpoint hears about it, at least once.

Each API key may have one endpoint (``authentiq keys webhook KEY_ID URL``) and a signing secret
(``whsec_…``, shown when set). A job's end writes a delivery row in the same transaction that
marks the job done (an outbox), so no event is lost to a crash; the
:class:`~authentiq.services.dispatcher.Dispatcher` posts
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

import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from sqlalchemy import JSON, Column, Index
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from authentiq.errors import DeliveryNotFound, InvalidField
from authentiq.storage.tenants import Visible

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
            data: Callable[[], dict[str, Any]]) -> DeliveryRow | None:
    """Add a delivery to ``session`` (the caller's transaction) if the key has an endpoint;
    ``data`` makes the event's body, only then."""
    hook = session.get(WebhookRow, key_id) if key_id else None
    if hook is None:
        return None
    now = datetime.now(UTC)
    delivery_id = uuid.uuid4().hex
    payload = json.dumps({"id": delivery_id, "type": event, "created_at": now.isoformat(),
                          "data": data()}, separators=(",", ":"), sort_keys=True)
    row = DeliveryRow(id=delivery_id, key_id=hook.key_id, tenant_id=tenant_id, job_id=job_id,
                      event=event, url=hook.url, payload=payload, next_attempt_at=now, created_at=now)
    session.add(row)
    return row


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


class Deliveries:
    """Webhook deliveries on one engine, as the API reads and resends them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def list(self, *, tenant: Visible, job_id: str | None = None, status: str | None = None,
             limit: int = 50) -> list[DeliveryRow]:
        return list_deliveries(self.engine, tenant=tenant, job_id=job_id, status=status,
                               limit=limit)

    def get(self, delivery_id: str, *, tenant: Visible) -> DeliveryRow:
        return get_delivery(self.engine, delivery_id, tenant=tenant)

    def redeliver(self, delivery_id: str, *, tenant: Visible) -> DeliveryRow:
        return redeliver(self.engine, delivery_id, tenant=tenant)
