"""`authentiq serve`: how many worker processes and threads it runs by default (from the CPUs
this process may use, cgroup quota included), and what it prints once it answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from authentiq.cli import build_parser
from authentiq.cli.serving import decode_threads, default_workers, model_threads
from authentiq.settings import available_cpus, cgroup_cpu_quota
from tests.conftest import database_url_for


@pytest.mark.parametrize(("cpus", "workers"), [(1, 1), (2, 2), (4, 4), (16, 16), (64, 64)])
def test_one_worker_per_cpu_by_default(cpus: int, workers: int) -> None:
    assert default_workers(cpus) == workers


@pytest.mark.parametrize(("cpus", "workers", "model", "spin", "decoding"),
                         [(1, 1, 1, True, 1), (2, 1, 2, True, 2), (2, 2, 2, False, 2),
                          (2, 3, 2, False, 2), (16, 16, 2, False, 2), (16, 4, 4, True, 4),
                          (16, 6, 2, True, 2), (16, 1, 16, True, 16)])
def test_each_worker_gets_its_share_of_the_threads(cpus: int, workers: int, model: int,
                                                   spin: bool, decoding: int) -> None:
    """Its share of the CPUs, but at least two threads for decoding and for the model where
    there are two CPUs (a lone request's photos decode two at a time, its mosaic runs on two);
    model threads beyond the share sleep between batches instead of spinning."""
    assert model_threads(cpus, workers) == (model, spin)
    assert decode_threads(cpus, workers) == decoding


def test_workers_must_be_one_or_more(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--workers", "0"])
    assert "--workers: must be 1 or more, not 0" in capsys.readouterr().err
    assert build_parser().parse_args(["serve"]).workers is None  # chosen at start-up


def cgroup(tmp_path: Path, membership: str, files: dict[str, str]) -> float | None:
    for name, text in files.items():
        (tmp_path / "fs" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "fs" / name).write_text(text)
    (tmp_path / "cgroup").write_text(membership)
    return cgroup_cpu_quota(tmp_path / "fs", tmp_path / "cgroup")


def test_cgroup_v2_quota(tmp_path: Path) -> None:
    # a container (its own cgroup namespace: "/") started with --cpus 1.5
    assert cgroup(tmp_path, "0::/\n", {"cpu.max": "150000 100000\n"}) == 1.5


def test_cgroup_v2_without_quota(tmp_path: Path) -> None:
    assert cgroup(tmp_path, "0::/\n", {"cpu.max": "max 100000\n"}) is None


def test_cgroup_v2_the_tightest_on_the_way_up(tmp_path: Path) -> None:
    # a service in a slice: its own cgroup has no quota, the slice allows 2 CPUs, the root none
    files = {"system.slice/cpu.max": "200000 100000", "system.slice/app.service/cpu.max": "max 100000"}
    assert cgroup(tmp_path, "0::/system.slice/app.service\n", files) == 2.0


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    membership = "5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n"
    files = {"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}
    # inside the container the mount shows its own cgroup at the top: /docker/abc is not there
    assert cgroup(tmp_path, membership, files) == 3.0


def test_cgroup_v1_unlimited_or_absent(tmp_path: Path) -> None:
    files = {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}
    assert cgroup(tmp_path, "4:cpu,cpuacct:/\n", files) is None
    assert cgroup_cpu_quota(tmp_path / "nothing", tmp_path / "no-such-file") is None


def test_available_cpus_counts_this_process() -> None:
    cpus = available_cpus()
    assert 1 <= cpus <= len(os.sched_getaffinity(0))
    quota = cgroup_cpu_quota()
    if quota is not None:
        assert cpus <= max(1, int(quota + 0.999))


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and b"spawn_main" in (stat.parent / "cmdline").read_bytes():
                found.append(int(stat.parent.name))  # a worker, not multiprocessing's tracker
        except OSError:
            continue
    return found


@pytest.mark.parametrize("workers", [None, 1], ids=["default", "one"])
def test_serve_says_where_once_it_answers(tmp_path: Path, workers: int | None) -> None:
    """`authentiq serve` (what `make run` runs) prints the URL after start-up, not before, with
    the backend it chose; that URL answers; share links point at this port by default. By
    default it runs a worker per CPU, and says so; with --workers 1, one process."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "AUTHENTIQ_BLOB_DIR": str(tmp_path / "blobs"),
           "AUTHENTIQ_REFERENCE_SEED_DIR": "", "AUTHENTIQ_ORT_THREADS": "1"}
    env.pop("AUTHENTIQ_PUBLIC_BASE_URL", None)
    env.pop("AUTHENTIQ_PREPROCESS_WORKERS", None)
    args = ["--workers", str(workers)] if workers else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "authentiq", "serve", "--port", str(port),
         "--database-url", database_url_for(tmp_path), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    expected = workers or default_workers(available_cpus())
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        # printed once it serves: the URL answers at once, with the landing page
        assert line.startswith(f"AuthentiQ ready on http://127.0.0.1:{port}/  (authentiq-default@")
        assert "int8-cpu on onnxruntime/cpu, 0 references" in line
        assert line.rstrip().endswith(f"{expected} worker processes)" if expected > 1 else
                                      "0 references)")
        home = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert home.status_code == 200 and "Kiosk" in home.text
        assert len(children(proc.pid)) == (expected if expected > 1 else 0)
        workers_seen = children(proc.pid)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=60)
    # the backend choice is logged without -v, and the base URL warning names this port
    assert "authentiq.api.app: ready: authentiq-default" in err and "on onnxruntime" in err
    assert f"share links and QR codes point at http://127.0.0.1:{port}, which only" in err
    assert "readyz" not in out  # serve's own readiness checks stay out of the access log
    if expected > 1:
        decoding = decode_threads(available_cpus(), expected)
        assert f"starting {expected} worker processes on http://127.0.0.1:{port}/" in err
        assert f"each with {decoding} decoding and 1 model threads" in err  # ORT_THREADS was set
        assert f"a key may get up to {expected}× AUTHENTIQ_RATE_LIMIT" in err  # memory://
        end = time.monotonic() + 15
        while any(Path(f"/proc/{w}").exists() for w in workers_seen) and time.monotonic() < end:
            time.sleep(0.1)
        assert not [w for w in workers_seen if Path(f"/proc/{w}").exists()]


@pytest.mark.parametrize("workers", [None, 1], ids=["default", "one"])
def test_serve_that_cannot_start_stops(tmp_path: Path, workers: int | None) -> None:
    """A worker whose start-up fails (here: a database without this release's schema, and
    migrations switched off) stops the whole server with status 3 — no worker restarted
    forever, no ready line."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "AUTHENTIQ_BLOB_DIR": str(tmp_path / "blobs"), "AUTHENTIQ_MIGRATE": "false",
           "AUTHENTIQ_REFERENCE_SEED_DIR": "", "AUTHENTIQ_ORT_THREADS": "1"}
    args = ["--workers", str(workers)] if workers else []
    done = subprocess.run(
        [sys.executable, "-m", "authentiq", "serve", "--port", str(port),
         "--database-url", database_url_for(tmp_path), *args],
        env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3
    assert "AuthentiQ ready" not in done.stdout
    assert "authentiq db upgrade" in done.stderr  # the reason, naming the command to run
