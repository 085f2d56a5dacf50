"""A real server process under SIGTERM and SIGKILL: accepted work is finished or cleanly absent,
never half there."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from authentiq.modelling.synthetic import SyntheticItem
from tests.conftest import database_url_for, files_of, free_port, start_server


def fire(url: str, item: SyntheticItem, n: int) -> list[int | str]:
    """n concurrent inspections; each result is an HTTP status or the transport error's name."""
    results: list[int | str] = []

    def one(i: int) -> None:
        try:
            r = httpx.post(url + "/v1/inspections", files=files_of(item), timeout=60,
                           data={"brand": item.brand, "model": item.model, "client_ref": f"c{i}"})
            results.append(r.status_code)
        except httpx.TransportError as exc:
            results.append(type(exc).__name__)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    return results


def complete_reports(url: str) -> int:
    """Every stored report can be read whole: its photos and heatmaps are all there."""
    reports = httpx.get(url + "/v1/reports", params={"limit": 500}, timeout=30).json()["items"]
    for summary in reports:
        report = httpx.get(url + summary["links"]["self"], timeout=30).json()
        for link in [*report["links"]["views"].values(),
                     *[u for imgs in report["heatmaps"]["images"].values() for u in imgs.values()]]:
            assert httpx.get(url + link, timeout=30).status_code == 200, link
    return len(reports)


@pytest.mark.slow
def test_sigterm_finishes_accepted_work(tmp_path: Path, genuine_item: SyntheticItem) -> None:
    port = free_port()
    proc = start_server(tmp_path, port)
    url = f"http://127.0.0.1:{port}"
    results: list[int | str] = []
    sender = threading.Thread(target=lambda: results.extend(fire(url, genuine_item, 8)))
    sender.start()
    time.sleep(0.6)  # requests are in flight (decoding, queued, running)
    proc.send_signal(signal.SIGTERM)
    sender.join(120)
    # uvicorn shuts down gracefully, then re-raises the signal it caught: -SIGTERM, not a crash.
    assert proc.wait(60) in (0, -signal.SIGTERM)
    accepted = [r for r in results if r == 201]
    assert len(results) == 8 and accepted, results
    assert all(r == 201 or isinstance(r, str) for r in results), results  # no 5xx, no half answers
    proc = start_server(tmp_path, port)
    try:
        assert complete_reports(url) == len(accepted)  # every 201 was stored whole, nothing else
    finally:
        proc.terminate()
        proc.wait(60)


@pytest.mark.slow
def test_sigkill_mid_request_leaves_no_half_report(tmp_path: Path, genuine_item: SyntheticItem) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    for delay in (0.3, 0.7, 1.1):  # kill at different points of the pipeline
        proc = start_server(tmp_path, port)
        sender = threading.Thread(target=fire, args=(url, genuine_item, 6))
        sender.start()
        time.sleep(delay)
        proc.kill()
        proc.wait(30)
        sender.join(120)
    proc = start_server(tmp_path, port, AUTHENTIQ_ORPHAN_GRACE_S="0")  # sweep what the kills left
    try:
        stored = complete_reports(url)
        folders = [p.name for p in (tmp_path / "blobs").iterdir() if len(p.name) == 32]
        assert len(folders) == stored, "a blob folder without its report (an orphan) survived"
        assert (tmp_path / "blobs" / "references").is_dir()  # not mistaken for an orphan
    finally:
        proc.terminate()
        proc.wait(60)


@pytest.mark.slow
def test_sigkill_loses_no_accepted_async_job(tmp_path: Path, genuine_item: SyntheticItem) -> None:
    """Jobs accepted (202) by a process killed before or while running them all finish after a
    restart, each once, each announced by a signed webhook."""
    from authentiq.storage.webhooks import verify
    from benchmarks.faults import WebhookReceiver

    receiver = WebhookReceiver()
    env = {"AUTHENTIQ_DATABASE_URL": database_url_for(tmp_path), "AUTHENTIQ_JOB_LEASE_S": "2",
           "AUTHENTIQ_POLL_S": "0.1"}
    created = subprocess.run([sys.executable, "-m", "authentiq", "keys", "create", "marketplace",
                              "--scopes", "submit,review", "--webhook", receiver.url],
                             env={**os.environ, **env}, capture_output=True, text=True, check=True)
    key = created.stdout.splitlines()[1]
    secret = created.stdout.split("signing secret: ")[1].split()[0]
    port = free_port()
    url, headers = f"http://127.0.0.1:{port}", {"X-API-Key": key}

    def submit(n: int) -> list[str]:
        ids = []
        for i in range(n):
            r = httpx.post(url + "/v1/inspections?mode=async", files=files_of(genuine_item),
                           data={"brand": genuine_item.brand, "model": genuine_item.model,
                                 "client_ref": f"c{i}"}, headers=headers, timeout=30)
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
        return ids

    try:
        proc = start_server(tmp_path, port, AUTHENTIQ_JOB_WORKERS="0", **env)  # accepts, runs nothing
        accepted = submit(4)
        proc.kill()
        proc.wait(30)
        proc = start_server(tmp_path, port, **env)  # runs them; killed while it works
        accepted += submit(6)
        time.sleep(0.4)
        proc.kill()
        proc.wait(30)
        proc = start_server(tmp_path, port, **env)
        try:
            end = time.monotonic() + 90
            while time.monotonic() < end:
                jobs = [httpx.get(f"{url}/v1/jobs/{i}", headers=headers, timeout=30).json()
                        for i in accepted]
                if all(j["status"] == "succeeded" for j in jobs):
                    break
                time.sleep(0.2)
            assert [j["status"] for j in jobs] == ["succeeded"] * len(accepted), jobs
            reports = httpx.get(url + "/v1/reports", params={"limit": 100}, headers=headers,
                                timeout=30).json()
            assert sorted(r["id"] for r in reports["items"]) == sorted(accepted)  # each once
            while time.monotonic() < end and \
                    len({r.delivery_id for r in receiver.accepted()}) < len(accepted):
                time.sleep(0.2)
        finally:
            proc.terminate()
            proc.wait(60)
        delivered = {r.payload["data"]["job"]["id"] for r in receiver.accepted()}
        assert delivered == set(accepted)
        assert len({r.delivery_id for r in receiver.accepted()}) == len(accepted)  # one event a job
        assert all(verify(secret, r.signature, r.body) for r in receiver.received)
    finally:
        receiver.close()


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """True when the server closes ``sock`` within ``seconds`` (reads whatever it sends first)."""
    sock.settimeout(seconds)
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return False


def test_slow_clients_are_cut_off(tmp_path: Path, genuine_item: SyntheticItem) -> None:
    """Issue 19 finding 10: 300 slow connections were held 50 s. A real `authentiq serve` with a
    1 s header deadline and a 2 s body deadline: silent connections, trickled headers and a
    trickled body are all cut off, while a normal client is served throughout."""
    port = free_port()
    proc = start_server(tmp_path, port, AUTHENTIQ_HEADER_TIMEOUT_S="1", AUTHENTIQ_BODY_TIMEOUT_S="2")
    url = f"http://127.0.0.1:{port}"
    try:
        silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
        trickle = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
        for sock in trickle:
            sock.sendall(b"POST /v1/inspections HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        for i in range(4):  # a header byte every 0.4 s: each one resets no deadline
            time.sleep(0.4)
            for sock in trickle:
                with contextlib.suppress(OSError):
                    sock.sendall(b"X-Slow-%d: a\r\n" % i)
        assert httpx.get(url + "/readyz", timeout=5).status_code == 200
        assert all(_closed_within(s, 3) for s in silent + trickle)
        assert time.monotonic() - started < 8
        for sock in silent + trickle:
            sock.close()

        body = b"--b\r\nContent-Disposition: form-data; name=\"overall\"; filename=\"o.jpg\"\r\n\r\n"
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"POST /v1/inspections HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: multipart/form-data; boundary=b\r\n"
                         b"Content-Length: 100000\r\n\r\n" + body)
            sock.settimeout(10)
            reply = b""
            for _ in range(40):  # 100 bytes every 0.2 s: it would take minutes to finish
                with contextlib.suppress(OSError):
                    sock.sendall(b"x" * 100)
                time.sleep(0.2)
                with contextlib.suppress(BlockingIOError):
                    sock.setblocking(False)
                    reply += sock.recv(65536)
                sock.setblocking(True)
                if b"\r\n\r\n" in reply:
                    break
            head, _, problem = reply.partition(b"\r\n\r\n")
            length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
            while length and len(problem) < int(length[1]):  # the body may come in a later segment
                chunk = sock.recv(65536)
                if not chunk:
                    break
                problem += chunk
        assert head.startswith(b"HTTP/1.1 408"), reply[:300]
        assert b"slow-upload" in problem and b"application/problem+json" in head

        r = httpx.post(url + "/v1/inspections", files=files_of(genuine_item), timeout=60,
                       data={"brand": genuine_item.brand, "model": genuine_item.model})
        assert r.status_code in (201, 422), r.text  # served normally (422: an unknown product)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
