"""`authentiq products add|list|set`: the table the API's PUT /v1/products writes, from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from authentiq.api.app import create_app
from authentiq.cli import main
from tests.conftest import database_url_for, make_settings


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AUTHENTIQ_DATA_DIR", str(tmp_path / "data"))
    return database_url_for(tmp_path)


def cli(capsys: pytest.CaptureFixture[str], db: str, *args: str) -> tuple[int, str, str]:
    code = main(["products", *args, "--database-url", db])
    out, err = capsys.readouterr()
    return code, out, err


def test_add_set_and_list_are_what_the_api_serves(tmp_path: Path, db: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, db, "add", "Acme", "Rocket")[:2] == (0, "added Acme / Rocket\n")
    code, out, _ = cli(capsys, db, "add", "Noor & Kessler", "Atlas", "--min-similarity", "0.8",
                       "--allow-classifier-only")
    assert code == 0
    assert out == "added Noor & Kessler / Atlas with allow_classifier_only true, min_similarity 0.8\n"
    code, out, _ = cli(capsys, db, "set", "noor & kessler", "ATLAS", "--authentic-below", "0.05",
                       "--reset", "allow_classifier_only")
    assert (code, out) == (0, "Noor & Kessler / Atlas: authentic_below 0.05, min_similarity 0.8\n")

    with TestClient(create_app(make_settings(tmp_path, database_url=db))) as client:
        products = {(p["brand"], p["model"]): p for p in client.get("/v1/products").json()["items"]}
    atlas = products["Noor & Kessler", "Atlas"]
    assert atlas["overrides"] == {"authentic_below": 0.05, "min_similarity": 0.8}
    assert atlas["thresholds"]["min_similarity"] == 0.8 and atlas["trained_on"]
    assert products["Acme", "Rocket"]["overrides"] == {} and not products["Acme", "Rocket"]["trained_on"]

    code, out, _ = cli(capsys, db, "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["product", "references", "declared", "overrides"]
    assert any(line.startswith("Acme / Rocket") and line.split()[-2:] == ["no", "-"] for line in lines)
    [atlas_line] = [line for line in lines if line.startswith("Noor & Kessler / Atlas")]
    assert atlas_line.split()[-6:] == ["0", "yes", "authentic_below", "0.05,", "min_similarity", "0.8"]
    listed = json.loads(cli(capsys, db, "list", "--json")[1])
    assert listed["count"] == len(products)
    assert {(i["brand"], i["model"]): i["overrides"] for i in listed["items"]} == \
        {k: p["overrides"] for k, p in products.items()}


@pytest.mark.parametrize("args, message", [
    (["add", "Acme", "Rocket", "--min-similarity", "2"],
     "error: --min-similarity Input should be less than or equal to 1"),
    (["add", "Acme", "Rocket", "--authentic-below", "0.9", "--counterfeit-above", "0.1"],
     "error: authentic_below must not exceed counterfeit_above"),
    (["add", " ", "Rocket"], "error: brand '' must be 1 to 128 characters, without control characters"),
    (["set", "Acme", "Nothing", "--min-similarity", "0.5"],
     "error: Acme / Nothing is not a product; create it with `authentiq products add Acme Nothing`"),
    (["set", "Acme", "Rocket"], "error: nothing to change: give an option such as --min-similarity 0.8"),
])
def test_mistakes_are_one_readable_line(db: str, capsys: pytest.CaptureFixture[str],
                                        args: list[str], message: str) -> None:
    assert cli(capsys, db, "add", "Acme", "Rocket")[0] == 0
    code, out, err = cli(capsys, db, *args)
    assert code == 2 and out == "" and err.startswith(message), err


def test_adding_an_existing_product_points_at_set(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, db, "add", "Acme", "Rocket")[0] == 0
    code, _, err = cli(capsys, db, "add", "ACME", "rocket", "--min-similarity", "0.5")
    assert code == 2
    assert err.strip() == ("error: Acme / Rocket is already a product; change its thresholds with "
                           "`authentiq products set`")
    assert cli(capsys, db, "set", "Acme", "Rocket", "--min-similarity", "0.5", "--reset-all")[1] == \
        "Acme / Rocket: min_similarity 0.5\n"
    assert cli(capsys, db, "set", "Acme", "Rocket", "--reset-all")[1] == \
        "Acme / Rocket: no overrides (the model defaults apply)\n"
