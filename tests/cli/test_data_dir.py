"""One data folder: the CLI and the server find the same database and photos wherever each starts.

The bug this guards: `authentiq enroll --database-url ...` stored photos under its own ./var/blobs,
so a server started from another folder answered 404 for them.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from authentiq.api.app import create_app
from authentiq.cli import main
from authentiq.settings import DEFAULT_REFERENCES, Settings
from tests.conftest import database_url_for


def test_photos_enrolled_from_one_folder_are_served_by_a_server_started_in_another(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    refs = tmp_path / "refs"
    refs.mkdir()
    with (DEFAULT_REFERENCES / "labels.csv").open(newline="") as fh:
        row = next(csv.DictReader(fh))
    shutil.copytree(DEFAULT_REFERENCES / row["item"], refs / row["item"])
    (refs / "labels.csv").write_text(f"item,brand,model\n{row['item']},{row['brand']},{row['model']}\n")
    db = database_url_for(tmp_path)
    monkeypatch.setenv("AUTHENTIQ_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AUTHENTIQ_REFERENCE_SEED_DIR", "")
    for name in ("AUTHENTIQ_BLOB_DIR", "AUTHENTIQ_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)

    cli_cwd, server_cwd = tmp_path / "cli-cwd", tmp_path / "server-cwd"
    cli_cwd.mkdir()
    server_cwd.mkdir()
    monkeypatch.chdir(cli_cwd)
    assert main(["enroll", str(refs), "--database-url", db, "--quiet"]) == 0
    assert "enrolled 1," in capsys.readouterr().out

    monkeypatch.chdir(server_cwd)
    settings = Settings(database_url=db, preprocess_workers=2, ort_threads=2)
    assert settings.blob_dir == tmp_path / "data" / "blobs"
    with TestClient(create_app(settings)) as client:
        [ref] = client.get("/v1/references").json()["items"]
        photo = client.get(f"/v1/references/{ref['id']}/views/logo")
    assert photo.status_code == 200, photo.text
    assert photo.content == (DEFAULT_REFERENCES / row["item"] / "logo.jpg").read_bytes()
    assert not (cli_cwd / "var").exists() and not (server_cwd / "var").exists()
