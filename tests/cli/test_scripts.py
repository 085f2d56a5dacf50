"""The make-test tooling: set-up steps are one line unless they fail (scripts/quietly), and the
closing summary (scripts/test_summary.py) reads what pytest really wrote."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

SAMPLE = '''
import pytest

pytestmark = pytest.mark.db_independent  # the PostgreSQL pass leaves it out

def test_ok():
    pass

def test_broken():
    assert 1 == 2, "one is not two"

@pytest.mark.skip(reason="needs a GPU")
def test_gpu():
    pass

@pytest.mark.skip(reason="needs a GPU")
def test_gpu_too():
    pass
'''


def test_summary_of_real_pytest_results(tmp_path: Path) -> None:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    results = tmp_path / "results"
    for name in ("1-sqlite", "2-postgres"):
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", "/dev/null",
                        f"--junitxml={results / name}.xml", str(tmp_path / "test_sample.py")],
                       cwd=tmp_path, capture_output=True, check=False)
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "test_summary.py"), str(results)],
                         capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert "sqlite             1       1        2" in out and "postgres           1       1        2" in out
    assert "FAILED [sqlite] test_sample::test_broken: AssertionError: one is not two" in out
    assert "  [sqlite] 2 × needs a GPU" in out and "slowest tests:" in out
    assert lines[-1].startswith("total: 2 passed, 2 failed, 4 skipped in ")
    assert len(lines) < 25  # one screen


def test_quietly_shows_output_only_on_failure(tmp_path: Path) -> None:
    quietly = str(REPO / "scripts" / "quietly")
    ok = subprocess.run([quietly, "demo", "sh", "-c", "echo chatter"], cwd=tmp_path,
                        capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("demo … ok (") and "chatter" not in ok.stdout
    assert (tmp_path / "var" / "setup" / "demo.log").read_text() == "chatter\n"
    bad = subprocess.run([quietly, "demo", "sh", "-c", "echo what went wrong; exit 3"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert bad.returncode == 3
    assert "demo … FAILED (exit 3)" in bad.stdout and "what went wrong" in bad.stdout
