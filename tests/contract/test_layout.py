"""labels.csv as spreadsheets write it: encodings, separators, header aliases, label synonyms."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from authentiq.contract.layout import read_labels
from authentiq.errors import DatasetError

pytestmark = pytest.mark.db_independent  # the PostgreSQL pass leaves it out


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "labels.csv"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("data, encoding, separator", [
    (b"item,label,brand,model\r\nitem-1,authentic,Noor & Kessler,Atlas\r\n", "UTF-8", "comma"),
    (codecs.BOM_UTF8 + b"Item ID;Verdict;Brand;Model\r\nitem-1;Genuine;Noor & Kessler;Atlas\r\n",
     "UTF-8 with BOM", "semicolon"),
    ("item\tclass\tbrand\tmodel\nitem-1\treal\tNoor & Kessler\tAtlas\n".encode("utf-16"),
     "UTF-16", "tab"),
])
def test_spreadsheet_exports_read_the_same(tmp_path: Path, data: bytes, encoding: str,
                                           separator: str) -> None:
    labels = read_labels(write(tmp_path, data), required=("item", "label"))
    assert labels.errors == [] and labels.warnings == []
    [row] = labels.rows
    assert (row.item, row.label, row.brand, row.model) == ("item-1", "authentic", "Noor & Kessler", "Atlas")
    assert labels.describe().startswith(f"labels.csv: {encoding}, {separator}-separated")


def test_windows_1252_is_read_and_said(tmp_path: Path) -> None:
    labels = read_labels(write(tmp_path, "item;label;brand;model\nitem-1;fake;Hermès;Kelly\n"
                                         .encode("cp1252")))
    assert labels.rows[0].brand == "Hermès" and labels.rows[0].label == "counterfeit"
    assert labels.encoding == "Windows-1252"
    assert labels.warnings == ["labels.csv:2: not UTF-8; read as Windows-1252 (Excel's plain CSV). "
                               "Save it as \"CSV UTF-8\" to be sure accented names read right"]


def test_quoted_separators_blank_rows_and_unused_columns(tmp_path: Path) -> None:
    labels = read_labels(write(tmp_path, b'item,label,brand,model,price\n'
                                         b'item-1,authentic,"Smith, Jones",Atlas,10\n,,,,\n\n'
                                         b'sub\\item-2,counterfeit,A,B,1,extra\n'))
    assert [(r.item, r.brand) for r in labels.rows] == [("item-1", "Smith, Jones"), ("sub/item-2", "A")]
    assert labels.ignored == ["price"] and labels.rows[0].values["price"] == "10"
    assert labels.warnings == ["labels.csv:5: more values than columns (a separator inside an "
                               "unquoted value?); the extra values are ignored"]


def test_row_problems_are_collected_with_their_line(tmp_path: Path) -> None:
    labels = read_labels(write(tmp_path, b"item,label\nitem-1,authentic\n,authentic\nitem-2,\n"
                                         b"item-3,maybe\nitem-1,fake\n/etc,fake\n"))
    assert [r.item for r in labels.rows] == ["item-1"]
    assert [e.split(":")[1] for e in labels.errors] == ["3", "4", "5", "6", "7"]
    assert "item-2' has no label" in labels.errors[1]
    assert "label 'maybe' of item 'item-3' is not authentic or counterfeit" in labels.errors[2]
    assert "listed twice (also on line 2)" in labels.errors[3]
    assert "must name a folder beside labels.csv" in labels.errors[4]


@pytest.mark.parametrize("data, message", [
    (b"", "the file is empty"),
    (b"name;kind\nx;y\n", r"no 'item' or 'label' column; the header reads 'name', 'kind' "
                          r"\(semicolon-separated\); accepted names: item: item, item_id"),
    (b"id,item_id,label\n1,a,fake\n", r"columns 'item_id', 'id' could each be the item; rename "
                                      r"the right one to 'item'"),
])
def test_unusable_files_are_refused_with_what_to_do(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        read_labels(write(tmp_path, data), required=("item", "label"))


def test_not_a_product_rows_are_set_aside(tmp_path: Path) -> None:
    """A reviewer's "not a product" (export-training-data) is listed, never a training row."""
    labels = read_labels(write(tmp_path, b"item,label,brand,model\na,authentic,B,M\n"
                                         b"b,not_a_product,B,M\nc,Not a product,B,M\n"
                                         b"d,shoe,B,M\n"), required=("item", "label"))
    assert [r.item for r in labels.rows] == ["a"]
    assert [(r.item, r.label) for r in labels.set_aside] == [("b", "not_a_product"),
                                                              ("c", "not_a_product")]
    assert labels.listed == {"a", "b", "c", "d"}
    [error] = labels.errors
    assert error.startswith("labels.csv:5: label 'shoe'") and "not_a_product is set aside" in error
