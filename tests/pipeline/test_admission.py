"""Bounded decoding and fairness between clients (issue 19, finding 5): decoded-byte budgets
checked from the header, the deadline covering decodes, each client's requests in flight capped,
and the decode gate and the batcher shared round-robin between clients."""

from __future__ import annotations

import asyncio
import io
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from authentiq.api.app import create_app
from authentiq.contract.deadline import Deadline
from authentiq.errors import DeadlineExceeded
from authentiq.inference.batcher import Priority, _Job, fair_share
from authentiq.modelling.synthetic import SyntheticItem
from authentiq.pipeline.admission import DecodeGate
from authentiq.pipeline.preprocess import probe
from tests.conftest import files_of, live_server, make_settings

MiB = 2**20


def flat_png(side: int, mode: str = "RGBA") -> bytes:
    """A tiny file with a huge raster: side² × 4 bytes decoded from ~0.1 MB of PNG."""
    buf = io.BytesIO()
    Image.new(mode, (side, side), (90, 80, 70, 255)[: len(mode)]).save(buf, "PNG")
    return buf.getvalue()


def with_overall(item: SyntheticItem, data: bytes) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [(v, ("overall.png", data, "image/png") if v == "overall" else f)
            for v, f in files_of(item)]


def test_decoded_bytes_are_budgeted_per_view_and_per_request(tmp_path: Path,
                                                              genuine_item: SyntheticItem) -> None:
    settings = make_settings(tmp_path, max_decoded_bytes_per_view=8 * MiB,
                             max_decoded_bytes_per_request=12 * MiB, decode_memory_bytes=32 * MiB)
    form = {"brand": genuine_item.brand, "model": genuine_item.model}
    with TestClient(create_app(settings)) as client:
        big = flat_png(2000)  # 16 MiB decoded from a few kB
        assert len(big) < 100_000
        r = client.post("/v1/inspections", files=with_overall(genuine_item, big), data=form)
        assert r.status_code == 413 and r.json()["type"].endswith("/image-too-large"), r.text
        assert r.json()["view"] == "overall" and r.json()["decoded_bytes"] == 16_000_000
        r = client.post("/v1/quality", files={"photo": ("p.png", big, "image/png")},
                        data={"view": "logo"})
        assert r.status_code == 413
        # two photos under the per-view budget, over the per-request one together
        mid = flat_png(1300)  # 6.4 MiB each
        files = [(v, ("x.png", mid, "image/png") if v in ("overall", "logo") else f)
                 for v, f in files_of(genuine_item)]
        r = client.post("/v1/inspections", files=files, data=form)
        assert r.status_code == 413 and "per request" in r.json()["detail"], r.text
        assert client.get("/v1/reports").json()["total"] == 0
        # a 12 MP JPEG is decoded at 1/8 scale: far under the budget, accepted
        assert client.post("/v1/inspections", files=files_of(genuine_item), data=form
                           ).status_code in (201, 422)


@pytest.mark.slow
def test_deadline_covers_decoding_and_clients_are_capped(tmp_path: Path,
                                                         genuine_item: SyntheticItem) -> None:
    heavy = flat_png(6000)  # 137 MiB decoded: about a second of decoding
    settings = make_settings(tmp_path, max_decoded_bytes_per_view=160 * MiB,
                             max_decoded_bytes_per_request=200 * MiB,
                             decode_memory_bytes=400 * MiB, max_in_flight_per_client=1)
    form = {"brand": genuine_item.brand, "model": genuine_item.model}
    with live_server(settings) as server:
        r = httpx.post(server.url + "/v1/inspections", params={"timeout_ms": 100}, data=form,
                       files=with_overall(genuine_item, heavy), timeout=60)
        assert r.status_code == 504 and r.json()["type"].endswith("/deadline-exceeded"), r.text

        def post(_: int) -> httpx.Response:
            return httpx.post(server.url + "/v1/inspections", data=form, timeout=60,
                              files=with_overall(genuine_item, heavy))

        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(post, range(3)))
        codes = sorted(a.status_code for a in answers)
        assert 429 in codes and codes[0] in (201, 422), codes
        refused = next(a for a in answers if a.status_code == 429)
        assert refused.json()["type"].endswith("/too-many-in-flight")
        assert refused.headers["retry-after"] == "1"


def test_decode_gate_serves_clients_round_robin_within_the_budget() -> None:
    async def scenario() -> list[str]:
        gate = DecodeGate(slots=2, capacity_bytes=200 * MiB, small_bytes=1 * MiB)
        order: list[str] = []

        async def decode(client: str, cost: int, hold: float) -> None:
            ticket = await gate.admit(client, cost)
            order.append(client)
            await asyncio.sleep(hold)
            ticket.release()

        heavy = [asyncio.create_task(decode("heavy", 60 * MiB, 0.02)) for _ in range(4)]
        await asyncio.sleep(0)
        normal = [asyncio.create_task(decode("normal", MiB // 2, 0.001)) for _ in range(2)]
        await asyncio.gather(*heavy, *normal)
        assert gate.peak_bytes <= 200 * MiB and gate.held_bytes == 0
        return order

    order = asyncio.run(scenario())
    # heavy holds one slot at most (one slot is kept for others) and both normal decodes run
    # while heavy's first is still running, not after its whole queue
    assert order[:3] == ["heavy", "normal", "normal"], order


def test_decode_gate_deadline_and_cancel_leave_nothing_held() -> None:
    async def scenario() -> None:
        gate = DecodeGate(slots=1, capacity_bytes=10 * MiB)
        first = await gate.admit("a", 8 * MiB)
        with pytest.raises(DeadlineExceeded):
            await gate.admit("b", 8 * MiB, deadline=Deadline.from_timeout(0.05))
        waiting = asyncio.create_task(gate.admit("c", 1 * MiB))
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert gate.waiting == 0
        first.release()
        assert gate.held_bytes == 0 and gate.running == 0

    asyncio.run(scenario())


def test_batches_take_clients_round_robin() -> None:
    loop = asyncio.new_event_loop()
    try:
        jobs = deque(_Job(np.zeros(1), Priority.BULK, loop.create_future(), float(i), client)
                     for i, client in enumerate("AAAAAABC"))
        taken = fair_share(jobs, 4)
    finally:
        loop.close()
    assert [j.client for j in taken] == ["A", "B", "C", "A"]
    assert [j.queued_at for j in taken] == [0.0, 6.0, 7.0, 1.0]  # each client's oldest first


def test_probing_a_png_decodes_no_pixels() -> None:
    """Pillow's PNG getexif() loads the whole image: a probe that asked it for the orientation
    decoded every PNG outside the budget (4.4 GB peak RSS in benchmarks.fairness)."""
    header = probe(flat_png(3000), max_decoded_bytes=64 * MiB)
    assert header.image.tile, "the pixels were decoded while reading the header"
    assert header.decoded_bytes == 3000 * 3000 * 4 and header.orientation == 1
