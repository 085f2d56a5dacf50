"""Two real server processes share one PostgreSQL, one Redis, one S3-compatible bucket and one
Triton server — what several workers or hosts do in production. Nothing that one worker knows is
missing from the other: rate limits, idempotency, jobs, stored files, the reference index."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from authentiq.cli import main
from authentiq.modelling.synthetic import make_item
from tests.conftest import S3Server, TritonServer, files_of, free_port, start_server

REDIS_URL = "redis://127.0.0.1:6379"


def redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def create_key(url: str, name: str, *extra: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["keys", "create", name, "--scopes", "submit,review,admin",
                     "--database-url", url, *extra]) == 0
    return out.getvalue().splitlines()[1]


@pytest.fixture
def two_servers(tmp_path: Path, postgres_url: str, s3_server: S3Server,
                triton: TritonServer) -> Iterator[tuple[str, str, str]]:
    """(url of A, url of B, the database URL): A accepts async jobs but runs none, B runs them."""
    if not redis_available():
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not reachable at {REDIS_URL} (CI needs it)")
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    common = {"AUTHENTIQ_DATABASE_URL": postgres_url,
              "AUTHENTIQ_BLOB_URL": f"s3://{s3_server.new_bucket()}/authentiq",
              "AUTHENTIQ_RATE_LIMIT_STORAGE": REDIS_URL, "AUTHENTIQ_BACKEND": "triton",
              "AUTHENTIQ_TRITON_URL": triton.grpc_url, "AUTHENTIQ_POLL_S": "0.1",
              "AUTHENTIQ_REFERENCE_SYNC_S": "0.2", "AUTHENTIQ_AUTH": "required", **s3_server.env}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        ports = free_port(), free_port()
        procs.append(start_server(tmp_path, ports[0], log_name="a.log", AUTHENTIQ_JOB_WORKERS="0",
                                  **common))
        procs.append(start_server(tmp_path, ports[1], log_name="b.log", **common))
        yield f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}", postgres_url
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(60)


@pytest.mark.slow
@pytest.mark.postgres
def test_two_workers_share_everything(two_servers: tuple[str, str, str]) -> None:
    a, b, database = two_servers
    admin = {"X-API-Key": create_key(database, "ops")}
    item = make_item(930_000, counterfeit=False)
    form = {"brand": item.brand, "model": item.model}

    def inspect(server: str, **headers: str) -> httpx.Response:
        return httpx.post(f"{server}/v1/inspections", data=form, files=files_of(item),
                          headers={**admin, **headers}, timeout=60)

    # Idempotency: a retry that lands on the other worker gets the first worker's answer.
    first = inspect(a, **{"Idempotency-Key": "order-1"})
    assert first.status_code == 201, first.text
    again = inspect(b, **{"Idempotency-Key": "order-1"})
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    report = first.json()
    assert report["classifier"]["backend"] == "triton"

    # Stored files: what A wrote, B serves (one bucket).
    heatmap = httpx.get(b + report["heatmaps"]["images"]["authentic"]["logo"], headers=admin)
    assert heatmap.status_code == 200 and heatmap.headers["content-type"] == "image/webp"

    # Jobs: accepted by A (which runs none), run by B, visible from both.
    job = httpx.post(f"{a}/v1/inspections?mode=async", data=form, files=files_of(item),
                     headers=admin, timeout=60)
    assert job.status_code == 202, job.text
    for _ in range(300):
        state = httpx.get(f"{a}/v1/jobs/{job.json()['id']}", headers=admin).json()
        if state["status"] == "succeeded":
            break
        time.sleep(0.1)
    assert state["status"] == "succeeded"
    assert httpx.get(f"{b}/v1/reports/{job.json()['id']}", headers=admin).status_code == 200

    # Reference index: an enrolment on B is searched by A within the sync interval.
    count = report["references"]["claimed"]["count"]
    enrolled = httpx.post(f"{b}/v1/references", data=form, files=files_of(item), headers=admin,
                          timeout=60)
    assert enrolled.status_code == 201, enrolled.text
    time.sleep(0.5)
    later = inspect(a).json()["references"]["claimed"]
    assert later["count"] == count + 1
    assert later["matches"][0]["id"] == enrolled.json()["id"]  # the same photos: the closest

    # Rate limits: one budget per key across both workers (Redis), not one per worker.
    limited = {"X-API-Key": create_key(database, "tight", "--rate-limit", "4/minute")}
    codes = [httpx.get(f"{server}/v1/reports?limit=1", headers=limited).status_code
             for server in (a, b, a, b, a, b)]
    assert codes == [200, 200, 200, 200, 429, 429]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _tcp_rows() -> list[list[str]]:
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            rows += [line.split() for line in Path(table).read_text().splitlines()[1:]]
    return rows


def listening_sockets(port: int) -> int:
    """Listening TCP sockets on ``port`` (state 0A in /proc/net/tcp)."""
    return sum(1 for r in _tcp_rows() if r[3] == "0A" and int(r[1].rsplit(":", 1)[1], 16) == port)


def connections_held(pid: int, port: int) -> int:
    """Established connections to ``port`` that process ``pid`` has accepted."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    return sum(1 for r in _tcp_rows() if r[3] == "01" and r[9] in inodes
               and int(r[1].rsplit(":", 1)[1], 16) == port)


def samples(families: Iterable[Metric]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


@pytest.mark.slow
def test_serve_workers_runs_several_processes_on_one_port(tmp_path: Path, database_url: str) -> None:
    """`authentiq serve --workers 3` on the run's database (one SQLite file, or PostgreSQL): the
    schema is migrated once by the parent, three worker processes answer on one port, each on
    a listening socket of its own that takes a share of new connections, /metrics sums every
    worker's values whichever worker answers (prometheus_client's multiprocess mode, in a
    temporary folder removed at the end), and SIGTERM stops them all after their accepted
    work."""
    import concurrent.futures

    port = free_port()
    proc = start_server(tmp_path, port, "--workers", "3", AUTHENTIQ_DATABASE_URL=database_url)
    try:
        workers = [c for c in children(proc.pid)  # not multiprocessing's resource tracker
                   if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
        assert len(workers) == 3
        item = make_item(940_000, counterfeit=False)
        form = {"brand": item.brand, "model": item.model}

        def post(_: int) -> int:
            return httpx.post(f"http://127.0.0.1:{port}/v1/inspections", data=form,
                              files=files_of(item), timeout=60).status_code

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            assert list(pool.map(post, range(12))) == [201] * 12
        # Each worker listens on a socket of its own (SO_REUSEPORT), and the kernel spreads a
        # burst of connections over them: with one shared socket, one worker's accept loop
        # could take the whole burst, and keep-alive clients would stay on it.
        end = time.monotonic() + 30  # the last worker may still be starting on a loaded machine
        while listening_sockets(port) < 3 and time.monotonic() < end:
            time.sleep(0.2)
        assert listening_sockets(port) == 3
        clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}") for _ in range(45)]
        try:
            assert {c.get("/healthz").status_code for c in clients} == {200}
            held = {w: connections_held(w, port) for w in workers}
        finally:
            for c in clients:
                c.close()
        assert sum(held.values()) == 45 and min(held.values()) > 0, held
        listed = httpx.get(f"http://127.0.0.1:{port}/v1/reports?limit=100").json()["items"]
        assert len(listed) == 12
        # /metrics sums every worker's values, whichever worker answers the scrape
        said = (tmp_path / "server.log").read_text()
        metrics_dir = Path(said.split("multiprocess mode, ", 1)[1].split(")", 1)[0])
        end = time.monotonic() + 60
        while len(list(metrics_dir.glob("counter_*.db"))) < 3 and time.monotonic() < end:
            time.sleep(0.2)  # readyz answered when the first worker was up; the others follow
        with concurrent.futures.ThreadPoolExecutor(6) as pool:  # a new connection each
            assert set(pool.map(lambda _: httpx.get(f"http://127.0.0.1:{port}/healthz").status_code,
                                range(60))) == {200}
        healthz = ("authentiq_http_requests_total",
                   (("method", "GET"), ("route", "/healthz"), ("status", "200")))
        per_worker = [samples(MultiProcessCollector.merge([str(f)])).get(healthz, 0)
                      for f in metrics_dir.glob("counter_*.db")]
        assert sum(per_worker) == 45 + 60 and sum(1 for n in per_worker if n) >= 2, per_worker
        for _ in range(6):
            found = samples(text_string_to_metric_families(
                httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text))
            assert found[healthz] == 45 + 60
            assert found[("authentiq_http_requests_total", (
                ("method", "POST"), ("route", "/v1/inspections"), ("status", "201")))] == 12
            assert sum(v for (name, _), v in found.items()
                       if name == "authentiq_drift_p_counterfeit_count") == 12
    finally:
        proc.terminate()
        assert proc.wait(60) == 0
    assert not metrics_dir.exists()  # the server's temporary folder goes with it
    end = time.monotonic() + 15
    while any(alive(w) for w in workers) and time.monotonic() < end:
        time.sleep(0.1)
    assert not [w for w in workers if alive(w)], "worker processes outlived the server"
