"""``Idempotency-Key`` for POSTs that create something: a retry never runs the work twice.

The first request with a key claims it (a row inserted before the work starts, keyed by the
caller's tenant, the operation and the key: tenants never share keys); the work runs and the
row records what it produced. A later request with the same key:

* same body (fingerprint over the form fields and each file's bytes) and finished → the original
  result, replayed (header ``Idempotent-Replayed: true``);
* same body, still running (a concurrent duplicate) → waits for it (up to 10 s), then replays;
  it never runs a second time. Still running after that: 409 ``idempotency-in-progress`` with
  ``Retry-After``;
* a different body → 422 ``idempotency-key-reused``.

If the work fails, the claim is released so that the retry can run. If the worker died (a
SIGKILL, a lost host), the claim is taken over by a retry once it is older than any request
can run. Inspections reserve their report's (or job's) id in the claim, so a takeover makes the
result under the same id, or finds it already made: never two. Keys expire after 24 h. Rows live
in the service's database, so every worker process sees them.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col

from authentiq.errors import AuthentiqError, IdempotencyInProgress, IdempotencyKeyReused, InvalidField

TTL = timedelta(hours=24)
MAX_KEY = 200


class IdempotencyRow(SQLModel, table=True):
    __tablename__ = "idempotency_keys"
    # tenant + ":" + scope + ":" + client key: one tenant's keys never meet another's
    key: str = Field(primary_key=True, max_length=MAX_KEY + 200)
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
    """``stale_s``: a claim with no result after this long belongs to a worker that died (its
    request could not have run longer); the next retry takes it over instead of waiting."""

    def __init__(self, engine: Engine, poll_s: float = 0.05, wait_s: float = 10.0,
                 stale_s: float = 90.0) -> None:
        self.engine, self.poll_s, self.wait_s, self.stale_s = engine, poll_s, wait_s, stale_s

    def _claim(self, key: str, fp: str, reserved: str | None) -> IdempotencyRow | None:
        """Insert the claim; None if it is ours, else the existing (live) row."""
        now = datetime.now(UTC)
        with Session(self.engine) as session:
            session.exec(delete(IdempotencyRow).where(  # type: ignore[call-overload]
                col(IdempotencyRow.key) == key, col(IdempotencyRow.created_at) < now - TTL))
            session.add(IdempotencyRow(key=key, fingerprint=fp, result_id=reserved, created_at=now))
            try:
                session.commit()
                return None
            except IntegrityError:
                session.rollback()
        with Session(self.engine) as session:
            return session.get(IdempotencyRow, key)

    def _take_over(self, row: IdempotencyRow, reserved: str | None) -> tuple[bool, str | None]:
        """Claim a dead worker's row (only one retry wins): (won, the id to make the result
        under). Its reserved id, if any, is kept: what the dead worker may have half-made is
        made again under the same id."""
        keep = row.result_id if row.result_id is not None else reserved
        with Session(self.engine) as session:
            taken = session.execute(update(IdempotencyRow).where(
                col(IdempotencyRow.key) == row.key, col(IdempotencyRow.created_at) == row.created_at,
            ).values(created_at=datetime.now(UTC), result_id=keep))
            session.commit()
        return taken.rowcount == 1, keep  # type: ignore[attr-defined]

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

    async def run(self, key: str, fp: str, work: Callable[[str | None], Awaitable[dict[str, Any]]],
                  replay: Callable[[str], Awaitable[dict[str, Any]]],
                  result_id: Callable[[dict[str, Any]], str] = lambda r: str(r["id"]),
                  *, reserve: bool = False) -> tuple[dict[str, Any], bool]:
        """``(result, replayed)``. ``result_id`` names what ``work`` made; ``replay`` loads it
        (and raises a 404 error while it does not exist).

        ``reserve``: the id of the result is chosen at the claim and passed to ``work``, which
        must make its result under it. Then even a worker's death after the result was stored
        but before the claim was marked cannot lead to a second result."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        reserved = uuid.uuid4().hex if reserve else None
        while True:
            existing = await asyncio.to_thread(self._claim, key, fp, reserved)
            if existing is None:
                mine = reserved
                break  # ours: run below
            if existing.fingerprint != fp:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was used for a different request in the last 24 h; "
                    "use a new key for new work")
            if existing.result_id is not None:
                try:
                    return await replay(existing.result_id), True
                except AuthentiqError as exc:
                    if exc.status != 404:
                        raise  # (404: reserved, not made yet: running, or its worker died)
            age = datetime.now(UTC) - _aware(existing.created_at)
            if age.total_seconds() > self.stale_s:
                won, mine = await asyncio.to_thread(self._take_over, existing, reserved)
                if won:
                    break
                continue
            if loop.time() > deadline:
                raise IdempotencyInProgress("the first request with this Idempotency-Key is still "
                                            "running; retry later", retry_after=1)
            await asyncio.sleep(self.poll_s)  # a concurrent duplicate runs: wait for its result
        try:
            result = await work(mine)
        except BaseException:
            await asyncio.shield(asyncio.to_thread(self._release, key))
            raise
        await asyncio.shield(asyncio.to_thread(self._finish, key, result_id(result)))
        return result, False


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)
