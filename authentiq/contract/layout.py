"""The item folder layout that enrolment, calibration and training read: one folder per item,
one photo per view named after the view (``logo.jpg``, ``stitching.png``, ...)."""

from __future__ import annotations

from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def view_files(folder: Path) -> dict[str, Path]:
    """An item folder's photos by view name (file stem, lower case)."""
    return {p.stem.lower(): p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
