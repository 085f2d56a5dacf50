"""`authentiq dataset check` on a valid synthetic folder and a suite of broken ones: each break
gives its own finding, at the right level, naming the file."""

from __future__ import annotations

import codecs
import csv
import io
import shutil
from pathlib import Path

import pytest
from PIL import Image

from authentiq.errors import DatasetError
from authentiq.modelling import splits
from authentiq.modelling.dataset_check import DatasetReport, Finding, check_dataset
from authentiq.modelling.datasets import scan_items
from authentiq.modelling.synthetic import VIEWS
from authentiq.settings import QualitySettings
from tests.conftest import copy_dataset

pytestmark = pytest.mark.db_independent  # the PostgreSQL pass leaves it out


def check(root: Path, **options: object) -> DatasetReport:
    kwargs: dict[str, object] = {"views": VIEWS, "optional": ("interior",),
                                 "plan": splits.SplitPlan(), "quality": QualitySettings(),
                                 "workers": 1}
    kwargs.update(options)
    return check_dataset(root, **kwargs)  # type: ignore[arg-type]


def only(report: DatasetReport, kind: str, level: str | None = None) -> list[Finding]:
    return [f for f in report.findings if f.kind == kind and (level is None or f.level == level)]


def rows_of(root: Path) -> list[dict[str, str]]:
    with (root / "labels.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def write_rows(root: Path, rows: list[dict[str, str]], *, delimiter: str = ",",
               encoding: str = "utf-8", header: list[str] | None = None) -> None:
    names = list(rows[0])
    with (root / "labels.csv").open("w", newline="", encoding=encoding) as fh:
        w = csv.writer(fh, delimiter=delimiter)
        w.writerow(header or names)
        for row in rows:
            w.writerow([row[n] for n in names])


@pytest.fixture
def folder(small_dataset: Path, tmp_path: Path) -> Path:
    return copy_dataset(small_dataset, tmp_path / "photos")


def test_a_valid_folder_has_no_errors_and_counts_everything(small_dataset: Path) -> None:
    report = check(small_dataset)
    assert report.errors == []
    assert report.class_counts() == {"authentic": 7, "counterfeit": 5}
    assert len(report.photos) == 12 * 6 and report.view_counts()["logo"] == (12, 0)
    assert len(report.product_counts()) == 6
    assert report.splits is not None and report.splits.source == "computed"
    counts = report.splits.counts(report.items)
    assert all(counts[s]["authentic"] and counts[s]["counterfeit"] for s in splits.NAMES)
    # A dozen items is said to be few; nothing else is wrong.
    assert {f.kind for f in report.warnings} <= {"balance", "products"}
    assert any("few items" in f.message for f in only(report, "balance"))


def test_a_spreadsheet_csv_with_bom_semicolons_and_other_headers_reads_the_same(folder: Path) -> None:
    rows = rows_of(folder)
    write_rows(folder, rows, delimiter=";", encoding="utf-8-sig",
               header=["Item ID", "Verdict", "Brand", "Model", "Defects"])
    assert (folder / "labels.csv").read_bytes().startswith(codecs.BOM_UTF8)
    report = check(folder)
    assert report.errors == [] and len(report.items) == 12
    assert report.scan.labels is not None
    assert "UTF-8 with BOM, semicolon-separated" in report.scan.labels.describe()
    assert report.class_counts() == {"authentic": 7, "counterfeit": 5}


def test_one_class_only_is_an_error(folder: Path) -> None:
    rows = rows_of(folder)
    write_rows(folder, [{**r, "label": "authentic"} for r in rows])
    report = check(folder)
    [balance] = only(report, "balance", "error")
    assert balance.message.startswith("one class only: 12 authentic items and no counterfeit ones")
    assert any("no counterfeit item" in f.message for f in only(report, "splits", "error"))


def test_a_badly_unbalanced_folder_is_warned_about(folder: Path) -> None:
    rows = rows_of(folder)
    counterfeit = [r for r in rows if r["label"] == "counterfeit"]
    write_rows(folder, [{**r, "label": "authentic"} if r in counterfeit[2:] else r for r in rows])
    report = check(folder)
    [unbalanced] = [f for f in only(report, "balance", "warning") if "unbalanced" in f.message]
    assert "counterfeit is 17% of the items (2 of 12)" in unbalanced.message
    # Two counterfeit items cannot fill three splits: training would refuse, so the check does.
    assert any("no counterfeit item" in f.message for f in only(report, "splits", "error"))


def test_tiny_photos_are_named(folder: Path) -> None:
    Image.new("RGB", (40, 30), (120, 80, 60)).save(folder / "item-0000003" / "logo.jpg")
    Image.new("RGB", (200, 150), (120, 80, 60)).save(folder / "item-0000004" / "label.jpg")
    report = check(folder)
    [tiny] = only(report, "tiny", "error")
    assert tiny.where == "item-0000003/logo.jpg" and tiny.message.startswith("40×30 px")
    [small] = only(report, "tiny", "warning")
    assert small.where == "item-0000004/label.jpg" and "refuses photos under 256 px" in small.message


def test_corrupt_and_unreadable_photos_are_named(folder: Path) -> None:
    logo = folder / "item-0000005" / "logo.jpg"
    logo.write_bytes(logo.read_bytes()[:300])  # a truncated JPEG
    (folder / "item-0000006" / "label.jpg").write_bytes(b"this is not a photo")
    (folder / "item-0000007" / "hardware.jpg").write_bytes(b"")
    report = check(folder)
    found = {f.where: f.message for f in only(report, "unreadable", "error")}
    assert set(found) == {"item-0000005/logo.jpg", "item-0000006/label.jpg",
                          "item-0000007/hardware.jpg"}
    assert found["item-0000007/hardware.jpg"] == "an empty file (0 bytes)"
    assert all(m for m in found.values())


def test_stray_files_are_listed_and_system_litter_is_not(folder: Path) -> None:
    (folder / "notes.txt").write_text("to do")
    (folder / "old-batch").mkdir()
    (folder / ".DS_Store").write_bytes(b"\0")
    item = folder / "item-0000000"
    shutil.copy(item / "logo.jpg", item / "IMG_0001.jpg")
    (item / "readme.txt").write_text("x")
    (item / "Thumbs.db").write_bytes(b"\0")
    report = check(folder)
    strays = {f.where: f.message for f in only(report, "stray")}
    assert set(strays) == {"notes.txt", "old-batch/", "item-0000000/IMG_0001.jpg",
                           "item-0000000/readme.txt"}
    assert "'IMG_0001' is not a view" in strays["item-0000000/IMG_0001.jpg"]
    assert all(f.level == "warning" for f in only(report, "stray"))
    assert report.errors == []


def _two_items_in_different_splits(root: Path) -> tuple[str, str, str, str]:
    """(train item, test item, their label) sharing a label."""
    items = scan_items(root).items
    assignment = splits.compute(items, splits.SplitPlan()).assignment
    for label in (0, 1):
        train = [it.name for it in items if it.label == label and assignment[it.name] == "train"]
        test = [it.name for it in items if it.label == label and assignment[it.name] == "test"]
        if train and test:
            return train[0], test[0], "train", "test"
    raise AssertionError("no label has both a training and a test item")


def test_an_identical_photo_across_splits_is_an_error(folder: Path) -> None:
    train, test, _, _ = _two_items_in_different_splits(folder)
    shutil.copy(folder / train / "stitching.jpg", folder / test / "stitching.jpg")
    report = check(folder)
    [dup] = only(report, "duplicate")
    assert dup.level == "error"
    assert f"{train} (train) and {test} (test)" in dup.message
    assert f"{train}/stitching.jpg = {test}/stitching.jpg" in dup.message


def test_a_near_duplicate_across_splits_is_a_warning(folder: Path) -> None:
    train, test, _, _ = _two_items_in_different_splits(folder)
    img = Image.open(folder / train / "hardware.jpg")
    buf = io.BytesIO()
    img.resize((img.width * 3 // 2, img.height * 3 // 2)).save(buf, "JPEG", quality=70)
    (folder / test / "hardware.jpg").write_bytes(buf.getvalue())
    report = check(folder)
    [near] = only(report, "near_duplicate")
    assert near.level == "warning" and "across splits" in near.message
    assert f"{train}/hardware.jpg ≈ {test}/hardware.jpg" in near.message
    assert only(report, "duplicate") == []


def test_the_same_photo_in_two_views_of_one_item(folder: Path) -> None:
    item = folder / "item-0000009"
    shutil.copy(item / "logo.jpg", item / "label.jpg")
    [dup] = only(check(folder), "duplicate")
    assert dup.level == "warning" and "one item, two views" in dup.message


def test_missing_and_doubled_views(folder: Path) -> None:
    (folder / "item-0000002" / "stitching.jpg").unlink()
    (folder / "item-0000004" / "interior.jpg").unlink()  # optional: counted, not an error
    shutil.copy(folder / "item-0000005" / "logo.jpg", folder / "item-0000005" / "logo.png")
    report = check(folder)
    views = {f.where: f.message for f in only(report, "views", "error")}
    assert set(views) == {"item-0000002/", "item-0000005/logo.jpg"}
    assert views["item-0000002/"].startswith("no stitching photo (stitching is a required view")
    assert "2 photos for the logo view" in views["item-0000005/logo.jpg"]
    assert report.view_counts()["interior"] == (11, 1)


def test_label_rows_and_item_folders(folder: Path) -> None:
    rows = rows_of(folder)
    rows[1]["label"] = "maybe"
    rows.append({**rows[0], "item": "item-9999999"})
    rows.append({**rows[2]})
    rows.append({**rows[3], "item": "../elsewhere"})
    write_rows(folder, rows)
    report = check(folder)
    found = [(f.where, f.message) for f in only(report, "labels", "error")]
    assert [w for w, _ in found] == ["labels.csv:3", "labels.csv:14", "labels.csv:15", "labels.csv:16"]
    assert found[0][1].startswith("label 'maybe' of item 'item-0000002' is not authentic or "
                                  "counterfeit (also accepted: genuine,")
    assert found[1][1] == "no folder item-9999999/ for item 'item-9999999'"
    assert found[2][1] == "item 'item-0000003' is listed twice (also on line 4)"
    assert "'../elsewhere' must name a folder beside labels.csv" in found[3][1]
    assert only(report, "stray") == []  # item-0000002 is listed, if wrongly


def test_a_csv_without_a_label_column_is_refused_readably(folder: Path) -> None:
    (folder / "labels.csv").write_text("item;brand;model\nitem-0000000;Verlaine;Amande\n")
    with pytest.raises(DatasetError, match=r"no 'label' column; the header reads 'item', 'brand', "
                                           r"'model' \(semicolon-separated\); accepted names: label"):
        check(folder)


def test_no_products_named_is_a_warning(folder: Path) -> None:
    rows = [{"item": r["item"], "label": r["label"]} for r in rows_of(folder)]
    write_rows(folder, rows)
    [products] = only(check(folder), "products")
    assert products.level == "warning" and "authentiq products add BRAND MODEL" in products.message


def test_the_folder_layout_without_a_csv(folder: Path, tmp_path: Path) -> None:
    layout = tmp_path / "by-label"
    for row in rows_of(folder):
        shutil.copytree(folder / row["item"], layout / row["label"] / row["item"])
    (layout / "unsure").mkdir()
    report = check(layout)
    assert report.errors == [] and report.class_counts() == {"authentic": 7, "counterfeit": 5}
    assert [f.where for f in only(report, "stray")] == ["unsure/"]
    assert any("no brand and model columns" in f.message for f in only(report, "products"))


def test_a_pinned_split_is_used_and_its_gaps_are_errors(folder: Path) -> None:
    report = check(folder, plan=splits.SplitPlan(seed=7))
    assert report.splits is not None
    report.splits.write(folder / splits.SPLITS_FILE, report.items)
    again = check(folder)  # seed 0 asked, but the pinned seed-7 split wins
    assert again.splits is not None and again.splits.source.endswith("splits.json")
    assert again.splits.assignment == report.splits.assignment
    shutil.copytree(folder / "item-0000000", folder / "item-0000099")
    with (folder / "labels.csv").open("a", newline="") as fh:
        csv.writer(fh).writerow(["item-0000099", "authentic", "Verlaine", "Amande", ""])
    gap = check(folder)
    assert gap.splits is None
    [error] = only(gap, "splits", "error")
    assert "1 item(s) not assigned to a split: item-0000099" in error.message
    assert check(folder, pinned=False).splits is not None  # --write-splits splits afresh
