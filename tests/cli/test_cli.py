"""The command line, including `inspect` against a real server on a real socket."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from PIL import Image, ImageFilter

from authentiq import __version__
from authentiq.api.app import create_app
from authentiq.cli import build_parser, main
from authentiq.cli.parsing import options
from authentiq.modelling.synthetic import SyntheticItem
from tests.conftest import database_url_for, make_settings, retrained, set_props


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip() == f"authentiq {__version__}"
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"authentiq {__version__}"


def test_help_reads_as_help(capsys: pytest.CaptureFixture[str]) -> None:
    """No docstring markup on screen; every option says what it does and shows its default."""
    with pytest.raises(SystemExit):
        main(["--help"])
    top = capsys.readouterr().out
    assert "``" not in top and "counterfeit detection" in top and "authentiq serve" in top
    undocumented = [f"authentiq {path} {a.option_strings or a.dest}"
                    for path, a in options(build_parser()) if not (a.help or "").strip()]
    assert undocumented == []
    with pytest.raises(SystemExit):
        main(["inspect", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert text.count("Send photos to a running server") == 1  # the subcommand's description
    assert "--url URL the AuthentiQ server (AUTHENTIQ_URL) (default: http://127.0.0.1:8000)" in text
    assert "--timeout TIMEOUT seconds to wait for the verdict (default: 60.0)" in text
    assert "(default: None)" not in text and "(default: False)" not in text
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--epochs EPOCHS passes over the training items (default: 160)" in text
    assert "--seed SEED random seed (splits, initialisation) (default: 0)" in text


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(make_settings(tmp_path)), host="127.0.0.1", port=port,
                            log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started:
        assert time.time() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


def test_inspect_prints_the_verdict(server: str, tmp_path: Path, genuine_item: SyntheticItem,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    paths = []
    for view, data in genuine_item.views.items():
        p = tmp_path / f"{view}.jpg"
        p.write_bytes(data)
        paths.append(str(p))
    code = main(["inspect", *paths, "--brand", genuine_item.brand, "--model", genuine_item.model,
                 "--url", server, "--client-ref", "cli-1"])
    out = capsys.readouterr().out
    assert code == 0
    # No references enrolled: the service does not call it authentic, and says why.
    assert "verdict: INCONCLUSIVE" in out and "/v1/reports/" in out
    assert "references (0 enrolled): none" in out and "does not call an item authentic" in out


def test_inspect_prints_what_to_retake_and_no_confidence_when_inconclusive(
        server: str, tmp_path: Path, genuine_item: SyntheticItem, capsys: pytest.CaptureFixture[str]) -> None:
    paths = []
    for view, data in genuine_item.views.items():
        p = tmp_path / f"{view}.jpg"
        if view == "label":
            Image.open(io.BytesIO(data)).filter(ImageFilter.GaussianBlur(6)).save(p, "JPEG")
        else:
            p.write_bytes(data)
        paths.append(str(p))
    assert main(["inspect", *paths, "--brand", genuine_item.brand, "--model", genuine_item.model,
                 "--url", server]) == 0
    out = capsys.readouterr().out
    assert out.startswith("verdict: INCONCLUSIVE   (automated verdict)\n  p(counterfeit) ")
    assert "confidence" not in out.lower()
    assert "retake these photos:\n  label: The label photo is unusable (blurred); retake it." in out
    assert "  label      RETAKE: blurred" in out


def test_inspect_reports_a_problem_readably(server: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    photo = tmp_path / "logo.jpg"
    photo.write_bytes(b"not a photo")
    assert main(["inspect", str(photo), "--brand", "x", "--model", "y", "--url", server]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: server answered 422") and "missing" in err.lower()


def test_inspect_sends_the_api_key(tmp_path: Path, genuine_item: SyntheticItem,
                                   monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Once the server has keys, `inspect` needs one: --api-key or AUTHENTIQ_API_KEY."""
    from tests.conftest import live_server

    settings = make_settings(tmp_path)
    assert main(["keys", "create", "till-3", "--scopes", "submit",
                 "--database-url", settings.database_url]) == 0
    key = capsys.readouterr().out.splitlines()[1]
    paths = []
    for view, data in genuine_item.views.items():
        (tmp_path / f"{view}.jpg").write_bytes(data)
        paths.append(str(tmp_path / f"{view}.jpg"))
    args = [*paths, "--brand", genuine_item.brand, "--model", genuine_item.model]
    with live_server(settings) as srv:
        assert main(["inspect", *args, "--url", srv.url]) == 2
        assert "server answered 401" in capsys.readouterr().err
        assert main(["inspect", *args, "--url", srv.url, "--api-key", key]) == 0
        monkeypatch.setenv("AUTHENTIQ_API_KEY", key)
        assert main(["inspect", *args, "--url", srv.url]) == 0
    assert capsys.readouterr().out.count("verdict: INCONCLUSIVE") == 2


def test_missing_file_is_a_readable_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "nope.jpg", "--brand", "x", "--model", "y"]) == 2
    assert "no such file: nope.jpg" in capsys.readouterr().err


def test_enroll_is_resumable_reports_failures_and_re_embed_follows_a_new_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import csv
    import shutil

    import onnx

    from authentiq.contract.model_spec import model_id
    from authentiq.pipeline.reference_index import ReferenceIndex
    from authentiq.settings import DEFAULT_MODEL, DEFAULT_REFERENCES, ReferenceSettings
    from authentiq.storage.blobs import BlobStore
    from authentiq.storage.db import open_database
    from authentiq.storage.references import ReferenceStore

    folder = tmp_path / "refs"
    folder.mkdir()
    with (DEFAULT_REFERENCES / "labels.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))[:3]
    for row in rows:
        shutil.copytree(DEFAULT_REFERENCES / row["item"], folder / row["item"])
    (folder / "broken").mkdir()
    for view in ("overall", "logo", "stitching", "hardware", "label", "interior"):
        (folder / "broken" / f"{view}.jpg").write_bytes(b"not a jpeg")
    with (folder / "labels.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["item", "label", "brand", "model"])
        for row in rows:
            w.writerow([row["item"], "authentic", row["brand"], row["model"]])
        w.writerow(["broken", "authentic", "Verlaine", "Amande"])
        w.writerow(["a-fake", "counterfeit", "Verlaine", "Amande"])  # never enrolled: not genuine
    db = database_url_for(tmp_path)
    monkeypatch.setenv("AUTHENTIQ_BLOB_DIR", str(tmp_path / "blobs"))

    assert main(["enroll", str(folder), "--database-url", db, "--quiet", "--source", "boutique"]) == 1
    out, err = capsys.readouterr()
    assert "enrolled 3, already enrolled 0, failed 1, with warnings 0, left out (not genuine) 1" in out
    assert "FAILED broken:" in out
    assert "left out 1 row(s) of labels.csv not labelled authentic (counterfeit): a-fake" in err
    assert main(["enroll", str(folder), "--database-url", db, "--quiet"]) == 1  # resumes
    assert "enrolled 0, already enrolled 3, failed 1" in capsys.readouterr().out

    # The same weights under a new version: the same model (its id), so nothing to re-embed.
    renamed = tmp_path / "renamed.onnx"
    proto = onnx.load(str(DEFAULT_MODEL))
    set_props(proto, {"authentiq.model_version": "9.0.0"})
    onnx.save(proto, str(renamed))
    assert main(["re-embed", "--model", str(renamed), "--database-url", db]) == 0
    out, err = capsys.readouterr()
    assert out == (f"nothing to re-embed: every live reference has an embedding of "
                   f"authentiq-default@9.0.0 (model {model_id(DEFAULT_MODEL)})\n")
    assert "it/s" not in err and "item/s" not in err  # no empty progress bar
    # New weights (a retrained model, even one keeping the version): its index is empty
    # until re-embed adds its vectors.
    new_model = retrained(DEFAULT_MODEL, tmp_path / "v9.onnx", version="9.0.0")
    new_id = model_id(new_model)
    assert new_id != model_id(DEFAULT_MODEL)
    assert main(["re-embed", "--model", str(new_model), "--database-url", db, "--quiet"]) == 0
    assert (f"re-embedded 3 references with authentiq-default@9.0.0 (model {new_id})"
            in capsys.readouterr().out)
    engine = open_database(db)
    store = ReferenceStore(engine, BlobStore(tmp_path / "blobs" / "references"))
    index = ReferenceIndex(store, ReferenceSettings(), model_id=new_id,
                           model_version="authentiq-default@9.0.0", dim=128)
    index.sync(force=True)
    assert index.size == 3 and store.missing_embeddings(new_id) == []
    assert {r.source for r in store.find()[0]} == {"boutique"}
    engine.dispose()


def test_a_running_server_counts_references_enrolled_from_the_cli(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`authentiq enroll` is another process with its own index: /readyz and the home page read
    the count the database has (within AUTHENTIQ_REFERENCE_SYNC_S), not the count at the last
    inspection."""
    import csv
    import shutil

    from fastapi.testclient import TestClient

    from authentiq.settings import DEFAULT_REFERENCES

    settings = make_settings(tmp_path, reference_sync_s=0.0)
    folder = tmp_path / "refs"
    folder.mkdir()
    with (DEFAULT_REFERENCES / "labels.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))[:2]
    with (folder / "labels.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for row in rows:
            shutil.copytree(DEFAULT_REFERENCES / row["item"], folder / row["item"])
            w.writerow(row)
    monkeypatch.setenv("AUTHENTIQ_BLOB_DIR", str(settings.blob_dir))
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").json()["references"] == 0
        assert main(["enroll", str(folder), "--database-url", settings.database_url, "--quiet"]) == 0
        assert "enrolled 2," in capsys.readouterr().out
        assert client.get("/readyz").json()["references"] == 2
        home = client.get("/")
        assert home.status_code == 200 and "2 genuine references enrolled" in home.text
        assert 'href="/kiosk"' in home.text and 'href="/docs"' in home.text


def test_inspect_without_a_server_says_what_to_check(tmp_path: Path, genuine_item: SyntheticItem,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    photo = tmp_path / "overall.jpg"
    photo.write_bytes(genuine_item.views["overall"])
    monkeypatch.setenv("AUTHENTIQ_URL", f"http://127.0.0.1:{port}")  # instead of --url
    assert main(["inspect", str(photo), "--brand", "x", "--model", "y"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot reach http://127.0.0.1:{port} (")
    assert err.rstrip().endswith("is the server running there? Another address: --url or AUTHENTIQ_URL")
