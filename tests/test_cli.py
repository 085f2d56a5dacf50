"""The command line, including `inspect` against a real server on a real socket."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from authentiq import __version__
from authentiq.api.app import create_app
from authentiq.cli import main
from authentiq.synthetic import SyntheticItem
from tests.conftest import make_settings


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip() == f"authentiq {__version__}"


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
    assert "verdict: AUTHENTIC" in out and "/v1/reports/" in out


def test_inspect_reports_a_problem_readably(server: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    photo = tmp_path / "logo.jpg"
    photo.write_bytes(b"not a photo")
    assert main(["inspect", str(photo), "--brand", "x", "--model", "y", "--url", server]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: server answered 422") and "missing" in err.lower()


def test_missing_file_is_a_readable_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "nope.jpg", "--brand", "x", "--model", "y"]) == 2
    assert "no such file: nope.jpg" in capsys.readouterr().err
