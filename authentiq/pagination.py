"""Opaque keyset cursors for newest-first listings ordered by (created_at desc, id asc)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from authentiq.errors import InvalidField

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
