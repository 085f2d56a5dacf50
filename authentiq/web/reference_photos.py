"""The photos of the genuine references a report was compared with, for the auditor page and PDF.

A report keeps a copy of its reference matches (ids and similarities); the photos stay in the
reference store, where a withdrawn (soft-deleted) reference keeps them for audit. An auditor
judges a similarity best with the closest references' photos beside the item's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authentiq.contract.report import Report, photo_of
from authentiq.errors import ReferenceNotFound, ReportNotFound
from authentiq.storage.references import ReferenceStore

SHOWN = 3  # closest references of the claimed product shown beside the item


def compared(report: Mapping[str, Any], limit: int = SHOWN) -> list[dict[str, Any]]:
    """The claimed product's closest references, best first (``limit`` of them)."""
    claimed = (report.get("references") or {}).get("claimed") or {}
    return [dict(m) for m in claimed.get("matches") or []][:limit]


def was_compared(report: Report, reference_id: str) -> bool:
    """Whether ``reference_id`` is one of the report's matches (claimed product or others)."""
    refs = report.references
    return any(m.id == reference_id for m in [*refs.claimed.matches, *refs.other_products])


def views_of(store: ReferenceStore, reference_ids: list[str]) -> dict[str, set[str]]:
    """The views each reference has a photo of (none for an id the store does not hold)."""
    out: dict[str, set[str]] = {}
    for ref in reference_ids:
        try:
            out[ref] = {f.split(".")[0] for f in store.get(ref).body.get("stored_files", [])}
        except ReferenceNotFound:
            out[ref] = set()
    return out


def reference_photo(store: ReferenceStore, reference_id: str, view: str) -> tuple[str, bytes]:
    """The file name and bytes of one reference's photo of ``view``."""
    row = store.get(reference_id)
    name = photo_of(row.body.get("stored_files", []), view)
    if name is None:
        raise ReferenceNotFound(f"reference {reference_id} has no {view!r} photo")
    return name, store.blobs.get(reference_id, name)


def photo_or_none(store: ReferenceStore, reference_id: str, view: str) -> bytes | None:
    try:
        return reference_photo(store, reference_id, view)[1]
    except (ReferenceNotFound, ReportNotFound):  # no such photo, or its file is gone
        return None
