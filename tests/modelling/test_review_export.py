"""`authentiq export-training-data`: reviewed reports, made and reviewed through the real app
(real model, SQLite or PostgreSQL, blob folder), exported with their final labels into a folder
that `authentiq dataset check` passes; one tenant only; again without duplicates; a failure
part-way leaves no half-written item."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from authentiq.api.app import create_app
from authentiq.cli import main
from authentiq.cli.parsing import since
from authentiq.modelling.synthetic import SyntheticItem, make_item, passes_quality
from authentiq.settings import Settings
from authentiq.storage.db import open_database
from authentiq.storage.keys import create_key
from authentiq.storage.tenants import create_tenant
from tests.conftest import REPO, allow_classifier_only, files_of, make_settings


def blurred(item: SyntheticItem) -> SyntheticItem:
    """The item with its label photo blurred past the quality check (a retake is asked)."""
    img = Image.open(io.BytesIO(item.views["label"]))
    buf = io.BytesIO()
    img.resize((img.width // 8, img.height // 8)).resize(img.size).save(buf, "JPEG", quality=90)
    return dataclasses.replace(item, views={**item.views, "label": buf.getvalue()})


def good_items(n: int, start: int) -> list[SyntheticItem]:
    """``n`` distinct items whose photos all pass the quality check."""
    out, seed = [], start
    while len(out) < n:
        item = make_item(seed, counterfeit=seed % 2 == 1)
        if passes_quality(item.views):
            out.append(item)
        seed += 1
    return out


@dataclass
class Reviewed:
    settings: Settings
    labels: dict[str, str]  # report id -> the final label the export must write
    skipped: dict[str, str]  # report id -> why not exported
    other_tenant: str  # a reviewed report of another tenant
    photos: dict[str, dict[str, bytes]]  # report id -> view -> bytes uploaded
    reviewer: str  # the reviewing key's identity


@pytest.fixture
def reviewed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Reviewed:
    settings = make_settings(tmp_path)
    monkeypatch.setenv("AUTHENTIQ_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("AUTHENTIQ_BLOB_DIR", str(settings.blob_dir))
    items = good_items(10, 902_000_000)
    items[9] = blurred(items[9])
    engine = open_database(settings.database_url)  # keys before the app: enforced from the start
    create_tenant(engine, "shop-b")
    row_a, key_a = create_key(engine, "ana", ["submit", "review", "admin"])
    _, key_b = create_key(engine, "bo", ["submit", "review"], tenant="shop-b")
    engine.dispose()
    a, b = {"X-API-Key": key_a}, {"X-API-Key": key_b}
    with TestClient(create_app(settings), headers=a) as client:
        allow_classifier_only(client)

        def inspect(item: SyntheticItem, headers: dict[str, str]) -> dict:  # type: ignore[type-arg]
            r = client.post("/v1/inspections", files=files_of(item), headers=headers,
                            data={"brand": item.brand, "model": item.model})
            assert r.status_code == 201, r.text
            return r.json()  # type: ignore[no-any-return]

        def review(report: dict, headers: dict[str, str], **body: object) -> None:  # type: ignore[type-arg]
            version = client.get(report["links"]["self"], headers=headers).json()["review"]["version"]
            r = client.post(f"/v1/reports/{report['id']}/reviews", headers=headers,
                            json={"reason": "checked in store", "expected_version": version, **body})
            assert r.status_code == 201, r.text

        labels, skipped, photos = {}, {}, {}
        plan = ["authentic", "authentic", "authentic", "counterfeit", "counterfeit", "counterfeit",
                "not_a_product", "inconclusive", "unreviewed", "blurred"]
        for item, label in zip(items, plan, strict=True):
            report = inspect(item, a)
            photos[report["id"]] = dict(item.views)
            if label == "unreviewed":
                skipped[report["id"]] = label
                continue
            if label == "blurred":
                assert [v["reason"] for v in report["views"] if not v["usable"]] == ["blurred"]
                review(report, a, decision="override", verdict="authentic")
                skipped[report["id"]] = label
                continue
            if label == "not_a_product":
                review(report, a, decision="override", verdict="inconclusive", finding=label)
            elif label == report["verdict"]:
                review(report, a, decision="confirm")  # a confirmation: the automated verdict
            else:
                review(report, a, decision="override", verdict=label)  # an override
            (skipped if label == "inconclusive" else labels)[report["id"]] = label
        foreign = inspect(items[0], b)
        review(foreign, b, decision="override", verdict="authentic")
    return Reviewed(settings, labels, skipped, foreign["id"], photos, f"ana (key {row_a.id})")


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return {row["item"]: row for row in csv.DictReader(f)}


def export(out: Path, *extra: str) -> int:
    return main(["export-training-data", str(out), "--reviewed", *extra])


def test_reviewed_reports_export_with_final_labels_and_pass_the_check(
        reviewed: Reviewed, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "from-reviews"
    assert export(out) == 0
    said = capsys.readouterr().out
    assert "written    7 new item(s): 3 authentic, 3 counterfeit, 1 not_a_product" in said
    assert "skipped    1, final verdict inconclusive: nobody decided" in said
    [quality] = [i for i, why in reviewed.skipped.items() if why == "blurred"]
    assert f"skipped    1, a photo failed the quality check (retake asked): {quality}" in said

    rows = read_csv(out / "labels.csv")
    assert {item: row["label"] for item, row in rows.items()} == reviewed.labels
    assert reviewed.other_tenant not in rows and not (out / reviewed.other_tenant).exists()
    assert not set(reviewed.skipped) & {p.name for p in out.iterdir()}
    for item in rows:  # the photos as uploaded, byte for byte, named after their views
        written = {p.stem: p.read_bytes() for p in (out / item).iterdir()}
        assert written == reviewed.photos[item]
        assert rows[item]["brand"] and rows[item]["model"]

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tenant"] == "default"
    assert manifest["counts"] == {"authentic": 3, "counterfeit": 3, "not_a_product": 1}
    assert set(manifest["items"]) == set(reviewed.labels)
    for item, entry in manifest["items"].items():
        assert entry["report_id"] == item and entry["label"] == reviewed.labels[item]
        assert entry["automated"]["model"] == "authentiq-default@0.2.0"
        assert [r["reviewer"] for r in entry["reviews"]] == [reviewed.reviewer]
    [not_a_product] = [i for i, lab in reviewed.labels.items() if lab == "not_a_product"]
    assert manifest["items"][not_a_product]["reviews"][0]["finding"] == "not_a_product"

    assert main(["dataset", "check", str(out), "--workers", "1", "--quiet"]) == 0
    checked = capsys.readouterr().out
    assert "set aside 1 item(s) labelled not_a_product" in checked
    assert "items   6 (3 authentic, 3 counterfeit)" in checked
    assert "stray" not in checked  # manifest.json and the set-aside folder are expected

    # another tenant's export holds only its own report
    theirs = tmp_path / "shop-b"
    assert export(theirs, "--tenant", "shop-b") == 0
    assert list(read_csv(theirs / "labels.csv")) == [reviewed.other_tenant]
    assert export(tmp_path / "x", "--tenant", "nobody") == 2
    assert "no tenant 'nobody'" in capsys.readouterr().err


def test_export_again_never_duplicates_and_follows_new_reviews(
        reviewed: Reviewed, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert export(out) == 0
    first_csv = (out / "labels.csv").read_text()
    folders = sorted(p.name for p in out.iterdir())
    assert export(out) == 0
    assert "written    0 new item(s)" in capsys.readouterr().out
    assert (out / "labels.csv").read_text() == first_csv
    assert sorted(p.name for p in out.iterdir()) == folders
    assert len(json.loads((out / "manifest.json").read_text())["exports"]) == 2

    # a later review relabels one item and withdraws another; --since picks only those
    authentic = [i for i, lab in reviewed.labels.items() if lab == "authentic"]
    before = datetime.now(UTC).isoformat()
    with TestClient(create_app(reviewed.settings)) as client:
        engine = client.app.state.services.store.engine  # type: ignore[attr-defined]
        headers = {"X-API-Key": create_key(engine, "cy", ["review"])[1]}
        for item, body in ((authentic[0], {"decision": "override", "verdict": "counterfeit"}),
                           (authentic[1], {"decision": "override", "verdict": "inconclusive"})):
            current = client.get(f"/v1/reports/{item}", headers=headers).json()["review"]["version"]
            r = client.post(f"/v1/reports/{item}/reviews", headers=headers,
                            json={**body, "reason": "second look", "expected_version": current})
            assert r.status_code == 201, r.text
    assert export(out, "--since", before) == 0
    said = capsys.readouterr().out
    assert "selected   2 reviewed report(s)" in said
    assert f"relabelled 1: {authentic[0]}: authentic → counterfeit" in said
    assert f"withdrawn  1: {authentic[1]}" in said
    rows = read_csv(out / "labels.csv")
    assert rows[authentic[0]]["label"] == "counterfeit" and authentic[1] not in rows
    assert not (out / authentic[1]).exists() and len(rows) == 6  # the others kept
    assert sorted(p.name for p in out.iterdir()) == sorted(set(folders) - {authentic[1]})
    assert export(out, "--since", "1h") == 0  # every review of this test, nothing new
    said = capsys.readouterr().out
    assert "selected   9 reviewed report(s)" in said and "written    0 new item(s)" in said
    assert read_csv(out / "labels.csv") == rows


def test_a_failure_part_way_leaves_no_half_written_item(reviewed: Reviewed, tmp_path: Path) -> None:
    """The export runs as its own process with a file size limit just below the largest photo
    of the first report (as a full disk would stop it, after its other photos were written):
    it stops with a readable error, leaves no item folder and no partial one, and the next run
    writes everything."""
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = next(iter(reviewed.labels))  # the oldest report: exported first
    largest = max(len(b) for b in reviewed.photos[first].values())
    assert largest > 32_768 + 1  # above SQLite's shared-memory file, which the export maps

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (largest - 1, largest - 1))

    run = subprocess.run([sys.executable, "-m", "authentiq", "export-training-data", str(out),
                          "--reviewed"], env=env, capture_output=True, text=True, timeout=120,
                         preexec_fn=limit, check=False)
    assert run.returncode == 2, run.stderr
    assert "error: the export stopped after 0 report(s): File too large" in run.stderr
    assert "Traceback" not in run.stderr
    assert [p.name for p in out.iterdir() if p.is_dir()] == []  # no item, no .partial-*
    assert read_csv(out / "labels.csv") == {}
    assert export(out) == 0
    assert set(read_csv(out / "labels.csv")) == set(reviewed.labels)
    assert not [p for p in out.iterdir() if p.name.startswith(".partial-")]


@pytest.mark.parametrize(("text", "expected"), [
    ("7d", datetime(2026, 11, 24, 12, tzinfo=UTC)), ("12h", datetime(2026, 12, 1, tzinfo=UTC)),
    ("2w", datetime(2026, 11, 17, 12, tzinfo=UTC)), ("30m", datetime(2026, 12, 1, 11, 30, tzinfo=UTC)),
    ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
    ("2026-11-01T08:00:00+01:00", datetime(2026, 11, 1, 7, tzinfo=UTC)),
])
def test_since_takes_a_span_or_a_date(text: str, expected: datetime) -> None:
    assert since(text, now=datetime(2026, 12, 1, 12, tzinfo=UTC)) == expected


def test_bad_arguments_are_one_readable_line(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stopped:
        main(["export-training-data", str(out), "--reviewed", "--since", "last week"])
    assert stopped.value.code == 2
    assert "'last week' is neither a span (7d, 12h, 2w, 30m) nor a date" in capsys.readouterr().err
    assert main(["export-training-data", str(out)]) == 2  # without --reviewed
    assert "only reviewed reports are exported: say so with --reviewed" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("damage", ["items-list", "exports-dict", "item-without-model",
                                    "labels-folder", "labels-not-utf8"])
def test_a_damaged_earlier_export_is_refused_before_anything_is_written(
        reviewed: Reviewed, tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]) -> None:
    """An attack run broke an earlier export's files by hand: the export wrote its first item,
    then failed with a traceback. It now says what is wrong, in one line, and writes nothing."""
    out = tmp_path / "out"
    out.mkdir()
    manifest = {"items-list": {"items": []}, "exports-dict": {"exports": {}},
                "item-without-model": {"items": {"x": {}}}}.get(damage)
    if manifest is not None:
        (out / "manifest.json").write_text(json.dumps(manifest))
    elif damage == "labels-folder":
        (out / "labels.csv").mkdir()
    else:
        (out / "labels.csv").write_bytes(b"item,label,brand,model\n\xff,authentic,a,b\n")
    before = sorted(p.name for p in out.iterdir())
    assert export(out) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == before
