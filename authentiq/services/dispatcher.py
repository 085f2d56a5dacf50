"""Webhook delivery: posts the pending deliveries that :mod:`authentiq.storage.webhooks` stores (its
outbox) to each key's endpoint, signed, retrying failures with exponential backoff and jitter."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from authentiq import __version__
from authentiq.services.doorbell import Doorbell
from authentiq.settings import JobSettings
from authentiq.storage.webhooks import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    DeliveryRow,
    WebhookRow,
    sign,
)

log = logging.getLogger(__name__)


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
