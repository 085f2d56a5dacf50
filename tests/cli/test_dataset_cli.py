"""`authentiq dataset check` as a person runs it: the printed report and the exit status."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from authentiq.cli import main
from tests.conftest import copy_dataset


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["dataset", "check", *args, "--workers", "1"])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_good_folder_passes_with_its_tables(small_dataset: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(small_dataset), "--quiet")
    assert code == 0, out
    assert out.startswith(f"Dataset check: {small_dataset}\n")
    assert "labels  labels.csv: UTF-8, comma-separated; columns item, label, brand, model" in out
    assert "items   12 (7 authentic, 5 counterfeit), 6 product(s), 72 photos" in out
    assert "splits  by item, seed 0, validation 15%, test 15% (pin with --write-splits)" in out
    assert "  interior           12        0  (optional)" in out
    assert "errors (" not in out and out.rstrip().endswith("warning(s) to look at.")
    assert "Traceback" not in out + err


def test_warnings_fail_only_with_strict(small_dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(small_dataset), "--quiet", "--strict")
    assert code == 1 and out.rstrip().splitlines()[-1].startswith("FAILED (--strict): ")


def test_a_broken_folder_fails_naming_each_file(small_dataset: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    folder = copy_dataset(small_dataset, tmp_path / "photos")
    Image.new("RGB", (40, 30)).save(folder / "item-0000003" / "logo.jpg")
    (folder / "item-0000004" / "label.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    (folder / "item-0000005" / "overall.jpg").unlink()
    code, out, err = run(capsys, str(folder), "--quiet")
    assert code == 1
    assert "errors (3):" in out
    assert "    item-0000003/logo.jpg: 40×30 px: smaller than the model's 128 px tiles" in out
    assert "    item-0000004/label.jpg: " in out
    assert "    item-0000005/: no overall photo (overall is a required view" in out
    assert re.search(r"\nFAILED: 3 error\(s\), \d+ warning\(s\); fix the errors before training\.$",
                     out.rstrip())
    assert "Traceback" not in out + err
    report = json.loads(run(capsys, str(folder), "--json")[1])
    assert {e["where"] for e in report["errors"]} == {"item-0000003/logo.jpg", "item-0000004/label.jpg",
                                                      "item-0000005/"}
    assert report["classes"] == {"authentic": 7, "counterfeit": 5}


def test_write_splits_pins_the_split(small_dataset: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    folder = copy_dataset(small_dataset, tmp_path / "photos")
    code, _, err = run(capsys, str(folder), "--quiet", "--write-splits", "--seed", "4")
    assert code == 0 and f"wrote {folder / 'splits.json'}: 12 items" in err
    pinned = json.loads((folder / "splits.json").read_text())
    assert pinned["plan"]["seed"] == 4 and len(pinned["items"]) == 12
    code, out, _ = run(capsys, str(folder), "--quiet")
    assert code == 0 and f"splits  pinned in {folder / 'splits.json'}" in out


def test_an_unreadable_folder_or_csv_is_one_line_and_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(tmp_path / "nowhere"))
    assert (code, out, err.strip()) == (2, "", f"error: dataset folder not found: {tmp_path / 'nowhere'}")
    (tmp_path / "labels.csv").write_text("item,brand\nitem-1,Castellan\n")
    code, out, err = run(capsys, str(tmp_path))
    assert code == 2 and out == ""
    assert err.startswith(f"error: {tmp_path / 'labels.csv'}: no 'label' column; the header reads "
                          f"'item', 'brand' (comma-separated)")


def test_bad_option_values_are_refused_by_name(capsys: pytest.CaptureFixture[str],
                                               small_dataset: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["dataset", "check", str(small_dataset), "--val-share", "0.7"])
    assert exit_.value.code == 2
    assert "argument --val-share: 0.7 must lie between 0 and 0.5" in capsys.readouterr().err


def test_a_folder_without_items_says_so_without_empty_tables(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(tmp_path), "--quiet")
    assert code == 1
    assert out.splitlines()[4:7] == ["errors (1):", "  labels and item folders (1):",
                                     f"    {tmp_path}: no items found; expected labels.csv or "
                                     f"authentic/ and counterfeit/ folders"]
    assert "view " not in out and "warnings" not in out


def test_other_views_and_none_optional(small_dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(small_dataset), "--quiet", "--views", "Overall, logo",
                       "--optional-views", "", "--show", "1")
    assert code == 0
    assert "    item-0000000/hardware.jpg: 'hardware' is not a view" in out
    assert "    ... and 47 more (--show 0 lists all)" in out  # 4 other views x 12 items
    assert "(optional)" not in out
