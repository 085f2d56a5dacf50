"""The item folder layout that enrolment, calibration and training read: one folder per item,
one photo per view named after the view (``logo.jpg``, ``stitching.png``, ...), and a
``labels.csv`` naming each item's folder, label, brand and model.

``labels.csv`` is read as spreadsheets write it: UTF-8 with or without a byte-order mark (Excel's
"CSV UTF-8"), UTF-16 (Excel's "Unicode text"), or else Windows-1252 (Excel's plain "CSV", said
so in a warning); ``,``, ``;`` or tab separated (``csv.Sniffer``); headers in any case, with
spaces, and common aliases (``item_id``/``id`` for ``item``, ``class``/``verdict`` for ``label``
...); labels ``authentic``/``counterfeit`` or the usual synonyms (``genuine``, ``fake`` ...),
and ``not_a_product`` (a reviewer's decision, exported from reviews): such rows are set aside
(``LabelsFile.set_aside``), listed but never trained on or checked as training items.
Every problem is a message naming the file and line, never a traceback.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from authentiq.errors import DatasetError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
LABELS_FILE = "labels.csv"
MANIFEST_FILE = "manifest.json"  # what `authentiq export-training-data` exported, and from where
LABELS = ("authentic", "counterfeit")
# What a column may be called (after lower-casing and turning spaces and dashes into "_").
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "item": ("item", "item_id", "itemid", "item_folder", "folder", "id"),
    "label": ("label", "class", "verdict", "authenticity", "ground_truth"),
    "brand": ("brand", "brand_name", "make", "maker"),
    "model": ("model", "model_name", "product_model"),
}
SEPARATOR_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
# A reviewer's "not a product" (``authentiq export-training-data``): a label training sets aside
# (the item is neither authentic nor counterfeit); kept in ``LabelsFile.set_aside``, not ``rows``.
NOT_A_PRODUCT = "not_a_product"
SET_ASIDE_ALIASES = {"not_a_product": NOT_A_PRODUCT, "not a product": NOT_A_PRODUCT,
                     "not-a-product": NOT_A_PRODUCT}
LABEL_ALIASES: dict[str, str] = {
    **dict.fromkeys(("authentic", "genuine", "real", "original", "legit"), "authentic"),
    **dict.fromkeys(("counterfeit", "fake", "replica", "forgery", "counterfeited"), "counterfeit"),
}


def view_files(folder: Path) -> dict[str, Path]:
    """An item folder's photos by view name (file stem, lower case)."""
    return {p.stem.lower(): p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}


@dataclass(frozen=True)
class LabelRow:
    """One row of ``labels.csv``; ``label`` is canonical (``authentic``/``counterfeit``) or None
    where the file has no label column."""

    line: int
    item: str  # the item's folder, relative to the CSV's folder, with "/" separators
    label: str | None
    brand: str
    model: str
    values: dict[str, str]  # every column by its normalised header (source, notes, defects ...)


@dataclass
class LabelsFile:
    path: Path
    encoding: str  # as a person would name it: "UTF-8", "UTF-8 with BOM", ...
    delimiter: str
    columns: dict[str, str]  # canonical name → the header as written
    ignored: list[str]  # headers no part of the layout reads
    rows: list[LabelRow] = field(default_factory=list)
    set_aside: list[LabelRow] = field(default_factory=list)  # labelled not_a_product: not trained on
    listed: set[str] = field(default_factory=set)  # every item named, in good rows or not
    errors: list[str] = field(default_factory=list)  # "labels.csv:7: ...", one per problem
    warnings: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line on how the file was read (for reports)."""
        sep = SEPARATOR_NAMES.get(self.delimiter, repr(self.delimiter))
        cols = ", ".join(k if v == k else f"{k} = {v!r}" for k, v in self.columns.items())
        ignored = f"; ignored: {', '.join(self.ignored)}" if self.ignored else ""
        return f"{self.path.name}: {self.encoding}, {sep}-separated; columns {cols}{ignored}"


def normalise_header(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def read_labels(path: Path, required: Sequence[str] = ("item",)) -> LabelsFile:
    """Read a ``labels.csv`` tolerantly (see the module's doc). A file that cannot be read at all,
    or lacks a ``required`` column, raises :class:`DatasetError`; row problems are collected in
    ``errors`` (the caller decides), never raised one at a time."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    text, encoding, notes = _decode(raw, path)
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise DatasetError(f"{path}: the file is empty; expected a header such as "
                           f"item,label,brand,model")
    delimiter = _delimiter(lines)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(row for row in reader if any(c.strip() for c in row))
    columns, ignored = _columns(header, path)
    missing = [c for c in required if c not in columns]
    if missing:
        raise DatasetError(
            f"{path}: no {' or '.join(repr(m) for m in missing)} column; the header reads "
            f"{', '.join(repr(h) for h in header)} ({SEPARATOR_NAMES.get(delimiter, delimiter)}-"
            f"separated); accepted names: "
            + "; ".join(f"{c}: {', '.join(COLUMN_ALIASES[c])}" for c in missing))
    out = LabelsFile(path, encoding, delimiter, columns, ignored, warnings=notes)
    seen: dict[str, int] = {}
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue  # blank lines, or a spreadsheet's empty rows (";;;")
        n = reader.line_num
        where = f"{path.name}:{n}"
        if any(c.strip() for c in cells[len(header):]):
            out.warnings.append(f"{where}: more values than columns (a separator inside an "
                                f"unquoted value?); the extra values are ignored")
        values = {normalise_header(h): c.strip() for h, c in zip(header, cells, strict=False)
                  if h.strip()}
        row = {k: values.get(normalise_header(v), "") for k, v in columns.items()}
        out.listed.add(row["item"].replace("\\", "/").strip("/"))
        problem = _row_problem(row, columns, seen)
        if problem:
            out.errors.append(f"{where}: {problem}")
            continue
        item = row["item"].replace("\\", "/").strip("/")
        seen[item] = n
        label = row["label"].lower() if "label" in columns else None
        if label in SET_ASIDE_ALIASES:
            out.set_aside.append(LabelRow(n, item, NOT_A_PRODUCT, row.get("brand", ""),
                                          row.get("model", ""), values))
            continue
        label = LABEL_ALIASES[label] if label is not None else None
        out.rows.append(LabelRow(n, item, label, row.get("brand", ""), row.get("model", ""), values))
    return out


def _row_problem(row: dict[str, str], columns: dict[str, str], seen: dict[str, int]) -> str | None:
    item = row["item"].replace("\\", "/").strip("/")
    if not item:
        return f"no item (the {columns['item']!r} column is empty)"
    if row["item"].startswith(("/", "\\")) or ".." in PurePosixPath(item).parts or \
            re.match(r"^[A-Za-z]:", item):
        return f"item {item!r} must name a folder beside {LABELS_FILE}, not a path outside it"
    if item in seen:
        return f"item {item!r} is listed twice (also on line {seen[item]})"
    if "label" in columns:
        label = row["label"]
        if not label:
            return f"item {item!r} has no label (authentic or counterfeit)"
        if label.lower() not in LABEL_ALIASES and label.lower() not in SET_ASIDE_ALIASES:
            others = ", ".join(a for a in LABEL_ALIASES if a not in LABELS)
            return (f"label {label!r} of item {item!r} is not authentic or counterfeit "
                    f"(also accepted: {others}; {NOT_A_PRODUCT} is set aside)")
    return None


def _decode(raw: bytes, path: Path) -> tuple[str, str, list[str]]:
    if raw.startswith(codecs.BOM_UTF8):
        return raw[len(codecs.BOM_UTF8):].decode("utf-8", errors="replace"), "UTF-8 with BOM", []
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16"), "UTF-16", []
    try:
        return raw.decode("utf-8"), "UTF-8", []
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        return raw.decode("cp1252", errors="replace"), "Windows-1252", [
            f"{path.name}:{line}: not UTF-8; read as Windows-1252 (Excel's plain CSV). Save it "
            f"as \"CSV UTF-8\" to be sure accented names read right"]


def _delimiter(lines: list[str]) -> str:
    sample = "\n".join(lines[:50])
    try:
        found = csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        found = ""
    counts = {d: lines[0].count(d) for d in ",;\t"}
    if not found or counts.get(found, 0) == 0:  # Sniffer guessed from the rows, not the header
        found = max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","
    return found


def _columns(header: list[str], path: Path) -> tuple[dict[str, str], list[str]]:
    """canonical name → header as written; and the headers nothing reads (kept in values)."""
    by_name = {normalise_header(h): h for h in header if h.strip()}
    columns: dict[str, str] = {}
    for canonical, aliases in COLUMN_ALIASES.items():
        if canonical in by_name:
            columns[canonical] = by_name[canonical]
            continue
        found = [by_name[a] for a in aliases if a in by_name]
        if len(found) > 1:
            raise DatasetError(f"{path}: columns {', '.join(repr(f) for f in found)} could each "
                               f"be the {canonical}; rename the right one to {canonical!r}")
        if found:
            columns[canonical] = found[0]
    claimed = {normalise_header(v) for v in columns.values()} | {"source", "notes", "defects"}
    return columns, [h for h in header if h.strip() and normalise_header(h) not in claimed]
