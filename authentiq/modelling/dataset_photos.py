"""The photos of a dataset as ``authentiq dataset check`` sees them: each read, hashed, decoded
and quality-checked by the server's own code (in worker processes); and the pairs of items that
share identical (SHA-256) or near-duplicate (:mod:`authentiq.modelling.photo_hash`) photos."""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from authentiq.errors import AuthentiqError
from authentiq.modelling.photo_hash import PhotoPrint, fingerprint, near_pairs
from authentiq.pipeline.preprocess import decode_view
from authentiq.pipeline.quality import check as quality_check
from authentiq.settings import QualitySettings

Pair = tuple["Photo", "Photo", int | None]  # (photo, its copy, bits apart; None: identical)


@dataclass
class Photo:
    """One photo as the check saw it."""

    item: str
    view: str
    path: str  # relative to the dataset
    sha256: str = ""
    width: int = 0
    height: int = 0
    unreadable: str | None = None  # why, when it could not be read or decoded
    retake: str | None = None  # the quality check's reason (too_small, blurred, ...)
    retake_message: str | None = None
    print: PhotoPrint | None = None


def analyse(root: Path, photos: list[Photo], tile_size: int, quality: QualitySettings,
            workers: int | None, progress: Callable[[int, int], None] | None) -> list[Photo]:
    """Read, hash, decode and quality-check every photo (in worker processes)."""
    jobs = [(root / p.path, p, tile_size, quality) for p in photos]
    workers = workers or os.cpu_count() or 1
    out: list[Photo] = []
    pool = ProcessPoolExecutor(workers) if workers > 1 and len(jobs) >= 16 else None
    try:
        results: Iterable[Photo] = map(_analyse_one, jobs) if pool is None else \
            pool.map(_analyse_one, jobs, chunksize=max(1, min(32, len(jobs) // (4 * workers))))
        for photo in results:
            out.append(photo)
            if progress:
                progress(len(out), len(jobs))
    finally:
        if pool is not None:
            pool.shutdown()
    return out


def _analyse_one(job: tuple[Path, Photo, int, QualitySettings]) -> Photo:
    path, photo, tile_size, quality = job
    try:
        data = path.read_bytes()
    except OSError as exc:
        photo.unreadable = f"cannot be read ({exc.strerror or exc})"
        return photo
    photo.sha256 = hashlib.sha256(data).hexdigest()
    if not data:
        photo.unreadable = "an empty file (0 bytes)"
        return photo
    try:
        decoded = decode_view(data, tile_size=tile_size, view=photo.view)
    except AuthentiqError as exc:
        photo.unreadable = exc.detail
        return photo
    except (OSError, ValueError, SyntaxError) as exc:  # Pillow's own, where a decoder gives up late
        photo.unreadable = f"not a readable image ({exc})"
        return photo
    photo.width, photo.height = decoded.width, decoded.height
    verdict = quality_check(decoded, quality)
    photo.retake, photo.retake_message = verdict.reason, verdict.message
    photo.print = fingerprint(decoded.analysis)
    return photo


def duplicates(photos: Sequence[Photo], views: Sequence[str]
               ) -> tuple[dict[tuple[str, str], list[Pair]], list[tuple[Photo, Photo]]]:
    """Pairs of items sharing photos — (item, item) → [(photo, copy, bits apart)], identical
    copies anywhere, near-duplicates within one view — and identical photos within one item."""
    readable = [p for p in photos if p.sha256]
    pairs: dict[tuple[str, str], list[Pair]] = defaultdict(list)
    within: list[tuple[Photo, Photo]] = []
    by_hash: dict[str, list[Photo]] = defaultdict(list)
    for p in readable:
        by_hash[p.sha256].append(p)
    for same in by_hash.values():
        for i, a in enumerate(same):
            for b in same[i + 1:]:
                if a.item == b.item:
                    within.append((a, b))
                else:
                    _add(pairs, a, b, None)
    for view in views:
        shown = [p for p in readable if p.view == view and p.print is not None]
        for i, j, bits in near_pairs([p.print for p in shown if p.print is not None]):
            a, b = shown[i], shown[j]
            if a.item != b.item and a.sha256 != b.sha256:
                _add(pairs, a, b, bits)
    return pairs, within


def _add(pairs: dict[tuple[str, str], list[Pair]], a: Photo, b: Photo, bits: int | None) -> None:
    a, b = (a, b) if a.item < b.item else (b, a)
    pairs[a.item, b.item].append((a, b, bits))
