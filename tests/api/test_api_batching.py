"""The batcher's promises through a real uvicorn server: 503 + Retry-After, 504 at the deadline,
disconnects, priorities and graceful shutdown — with the shipped model, real HTTP and real SQLite.

A long ``max_queue_delay`` with the adaptive wait off holds requests in the queue for as long as a
test needs, with no test double anywhere.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx

from authentiq.modelling.synthetic import SyntheticItem
from authentiq.settings import Settings
from authentiq.storage.blobs import BlobStore
from authentiq.storage.db import open_database
from authentiq.storage.reports import ReportStore
from tests.conftest import LiveServer, files_of, live_server, make_settings

HOLD = {"max_queue_delay_ms": 1000, "adaptive_batching": False}  # a lone request waits 1 s


def post(server: LiveServer, item: SyntheticItem, **params: str) -> httpx.Response:
    return httpx.post(server.url + "/v1/inspections", params=params, files=files_of(item),
                      data={"brand": item.brand, "model": item.model}, timeout=60)


def in_background(fn: object, *args: object) -> tuple[threading.Thread, list[httpx.Response]]:
    out: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: out.append(fn(*args)))  # type: ignore[operator]
    thread.start()
    return thread, out


def stored(settings: Settings) -> int:
    engine = open_database(settings.database_url)
    try:
        return ReportStore(engine, BlobStore(settings.blob_dir)).count(tenant=None)
    finally:
        engine.dispose()


def queued(server: LiveServer) -> float:
    return server.metric("authentiq_queue_depth", priority="interactive")


def test_full_queue_is_refused_at_once_with_retry_after(tmp_path: Path,
                                                        genuine_item: SyntheticItem) -> None:
    with live_server(make_settings(tmp_path, max_queue_size=1, **HOLD)) as server:
        thread, first = in_background(post, server, genuine_item)
        server.wait_for(lambda: queued(server) == 1)
        t0 = time.monotonic()
        refused = post(server, genuine_item)
        refused_after = time.monotonic() - t0
        thread.join()
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"].endswith("/queue-full")
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused_after < 1.0  # refused without waiting behind the queued request
        assert first[0].status_code == 201
        assert server.metric("authentiq_batcher_rejections_total", reason="queue_full") == 1
        assert server.metric("authentiq_http_requests_total", method="POST",
                             route="/v1/inspections", status="503") == 1


def test_deadline_answers_504_while_queued_and_nothing_runs(tmp_path: Path,
                                                            genuine_item: SyntheticItem) -> None:
    settings = make_settings(tmp_path, **HOLD)
    with live_server(settings) as server:
        t0 = time.monotonic()
        # 700 ms: room for decoding the six photos on a busy 2-core machine (a deadline passing
        # there is a 504 too, but not the queue's), well before the held batch would run (1 s).
        r = post(server, genuine_item, timeout_ms="700")
        elapsed = time.monotonic() - t0
        assert r.status_code == 504, r.text
        assert r.json()["type"].endswith("/deadline-exceeded")
        assert elapsed < 0.95  # answered at its deadline, not when the 1 s batch would have run
        time.sleep(1.2)  # past the moment the held batch would have run
        assert server.metric("authentiq_batcher_rejections_total", reason="deadline") == 1, r.text
        assert server.metric("authentiq_batch_size_count") == 0  # never executed
    assert stored(settings) == 0


def test_disconnected_client_is_removed_from_the_queue(tmp_path: Path,
                                                       genuine_item: SyntheticItem) -> None:
    settings = make_settings(tmp_path, **HOLD)
    with live_server(settings) as server:
        request = httpx.Client().build_request(
            "POST", server.url + "/v1/inspections", files=files_of(genuine_item),
            data={"brand": genuine_item.brand, "model": genuine_item.model})
        body = request.read()
        head = "".join(f"{k}: {v}\r\n" for k, v in request.headers.items())
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(f"POST /v1/inspections HTTP/1.1\r\n{head}\r\n".encode() + body)
            server.wait_for(lambda: queued(server) == 1)
        server.wait_for(lambda: server.metric("authentiq_batcher_rejections_total",
                                              reason="cancelled") == 1)
        assert queued(server) == 0
        time.sleep(1.2)
        assert server.metric("authentiq_batch_size_count") == 0
    assert stored(settings) == 0


def test_shutdown_answers_every_accepted_request(tmp_path: Path,
                                                 genuine_item: SyntheticItem) -> None:
    settings = make_settings(tmp_path, **HOLD)
    with live_server(settings) as server:
        clients = [in_background(post, server, genuine_item) for _ in range(5)]
        server.wait_for(lambda: queued(server) == 5)
        server.server.should_exit = True  # what SIGTERM does
        for thread, _ in clients:
            thread.join()
    assert [out[0].status_code for _, out in clients] == [201] * 5
    assert stored(settings) == 5


def test_priority_and_timeout_are_validated(tmp_path: Path, genuine_item: SyntheticItem) -> None:
    with live_server(make_settings(tmp_path)) as server:
        bulk = post(server, genuine_item, priority="bulk", timeout_ms="20000")
        assert bulk.status_code == 201, bulk.text
        assert bulk.json()["timings"]["batch_size"] == 1
        for params in ({"priority": "urgent"}, {"timeout_ms": "0"}):
            r = post(server, genuine_item, **params)
            assert r.status_code == 422
            assert r.headers["content-type"] == "application/problem+json"
        assert server.metric("authentiq_queue_wait_seconds_count", priority="bulk") == 1
