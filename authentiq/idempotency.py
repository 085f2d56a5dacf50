"""``Idempotency-Key`` for POSTs that create something: a retry never runs the work twice.

The first request with a key claims it (a row inserted before the work starts, keyed by the
key); the work runs and the row records what it produced. A later request with the same key:

* same body (fingerprint over the form fields and each file's bytes) and finished → the original
  result, replayed (header ``Idempotent-Replayed: true``);
* same body, still running (a concurrent duplicate) → waits for it, then replays; it never runs
  a second time;
* a different body → 422 ``idempotency-key-reused``.

If the work fails, the claim is released so that the retry can run. Keys expire after 24 h.
Rows live in the service's database, so every worker process sees them.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col

from authentiq.errors import AuthentiqError, InvalidField

TTL = timedelta(hours=24)
MAX_KEY = 200


class IdempotencyKeyReused(AuthentiqError):
    slug, status, title = "idempotency-key-reused", 422, "Idempotency key reused with another body"


class IdempotencyInProgress(AuthentiqError):
    slug, status, title = "idempotency-in-progress", 409, "The first request is still running"


class IdempotencyRow(SQLModel, table=True):
    __tablename__ = "idempotency_keys"
    key: str = Field(primary_key=True, max_length=MAX_KEY + 40)  # scope + ":" + client key
    fingerprint: str = Field(max_length=64)
    result_id: str | None = Field(default=None, max_length=64)
    created_at: datetime


def fingerprint(fields: dict[str, str], files: Iterable[tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    for name, value in sorted(fields.items()):
        h.update(b"f" + name.encode() + b"\0" + value.encode() + b"\0")
    for name, data in sorted(files):
        h.update(b"b" + name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY or not key.isprintable():
        raise InvalidField(f"Idempotency-Key must be 1..{MAX_KEY} printable characters",
                           field="Idempotency-Key")
    return key


class Idempotency:
    def __init__(self, engine: Engine, poll_s: float = 0.05, wait_s: float = 120.0) -> None:
        self.engine, self.poll_s, self.wait_s = engine, poll_s, wait_s

    def _claim(self, key: str, fp: str) -> IdempotencyRow | None:
        """Insert the claim; None if it is ours, else the existing (live) row."""
        now = datetime.now(UTC)
        with Session(self.engine) as session:
            session.exec(delete(IdempotencyRow).where(  # type: ignore[call-overload]
                col(IdempotencyRow.key) == key, col(IdempotencyRow.created_at) < now - TTL))
            session.add(IdempotencyRow(key=key, fingerprint=fp, created_at=now))
            try:
                session.commit()
                return None
            except IntegrityError:
                session.rollback()
        with Session(self.engine) as session:
            return session.get(IdempotencyRow, key)

    def _finish(self, key: str, result_id: str) -> None:
        with Session(self.engine) as session:
            row = session.get(IdempotencyRow, key)
            if row is not None:
                row.result_id = result_id
                session.add(row)
                session.commit()

    def _release(self, key: str) -> None:
        with Session(self.engine) as session:
            session.exec(delete(IdempotencyRow).where(col(IdempotencyRow.key) == key))  # type: ignore[call-overload]
            session.commit()

    def _get(self, key: str) -> IdempotencyRow | None:
        with Session(self.engine) as session:
            return session.get(IdempotencyRow, key)

    async def run(self, key: str, fp: str, work: Callable[[], Awaitable[dict[str, Any]]],
                  replay: Callable[[str], Awaitable[dict[str, Any]]],
                  result_id: Callable[[dict[str, Any]], str] = lambda r: str(r["id"]),
                  ) -> tuple[dict[str, Any], bool]:
        """``(result, replayed)``. ``result_id`` names what ``work`` made; ``replay`` loads it."""
        deadline = asyncio.get_running_loop().time() + self.wait_s
        while True:
            existing = await asyncio.to_thread(self._claim, key, fp)
            if existing is None:
                break  # ours: run below
            if existing.fingerprint != fp:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was used for a different request in the last 24 h; "
                    "use a new key for new work")
            if existing.result_id is not None:
                return await replay(existing.result_id), True
            # A concurrent duplicate is running: wait for its result (or for its claim to go).
            while asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(self.poll_s)
                row = await asyncio.to_thread(self._get, key)
                if row is None or row.result_id is not None:
                    break
            else:
                raise IdempotencyInProgress("the first request with this Idempotency-Key is still "
                                            "running; retry later", retry_after=1)
        try:
            result = await work()
        except BaseException:
            await asyncio.shield(asyncio.to_thread(self._release, key))
            raise
        await asyncio.shield(asyncio.to_thread(self._finish, key, result_id(result)))
        return result, False
