"""Enrolling genuine reference items: the inspection pipeline's front half, then the reference store.

An enrolment runs the same decoding, quality check, stitching and model (through the batcher) as
an inspection. It is refused when the product is unknown, a photo fails the quality check (with
every failing view named), or the same photos are already a live reference (409, naming it). An
item the classifier rates counterfeit-looking, or that matches another product's references
better than its own, is enrolled with a warning recorded on it — the person enrolling decides.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from authentiq.contract.deadline import Deadline
from authentiq.contract.layout import read_labels, view_files
from authentiq.contract.model_spec import ModelSpec
from authentiq.contract.report import ReasonCode
from authentiq.errors import AuthentiqError, DatasetError, DuplicateReference, ReferenceRejected
from authentiq.inference.backends.base import Outputs
from authentiq.inference.batcher import Priority
from authentiq.pipeline.inspection import Inspector, Upload
from authentiq.pipeline.reference_index import ReferenceIndex, by_view
from authentiq.storage.references import ReferenceRow, ReferenceStore, ViewFeatures, content_hash

log = logging.getLogger(__name__)


class Enroller:
    def __init__(self, inspector: Inspector, store: ReferenceStore, index: ReferenceIndex) -> None:
        self.inspector, self.store, self.index = inspector, store, index

    async def enrol(self, uploads: list[Upload], *, brand: str, model: str, source: str | None = None,
                    notes: str | None = None, deadline: Deadline | None = None) -> ReferenceRow:
        """Enrol one genuine item; the stored reference (embedded with this model)."""
        spec = self.inspector.spec
        self.inspector.check_views([u.view for u in uploads])
        loop = asyncio.get_running_loop()
        product = await loop.run_in_executor(self.inspector.pool, self.store.product, brand, model)
        digest = content_hash((u.view, u.data) for u in uploads)
        existing = await loop.run_in_executor(self.inspector.pool, self.store.live_with_hash, digest)
        if existing is not None:
            raise DuplicateReference(f"these photos are already enrolled as reference {existing.id}",
                                     reference_id=existing.id)
        run = await self.inspector.run(uploads, priority=Priority.BULK, deadline=deadline)
        bad = {v: (str(p.quality.reason), str(p.quality.message))
               for v, p in run.prepared.items() if not p.quality.usable}
        gate = run.gate() or {}  # a reference's photos must also pass the view gate
        bad.update({v: (str(c.finding), str(c.message)) for v, c in gate.items()
                    if c.finding is not None and v not in bad})
        if bad:
            raise ReferenceRejected(
                "a reference must have clean photos of the right views; retake: " + "; ".join(
                    f"{v} ({reason}: {message})" for v, (reason, message) in bad.items()),
                views={v: reason for v, (reason, _) in bad.items()})

        outputs = run.result.outputs
        p_fake = run.p_counterfeit
        evidence = await loop.run_in_executor(
            self.inspector.pool, self.index.search, outputs.embedding[0], product.brand, product.model)
        warnings = []
        band = spec.thresholds
        if p_fake >= band.counterfeit_above:
            warnings.append({"code": ReasonCode.COUNTERFEIT_LOOKING, "value": round(p_fake, 4), "detail": (
                f"The classifier rates this item counterfeit-looking (p = {p_fake:.3f}, threshold "
                f"{band.counterfeit_above:.3f}); make sure it is genuine before relying on it.")})
        other, fusion = evidence.best_other, spec.fusion
        floor = fusion.min_similarity if fusion else 0.0
        margin = fusion.mismatch_margin if fusion else 0.0
        if other is not None and other.similarity >= floor and (
                evidence.best is None or other.similarity - evidence.best >= margin):
            warnings.append({"code": ReasonCode.CLOSER_TO_OTHER_PRODUCT, "value": round(other.similarity, 4),
                             "detail": (f"This item is closer to a genuine {other.brand}/{other.model} "
                                        f"reference ({other.similarity:.3f}) than to any "
                                        f"{product.brand}/{product.model} reference"
                                        + (f" ({evidence.best:.3f})" if evidence.best is not None
                                           else " (none enrolled yet)")
                                        + "; check the brand and model.")})
        ref_id = uuid.uuid4().hex
        photos = run.photo_files()
        body = {
            "views": [self.inspector.view_result(p).model_dump(mode="json") for p in run.ordered()],
            "stored_files": sorted(photos),
            "p_counterfeit": round(p_fake, 6),
            "warnings": warnings,
            "enrolled_with": spec.version_key,
            "model_id": self.inspector.info.model_id,
        }
        row = ReferenceRow(id=ref_id, product_key=product.key, brand=product.brand,
                           model=product.model, created_at=datetime.now(UTC), source=source,
                           notes=notes, content_hash=digest, body=body, seq=0)
        views = descriptors(spec, outputs, run.prepared)  # every photo passed the checks
        saved = await asyncio.shield(loop.run_in_executor(
            self.inspector.pool, self.store.add, row, self.inspector.info.model_id,
            outputs.embedding[0], photos,
            views))
        self.index.sync(force=True)  # this worker sees its own enrolment at once
        for w in warnings:
            log.info("reference %s (%s/%s): %s", ref_id, product.brand, product.model, w["detail"])
        return saved

    async def re_embed(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Embed every live reference lacking an embedding from the current model (by its id) —
        or, when the model compares photos view by view (``ModelSpec.view_check``), lacking that
        check's per-view descriptors (enrolled before they were kept, or by another fit of the check);
        returns how many."""
        spec = self.inspector.spec
        loop = asyncio.get_running_loop()
        todo = await loop.run_in_executor(
            self.inspector.pool, functools.partial(
                self.store.missing_embeddings, self.inspector.info.model_id,
                features_id=spec.view_check.features_id if spec.view_check else None))
        for n, row in enumerate(todo, start=1):
            uploads = [Upload(name.split(".")[0], self.store.blobs.get(row.id, name))
                       for name in row.body.get("stored_files", [])]
            run = await self.inspector.run(uploads, priority=Priority.BULK)
            outputs = run.result.outputs
            views = descriptors(spec, outputs, [v for v, p in run.prepared.items() if p.quality.usable])
            if views is None and spec.view_check is not None:
                log.warning("the model declares a per-view check but returns no view_descriptors; "
                            "references keep no per-view descriptors")
            await loop.run_in_executor(self.inspector.pool, self.store.add_embedding, row.id,
                                       self.inspector.info.model_id, outputs.embedding[0], views)
            if progress:
                progress(n, len(todo))
        self.index.sync(force=True)
        return len(todo)


def descriptors(spec: ModelSpec, outputs: Outputs, views: Iterable[str]) -> ViewFeatures | None:
    """What a reference keeps for the per-view check: its views' descriptors and the check's
    fit (None: the model has no check)."""
    found = by_view(spec, outputs.view_descriptors, views)
    if found is None or spec.view_check is None:
        return None
    return ViewFeatures(spec.view_check.features_id, found)


@dataclass
class FolderItem:
    name: str
    brand: str
    model: str
    files: dict[str, Path]
    source: str | None = None
    notes: str | None = None


@dataclass
class EnrolSummary:
    enrolled: int = 0
    skipped: int = 0  # already enrolled (same photos), deleted ones included
    failed: dict[str, str] = field(default_factory=dict)
    warned: dict[str, list[str]] = field(default_factory=dict)


def folder_references(root: Path) -> list[FolderItem]:
    """Items of ``root/labels.csv`` (columns item, brand, model; optional label, source, notes).

    Rows labelled counterfeit are left out: references are genuine items.
    """
    return read_folder(root).items


@dataclass
class ReferenceFolder:
    items: list[FolderItem]
    left_out: dict[str, str]  # item → its label, for rows not labelled authentic


def read_folder(root: Path) -> ReferenceFolder:
    """:func:`folder_references`, and the rows it leaves out (so that a caller can say so)."""
    csv_path = root / "labels.csv"
    if not csv_path.is_file():
        raise DatasetError(f"{root}: no labels.csv (columns: item, brand, model[, source, notes])")
    labels = read_labels(csv_path, required=("item", "brand", "model"))  # BOM, ";", aliases
    if labels.errors:
        shown = "; ".join(labels.errors[:5])
        more = f" (and {len(labels.errors) - 5} more)" if len(labels.errors) > 5 else ""
        raise DatasetError(f"{csv_path}: {shown}{more}")
    items, left_out = [], {}
    for row in labels.rows:
        if (row.label or "authentic") != "authentic":
            left_out[row.item] = row.label or ""
            continue
        if not (row.brand and row.model):
            raise DatasetError(f"{csv_path}:{row.line}: item, brand and model are required")
        folder = root / row.item
        if not folder.is_dir():
            raise DatasetError(f"{csv_path}:{row.line}: no folder {folder}")
        items.append(FolderItem(row.item, row.brand, row.model, view_files(folder),
                                row.values.get("source") or None, row.values.get("notes") or None))
    return ReferenceFolder(items, left_out)


async def enrol_folder(enroller: Enroller, items: list[FolderItem], *, source: str | None = None,
                       progress: Callable[[str, str], None] | None = None) -> EnrolSummary:
    """Enrol items one by one; a failing item is recorded and the rest go on. Items whose photos
    were ever enrolled (deleted ones too) are skipped, so a rerun resumes where it stopped."""
    summary = EnrolSummary()
    loaded = {item.name: [Upload(v, p.read_bytes()) for v, p in item.files.items()] for item in items}
    digests = {name: content_hash((u.view, u.data) for u in ups) for name, ups in loaded.items()}
    known = enroller.store.known_hashes(list(digests.values()))
    for item in items:
        if digests[item.name] in known:
            summary.skipped += 1
            if progress:
                progress(item.name, "skipped (already enrolled)")
            continue
        try:
            ref = await enroller.enrol(loaded[item.name], brand=item.brand, model=item.model,
                                       source=item.source or source, notes=item.notes)
        except DuplicateReference:
            summary.skipped += 1
            state = "skipped (already enrolled)"
        except AuthentiqError as exc:
            summary.failed[item.name] = exc.detail
            state = f"FAILED: {exc.detail}"
        else:
            summary.enrolled += 1
            state = f"enrolled {ref.id}"
            if ref.body["warnings"]:
                summary.warned[item.name] = [w["detail"] for w in ref.body["warnings"]]
                state += " with warnings"
        if progress:
            progress(item.name, state)
    return summary
