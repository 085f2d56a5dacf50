"""``authentiq dataset check DIR``: is a folder of photos fit to train on? Everything wrong with it,
as findings that name the file, before any training starts.

It reads the folder exactly as training does (:func:`authentiq.modelling.datasets.scan_items`,
the split of :mod:`authentiq.modelling.splits`) and decodes every photo with the server's own
decoder and quality check. *Errors* are what training would refuse or what would make its figures
wrong (unreadable photos, photos too small for the model's tiles, missing required views, one
class only, a split without both classes, the same photo in the training and the test split);
*warnings* are worth a look (near-duplicates, photos the service would ask to retake, stray files,
an unbalanced or small dataset, no products).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from authentiq.contract.layout import IMAGE_SUFFIXES, LABELS_FILE, MANIFEST_FILE
from authentiq.modelling import splits as splitting
from authentiq.modelling.dataset_photos import Photo, analyse, duplicates
from authentiq.modelling.datasets import LABELS, FolderScan, LabelledItem, scan_items
from authentiq.settings import QualitySettings

Level = Literal["error", "warning"]
MIN_CLASS_SHARE = 0.2  # below this share of the items, a class is "badly unbalanced"
SMALL_CLASS = 50  # fewer items of a class than this: fine to try the workflow, not to serve
IGNORED_NAMES = {"thumbs.db", "desktop.ini", "__macosx"}  # operating systems' litter
# The order findings are listed in, and each kind's heading.
KINDS = {
    "labels": "labels and item folders", "splits": "splits", "balance": "class balance",
    "products": "products", "views": "views", "unreadable": "unreadable or corrupt photos",
    "tiny": "tiny photos", "quality": "photos the service would ask to retake",
    "duplicate": "identical photos", "near_duplicate": "near-duplicate photos",
    "stray": "stray files (not used)",
}


@dataclass(frozen=True)
class Finding:
    level: Level
    kind: str  # one of KINDS
    where: str  # the file or folder at fault, relative to the dataset; "" for the whole dataset
    message: str

    def text(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


@dataclass
class DatasetReport:
    root: Path
    scan: FolderScan
    views: tuple[str, ...]
    optional: tuple[str, ...]
    splits: splitting.Splits | None  # None while some item has no split (a pinned file's gap)
    photos: list[Photo] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def items(self) -> list[LabelledItem]:
        return self.scan.items

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    def failed(self, strict: bool = False) -> bool:
        return bool(self.errors or (strict and self.warnings))

    def add(self, level: Level, kind: str, where: str, message: str) -> None:
        self.findings.append(Finding(level, kind, where, message))

    def class_counts(self) -> dict[str, int]:
        counts = Counter(LABELS[it.label] for it in self.items)
        return {label: counts[label] for label in LABELS}

    def product_counts(self) -> dict[tuple[str, str], dict[str, int]]:
        out: dict[tuple[str, str], dict[str, int]] = {}
        names: dict[str, tuple[str, str]] = {}
        for it in self.items:
            key = splitting.product_of(it)
            name = names.setdefault(key, (it.brand, it.model))
            out.setdefault(name, dict.fromkeys(LABELS, 0))[LABELS[it.label]] += 1
        return dict(sorted(out.items()))

    def view_counts(self) -> dict[str, tuple[int, int]]:
        """view → (photos, items without one)."""
        have = Counter(p.view for p in self.photos)
        return {v: (have[v], len(self.items) - have[v]) for v in self.views}

    def as_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "labels": self.scan.labels.describe() if self.scan.labels else None,
            "items": len(self.items), "photos": len(self.photos),
            "set_aside": len(self.scan.labels.set_aside) if self.scan.labels else 0,
            "classes": self.class_counts(),
            "products": [{"brand": b, "model": m, **c} for (b, m), c in self.product_counts().items()],
            "views": {v: {"photos": n, "missing": k, "required": v not in self.optional}
                      for v, (n, k) in self.view_counts().items()},
            "splits": ({"source": self.splits.source,
                        "plan": self.splits.plan.describe() if self.splits.plan else None,
                        "counts": self.splits.counts(self.items)} if self.splits else None),
            "errors": [asdict(f) for f in self.errors],
            "warnings": [asdict(f) for f in self.warnings],
        }


def check_dataset(root: Path, *, views: Sequence[str], optional: Sequence[str],
                  plan: splitting.SplitPlan, quality: QualitySettings, tile_size: int = 128,
                  workers: int | None = None, pinned: bool = True,
                  progress: Callable[[int, int], None] | None = None) -> DatasetReport:
    """Check the dataset at ``root`` (see the module's doc); raises :class:`DatasetError` only
    when the folder or its labels.csv cannot be read at all. ``pinned=False`` ignores a
    ``splits.json`` there and splits per ``plan``."""
    scan = scan_items(root)
    report = DatasetReport(root, scan, tuple(views), tuple(v for v in optional if v in views), None)
    found: tuple[tuple[Level, list[str]], ...] = (("error", scan.errors), ("warning", scan.warnings))
    for level, messages in found:
        for message in messages:
            where, sep, rest = message.partition(": ")
            named = sep and where.startswith((LABELS_FILE, *(f"{label}/" for label in LABELS)))
            report.add(level, "labels", where if named else "", rest if named else message)
    _check_strays(report)
    report.photos = analyse(root, _collect_photos(report), tile_size, quality, workers, progress)
    _check_photos(report, tile_size, quality)
    _check_splits(report, plan, pinned)
    _check_balance(report)
    _check_products(report)
    _check_duplicates(report)
    order = list(KINDS)
    report.findings.sort(key=lambda f: (f.level != "error", order.index(f.kind), _natural(f.where)))
    return report


def _natural(text: str) -> list[tuple[int, str]]:
    """Sort key reading numbers as numbers (labels.csv:9 before labels.csv:10)."""
    return [(int(part), "") if part.isdigit() else (-1, part) for part in re.split(r"(\d+)", text)]


def _ignored(p: Path) -> bool:
    return p.name.startswith(".") or p.name.lower() in IGNORED_NAMES


def _rel(report: DatasetReport, p: Path) -> str:
    return p.relative_to(report.root).as_posix()


def _check_strays(report: DatasetReport) -> None:
    root = report.root
    if report.scan.labels is not None:
        used = {name.split("/", 1)[0] for name in report.scan.labels.listed}
        expected = {LABELS_FILE, splitting.SPLITS_FILE, MANIFEST_FILE}
    else:
        used, expected = set(LABELS), {splitting.SPLITS_FILE}
        for label in LABELS:
            base = root / label
            for p in sorted(base.iterdir()) if base.is_dir() else []:
                if not p.is_dir() and not _ignored(p):
                    report.add("warning", "stray", _rel(report, p),
                               f"a file among the item folders of {label}/")
    for p in sorted(root.iterdir()):
        if _ignored(p) or p.name in expected or p.name in used:
            continue
        if p.is_dir():
            report.add("warning", "stray", f"{p.name}/", f"a folder {LABELS_FILE} does not list"
                       if report.scan.labels is not None else
                       "not authentic/ or counterfeit/ (items are read from those two only)")
        else:
            report.add("warning", "stray", p.name, "a file training does not read")


def _collect_photos(report: DatasetReport) -> list[Photo]:
    """Each item's photos by view; views that are missing or twice; files that are not views."""
    photos = []
    names = ", ".join(report.views)
    for it in report.items:
        by_view: dict[str, list[Path]] = defaultdict(list)
        for p in sorted(it.folder.iterdir()):
            if _ignored(p):
                continue
            rel = _rel(report, p)
            if p.is_dir():
                report.add("warning", "stray", rel + "/", "a folder inside an item folder")
            elif p.suffix.lower() not in IMAGE_SUFFIXES:
                report.add("warning", "stray", rel, f"not a photo training reads "
                           f"({', '.join(IMAGE_SUFFIXES)})")
            elif p.stem.lower() not in report.views:
                report.add("warning", "stray", rel, f"{p.stem!r} is not a view, so this photo "
                           f"is not used; name each photo after its view ({names})")
            else:
                by_view[p.stem.lower()].append(p)
        for view in report.views:
            files = by_view.get(view, [])
            if len(files) > 1:
                report.add("error", "views", _rel(report, files[0]),
                           f"{len(files)} photos for the {view} view in {it.name}/ "
                           f"({', '.join(f.name for f in files)}); keep one")
            if files:
                photos.append(Photo(it.name, view, _rel(report, files[0])))
            elif view not in report.optional:
                report.add("error", "views", it.name + "/",
                           f"no {view} photo ({view} is a required view; found: "
                           f"{', '.join(sorted(by_view)) or 'no photos'})")
    return photos


def _check_photos(report: DatasetReport, tile_size: int, quality: QualitySettings) -> None:
    for p in report.photos:
        if p.unreadable is not None:
            report.add("error", "unreadable", p.path, p.unreadable)
        elif min(p.width, p.height) < tile_size:
            report.add("error", "tiny", p.path,
                       f"{p.width}×{p.height} px: smaller than the model's {tile_size} px tiles, so "
                       f"there is nothing to learn from; retake it (at least "
                       f"{quality.min_side} px on the short side)")
        elif p.retake == "too_small":
            report.add("warning", "tiny", p.path,
                       f"{p.width}×{p.height} px: the service refuses photos under "
                       f"{quality.min_side} px on the short side (AUTHENTIQ_MIN_SIDE), so the model "
                       f"would learn from photos it is never shown")
        elif p.retake is not None:
            report.add("warning", "quality", p.path, f"{p.retake}: {p.retake_message}")


def _check_splits(report: DatasetReport, plan: splitting.SplitPlan, pinned: bool) -> None:
    if not report.items:
        return
    splits, errors, warnings = splitting.splits_for(report.root, report.items, plan, pinned=pinned)
    for message in errors:
        report.add("error", "splits", "", message)
    for message in warnings:
        report.add("warning", "splits", "", message)
    if errors:
        return
    report.splits = splits
    for message in splitting.problems(report.items, splits):
        report.add("error", "splits", "", message)


def _check_balance(report: DatasetReport) -> None:
    counts = report.class_counts()
    total = sum(counts.values())
    if not total:
        return
    absent = [label for label, n in counts.items() if n == 0]
    if absent:
        present = next(label for label in LABELS if label not in absent)
        report.add("error", "balance", "",
                   f"one class only: {total} {present} items and no {absent[0]} ones; a "
                   f"counterfeit detector needs both")
        return
    minority = min(counts, key=lambda label: counts[label])
    share = counts[minority] / total
    if share < MIN_CLASS_SHARE:
        report.add("warning", "balance", "",
                   f"badly unbalanced: {minority} is {share:.0%} of the items ({counts[minority]} "
                   f"of {total}); aim for at least {MIN_CLASS_SHARE:.0%} so that the model does "
                   f"not learn to answer the majority")
    small = [f"{n} {label}" for label, n in counts.items() if n < SMALL_CLASS]
    if small:
        report.add("warning", "balance", "",
                   f"few items ({', '.join(small)}): enough to try the workflow, far too few for a "
                   f"model worth serving (hundreds per product and class)")


def _check_products(report: DatasetReport) -> None:
    labels = report.scan.labels
    if not report.items:
        return
    if labels is None or not {"brand", "model"} <= set(labels.columns):
        report.add("warning", "products", LABELS_FILE if labels else "",
                   "no brand and model columns: the trained model will declare no products; "
                   "create them with `authentiq products add BRAND MODEL` before enrolling "
                   "references")
        return
    for it in report.items:
        if not (it.brand and it.model):
            report.add("warning", "products", it.where,
                       f"item {it.name!r} has no {'brand' if not it.brand else 'model'}")
    one_class = [f"{b} / {m} ({'only ' + next(k for k, n in c.items() if n)})"
                 for (b, m), c in report.product_counts().items()
                 if (b or m) and 0 in c.values()]
    if one_class:
        report.add("warning", "products", "",
                   f"{len(one_class)} product(s) with items of one class only: "
                   f"{_few(one_class)}; the model cannot learn what tells that product's genuine "
                   f"and counterfeit items apart")


def _check_duplicates(report: DatasetReport) -> None:
    """One finding per pair of items sharing identical or near-duplicate photos; an error where
    an identical copy crosses labels or splits. Two views of one item being one photo: a warning."""
    items = {it.name: it for it in report.items}
    split = report.splits.assignment if report.splits else {}
    pairs, within = duplicates(report.photos, report.views)
    for a, b in within:
        report.add("warning", "duplicate", a.path, f"the same photo as {b.path}: one item, two views")
    for (first, second), found in sorted(pairs.items()):
        _pair_finding(report, items[first], items[second], split, found)


def _pair_finding(report: DatasetReport, a: LabelledItem, b: LabelledItem, split: dict[str, str],
                  found: list[tuple[Photo, Photo, int | None]]) -> None:
    exact = [f for f in found if f[2] is None]
    shown = exact or found
    photos = "; ".join(f"{x.path} {'=' if bits is None else '≈'} {y.path}"
                       + ("" if bits is None else f" ({bits} of 256 bits apart)")
                       for x, y, bits in shown[:3]) + (f"; and {len(shown) - 3} more"
                                                        if len(shown) > 3 else "")
    la, lb = LABELS[a.label], LABELS[b.label]
    sa, sb = split.get(a.name), split.get(b.name)
    what = "identical" if exact else "near-duplicate"
    kind = "duplicate" if exact else "near_duplicate"
    where = shown[0][0].path
    if la != lb:
        report.add("error" if exact else "warning", kind, where,
                   f"{what} photos labelled {la} ({a.name}) and {lb} ({b.name}): {photos}; "
                   f"one label is wrong, or one photo is")
    elif sa and sb and sa != sb:
        report.add("error" if exact else "warning", kind, where,
                   f"{what} photos across splits, {a.name} ({sa}) and {b.name} ({sb}): {photos}; "
                   f"the {'test' if 'test' in (sa, sb) else 'validation'} figures would score "
                   f"photos the model trained on — remove one, or put both items in one split "
                   f"(splits.json)")
    else:
        report.add("warning", kind, where,
                   f"{what} photos in {a.name} and {b.name}"
                   + (f" (both {sa})" if sa else "") + f": {photos}; the same item twice?")


def _few(names: Sequence[str], shown: int = 5) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
