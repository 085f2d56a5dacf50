"""Opaque keyset cursors for newest-first listings ordered by (created_at desc, id asc)."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from authentiq.errors import InvalidField

Row = TypeVar("Row")

MAX_PAGE = 500


def encode_cursor(created_at: datetime, row_id: str) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, row_id = raw.split("|", 1)
        when = datetime.fromisoformat(created)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidField("cursor is not one this service issued", field="cursor") from exc
    if not row_id.isalnum():
        raise InvalidField("cursor is not one this service issued", field="cursor")
    return when, row_id


def page_size(limit: int) -> int:
    """Requested page sizes are capped (not refused): at most :data:`MAX_PAGE` rows."""
    return max(1, min(limit, MAX_PAGE))


def keyset_page(engine: Engine, query: Any, model: type[Row], *, limit: int,
                cursor: str | None) -> tuple[list[Row], str | None]:
    """One page of ``query`` (rows of ``model`` with ``created_at`` and ``id``), newest first,
    and the cursor of the next page (None at the end). Stable while rows are added."""
    limit = page_size(limit)
    created_at, row_id = col(model.created_at), col(model.id)  # type: ignore[attr-defined]
    if cursor is not None:
        created, last_id = decode_cursor(cursor)
        created = created if created.tzinfo else created.replace(tzinfo=UTC)
        query = query.where((created_at < created) | ((created_at == created) & (row_id > last_id)))
    query = query.order_by(created_at.desc(), row_id).limit(limit + 1)
    with Session(engine) as session:
        rows = list(session.exec(query))
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    return rows, (encode_cursor(last.created_at, last.id) if more and last is not None else None)  # type: ignore[attr-defined]
