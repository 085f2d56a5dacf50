"""Times as the API writes them: ISO 8601 in UTC with the offset (SQLite gives stored times
back without their zone; they were stored in UTC)."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_utc(when: datetime | None) -> str | None:
    if when is None:
        return None
    return (when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()
