"""Reviewed reports as training data (``authentiq export-training-data``).

One tenant's reviewed reports are written in the layout ``dataset check`` and ``train`` read:
``OUT/<report id>/<view>.<ext>`` (the photos as uploaded, from the blob store) and
``OUT/labels.csv`` (``item,label,brand,model``) with each report's *final* label — the last
review's verdict, or its ``not_a_product`` finding — plus ``OUT/manifest.json`` (where every
item came from: report, reviews and reviewers, the model that made the automated verdict).

- **Labels**: ``authentic`` and ``counterfeit`` are trained on; ``not_a_product`` is listed and
  set aside by the reader (:data:`authentiq.contract.layout.NOT_A_PRODUCT`), kept for
  out-of-distribution work. A final ``inconclusive`` is skipped: nobody decided.
- **Skipped** (counted and named in the summary): an inconclusive final label; no stored
  photos (a report from before photos were kept, or its blob folder gone); a photo that failed
  the quality check (the service asked for a retake: training would learn from photos it never
  scores) — except for ``not_a_product`` items, whose photos are the point.
- **Incremental**: an item already in ``OUT`` is not written again (reports are immutable); its
  label follows the latest review (a changed label is updated; a report not exportable under
  its new label — now inconclusive, say — is withdrawn: its row and folder removed). Rows of
  earlier exports that this one did not select (another ``--since`` window) are kept.
- **All or nothing per item**: an item's photos are written into ``OUT/.partial-<id>/`` and
  renamed into place; a failure removes the partial folder (a crash leaves it hidden, and the
  next export removes it), and ``labels.csv`` and the manifest are rewritten (temp file +
  rename) for the items that are complete, also when the export fails part-way.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

from sqlalchemy.engine import Engine

from authentiq.contract.layout import LABELS_FILE, MANIFEST_FILE, NOT_A_PRODUCT
from authentiq.contract.report import ATTENTION_FILE, GateFinding, photo_of
from authentiq.contract.times import iso_utc
from authentiq.errors import AuthentiqError, DatasetError, ReportNotFound, TrainingExportFailed
from authentiq.storage.blobs import Blobs
from authentiq.storage.reviews import Reviewed, reviewed_reports

COLUMNS = ("item", "label", "brand", "model")
TRAINED = ("authentic", "counterfeit")
GATE_FINDINGS = get_args(GateFinding)  # an unusable photo's other reasons are the quality check's
PARTIAL = ".partial-"
MANIFEST_FORMAT = 1


@dataclass
class ExportSummary:
    out: Path
    tenant: str
    selected: int = 0
    written: Counter[str] = field(default_factory=Counter)  # label → new items
    relabelled: list[str] = field(default_factory=list)  # "<item>: old → new"
    unchanged: int = 0
    withdrawn: list[str] = field(default_factory=list)  # exported before, inconclusive now
    skipped: dict[str, list[str]] = field(default_factory=dict)  # why → report ids
    listed: Counter[str] = field(default_factory=Counter)  # label → rows in labels.csv now

    def skip(self, why: str, report_id: str) -> None:
        self.skipped.setdefault(why, []).append(report_id)


def export_reviewed(engine: Engine, blobs: Blobs, out: Path, *, tenant: str,
                    since: datetime | None = None, now: datetime | None = None,
                    progress: Callable[[int], None] | None = None) -> ExportSummary:
    """Export ``tenant``'s reviewed reports (reviewed at or after ``since``) into ``out``."""
    now = now or datetime.now(UTC)
    out.mkdir(parents=True, exist_ok=True)
    for leftover in out.glob(PARTIAL + "*"):  # a crashed earlier export's unfinished item
        shutil.rmtree(leftover, ignore_errors=True)
    rows = _read_rows(out)
    manifest = _read_manifest(out)
    items: dict[str, Any] = manifest.setdefault("items", {})
    summary = ExportSummary(out, tenant)
    try:
        for reviewed in reviewed_reports(engine, tenant=tenant, since=since):
            summary.selected += 1
            _export_one(reviewed, blobs, out, rows, items, summary)
            if progress is not None:
                progress(summary.selected)
    except (OSError, AuthentiqError) as exc:
        message = exc.detail if isinstance(exc, AuthentiqError) else f"{exc.strerror or exc}"
        raise TrainingExportFailed(f"the export stopped after {summary.selected - 1} report(s): "
                           f"{message}; the items written so far are complete and listed in "
                           f"{LABELS_FILE}; run the same command again to go on") from exc
    finally:
        summary.listed = Counter(r["label"] for r in rows.values())
        manifest.update({
            "format": MANIFEST_FORMAT, "tenant": tenant, "exported_at": iso_utc(now),
            "counts": dict(sorted(summary.listed.items())),
            "models": dict(sorted(Counter(i["automated"]["model"] for i in items.values()).items())),
        })
        manifest.setdefault("exports", []).append({
            "exported_at": iso_utc(now), "since": iso_utc(since), "selected": summary.selected,
            "written": sum(summary.written.values()), "relabelled": len(summary.relabelled),
            "withdrawn": len(summary.withdrawn),
            "skipped": {k: len(v) for k, v in summary.skipped.items()}})
        _write_atomic(out / LABELS_FILE, _labels_csv(rows))
        _write_atomic(out / MANIFEST_FILE, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return summary


def _export_one(reviewed: Reviewed, blobs: Blobs, out: Path, rows: dict[str, dict[str, str]],
                items: dict[str, Any], summary: ExportSummary) -> None:
    report, label = reviewed.report, reviewed.final_label
    item, body = report.id, report.body
    views = [v["view"] for v in body.get("views", [])]
    photos = {v: name for v in views if (name := photo_of(body.get("stored_files", []), v))}
    failed = any(not v.get("usable", True) and v.get("reason") not in GATE_FINDINGS
                 for v in body.get("views", []))
    why = _not_exported(label, bool(photos), failed)
    if why is not None:
        summary.skip(why, item)
        if item in rows:  # exported under an earlier label; not exportable under this one
            del rows[item]
            items.pop(item, None)
            shutil.rmtree(out / item, ignore_errors=True)
            summary.withdrawn.append(item)
        return
    if (out / item).is_dir():
        previous = rows.get(item, {}).get("label")
        if previous is not None and previous != label:
            summary.relabelled.append(f"{item}: {previous} → {label}")
        else:
            summary.unchanged += 1
    else:
        try:
            _write_item(blobs, out, item, photos)
        except ReportNotFound:
            summary.skip("photos missing from the blob store", item)
            return
        summary.written[label] += 1
    rows[item] = {"item": item, "label": label, "brand": report.brand, "model": report.model}
    items[item] = _provenance(reviewed, label, sorted(photos.values()))


def _not_exported(label: str, has_photos: bool, quality_failed: bool) -> str | None:
    """Why a reviewed report is not exported (None: it is)."""
    if label not in (*TRAINED, NOT_A_PRODUCT):
        return f"final verdict {label}: nobody decided"
    if not has_photos:
        return "no stored photos"
    if quality_failed and label != NOT_A_PRODUCT:  # a not-a-product item's photos are the point
        return "a photo failed the quality check (retake asked)"
    return None


def _write_item(blobs: Blobs, out: Path, item: str, photos: dict[str, str]) -> None:
    """The item's photos into a hidden partial folder, renamed into place when all are there."""
    partial = Path(tempfile.mkdtemp(prefix=f"{PARTIAL}{item}-", dir=out))
    try:
        for name in photos.values():
            (partial / name).write_bytes(blobs.get(item, name))
        os.replace(partial, out / item)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def _provenance(reviewed: Reviewed, label: str, photos: list[str]) -> dict[str, Any]:
    report, body = reviewed.report, reviewed.report.body
    classifier = body.get("classifier", {})
    return {
        "report_id": report.id, "label": label, "brand": report.brand, "model": report.model,
        "created_at": iso_utc(report.created_at), "client_ref": report.client_ref,
        "photos": [p for p in photos if p != ATTENTION_FILE],
        "automated": {"verdict": report.verdict, "p_counterfeit": report.p_counterfeit,
                      "model": report.classifier, "engine_id": classifier.get("engine_id")},
        "reviews": [{"seq": r.seq, "created_at": iso_utc(r.created_at), "reviewer": r.reviewer,
                     "key_id": r.key_id, "decision": r.decision, "verdict": r.verdict,
                     "finding": r.finding} for r in reviewed.reviews],
    }


def _read_rows(out: Path) -> dict[str, dict[str, str]]:
    """The rows an earlier export wrote (we wrote them: plain comma-separated UTF-8)."""
    path = out / LABELS_FILE
    if not path.exists():
        return {}
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != COLUMNS:
                raise DatasetError(f"{path} was not written by export-training-data (columns "
                                   f"{', '.join(reader.fieldnames or [])}); export into an empty "
                                   f"folder or one an earlier export made")
            return {r["item"]: {k: r[k] for k in COLUMNS} for r in reader}
    except (OSError, UnicodeDecodeError) as exc:  # a folder of that name, bytes not UTF-8
        raise DatasetError(f"{path} cannot be read ({exc}); export into an empty folder or one "
                           f"an earlier export made") from exc


def _read_manifest(out: Path) -> dict[str, Any]:
    path = out / MANIFEST_FILE
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path} cannot be read ({exc}); move it away to start a new "
                             f"manifest") from exc
    if not _whole_manifest(manifest):  # checked before anything is written, not half-way
        raise DatasetError(f"{path} is not an export manifest as export-training-data writes "
                           f"it; move it away to start a new manifest")
    return dict(manifest)


def _whole_manifest(manifest: object) -> bool:
    if not isinstance(manifest, dict):
        return False
    items, exports = manifest.get("items", {}), manifest.get("exports", [])
    return (isinstance(items, dict) and isinstance(exports, list)
            and all(isinstance(i, dict) and isinstance(i.get("automated"), dict)
                    and "model" in i["automated"] for i in items.values()))


def _labels_csv(rows: dict[str, dict[str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for item in sorted(rows):
        writer.writerow(rows[item])
    return buf.getvalue()


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
