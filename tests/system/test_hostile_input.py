"""Hostile and broken input: property-based tests of the image pipeline (hypothesis) and specific
attacks through the real app. Only documented errors, no crash, no hang, no temp files left."""

from __future__ import annotations

import io
import logging
import os
import signal
import socket
import struct
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from authentiq.errors import CorruptImage, EmptyFile, ImageTooLarge, UnsupportedMediaType
from authentiq.modelling.synthetic import SyntheticItem
from authentiq.pipeline.preprocess import decode_view
from tests.conftest import files_of, jpeg, live_server, make_settings

DOCUMENTED = (CorruptImage, EmptyFile, ImageTooLarge, UnsupportedMediaType)
HANG_S = 10  # a hang guard, not a speed target


@contextmanager
def no_hang(seconds: int = HANG_S) -> Iterator[None]:
    def fail(*_: object) -> None:
        raise AssertionError(f"decoding took longer than {seconds} s: a hang")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def decode(data: bytes) -> None:
    with no_hang():
        try:
            view = decode_view(data, tile_size=32, max_pixels=4_000_000)
        except DOCUMENTED:
            return
    assert view.tile.shape == (32, 32, 3)


def encoded(fmt: str, size: tuple[int, int] = (96, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (120, 60, 30)).save(buf, fmt)
    return buf.getvalue()


SEEDS = {fmt: encoded(fmt) for fmt in ("JPEG", "PNG", "WEBP")}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes_give_only_documented_errors(data: bytes) -> None:
    decode(data)


@FUZZ
@given(st.sampled_from(sorted(SEEDS)), st.data())
def test_mutated_images_give_only_documented_errors(fmt: str, data: st.DataObject) -> None:
    blob = bytearray(SEEDS[fmt])
    for _ in range(data.draw(st.integers(1, 8))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        at = data.draw(st.integers(0, max(0, len(blob) - 1)))
        if kind == "flip" and blob:
            blob[at] ^= data.draw(st.integers(1, 255))
        elif kind == "cut":
            del blob[at:at + data.draw(st.integers(1, 64))]
        elif kind == "insert":
            blob[at:at] = data.draw(st.binary(min_size=1, max_size=64))
        else:
            blob[at:at] = blob[at:at + data.draw(st.integers(1, 256))]
    decode(bytes(blob))


def png_with_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims huge dimensions (the decompression-bomb shape)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_huge_dimensions_in_a_small_file_are_refused_before_decoding() -> None:
    data = png_with_size(60_000, 60_000)
    assert len(data) < 200
    with no_hang(), pytest.raises(ImageTooLarge):
        decode_view(data, tile_size=32)


def test_polyglot_and_malformed_exif() -> None:
    polyglot = jpeg((320, 320)) + b"PK\x03\x04" + os.urandom(2048)  # a JPEG with a zip glued on
    assert decode_view(polyglot, tile_size=32).format == "JPEG"
    html_first = b"<html><script>alert(1)</script>" + jpeg((64, 64))
    with pytest.raises(UnsupportedMediaType):
        decode_view(html_first, tile_size=32)
    img = Image.new("RGB", (300, 200), (10, 200, 30))
    exif = Image.Exif()
    exif[0x0112] = 99  # an orientation that does not exist
    exif[0x010F] = "A" * 5000  # an oversized maker string
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    assert decode_view(buf.getvalue(), tile_size=32).width == 300
    broken = bytearray(buf.getvalue())
    at = broken.find(b"Exif")
    broken[at + 10:at + 40] = os.urandom(30)  # garbage inside the EXIF block
    decode(bytes(broken))


def spooled_files() -> set[str]:
    return {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("tmp")}


def test_hostile_multipart_through_the_app(client: TestClient, genuine_item: SyntheticItem) -> None:
    before = spooled_files()
    form = {"brand": genuine_item.brand, "model": genuine_item.model}
    # File names that look like path traversal are never used for storage.
    files = [(v, ("../../../../etc/passwd", data, "image/jpeg")) for v, data in genuine_item.views.items()]
    r = client.post("/v1/inspections", files=files, data=form)
    assert r.status_code == 201
    assert "hardware.jpg" in r.json()["stored_files"]  # our name for the photo, not the client's
    assert all("/" not in name and ".." not in name for name in r.json()["stored_files"])
    # Thousands of parts: refused, not parsed to the end.
    many = [(f"f{i}", (f"{i}.jpg", b"x", "image/jpeg")) for i in range(2000)]
    r = client.post("/v1/inspections", files=many, data=form)
    assert r.status_code == 422 and r.json()["type"].endswith("/too-many-files")
    fields = {f"k{i}": "v" for i in range(5000)}
    r = client.post("/v1/inspections", files=files_of(genuine_item), data={**form, **fields})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    # A bomb among real photos: refused, nothing stored.
    bomb = [*files_of(genuine_item, ["overall", "logo", "stitching", "hardware"]),
            ("label", ("label.png", png_with_size(60_000, 60_000), "image/png"))]
    r = client.post("/v1/inspections", files=bomb, data=form)
    assert r.status_code == 413 and r.json()["view"] == "label"
    assert client.get("/v1/reports").json()["total"] == 1
    assert spooled_files() <= before, "a spooled upload was left in the temp folder"


def test_malformed_multipart_is_422_on_every_upload_route(client: TestClient) -> None:
    """Issue 19 finding 13: /v1/quality answered Starlette's 400 where inspections answer 422."""
    nameless = b"--b\r\nContent-Disposition: form-data\r\n\r\nabc\r\n--b--\r\n"
    bodies = {"part without a name": nameless, "garbage": b"\x00\xff--not multipart"}
    for path in ("/v1/inspections", "/v1/quality", "/v1/references"):
        for what, body in bodies.items():
            r = client.post(path, content=body,
                            headers={"content-type": "multipart/form-data; boundary=b"})
            assert r.status_code == 422, (path, what, r.status_code, r.text)
            assert r.headers["content-type"] == "application/problem+json"
    too_many = [("photo", (f"{i}.jpg", jpeg((32, 32)), "image/jpeg")) for i in range(3)]
    r = client.post("/v1/quality", files=too_many, data={"view": "logo"})
    assert r.status_code == 422 and r.json()["type"].endswith("/too-many-files")


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("DELETE", "/v1/references", {"GET", "POST"}),
    ("PUT", "/v1/reports/0123/reviews", {"POST"}),
    ("POST", "/v1/reports/0123", {"GET"}),
    ("PATCH", "/v1/references/0123", {"GET", "DELETE"}),
])
def test_405_allow_lists_every_method_of_the_path(client: TestClient, method: str, path: str,
                                                  allowed: set[str]) -> None:
    r = client.request(method, path)
    assert r.status_code == 405 and r.headers["content-type"] == "application/problem+json"
    assert set(r.headers["allow"].split(", ")) == allowed


def test_aborted_upload_is_one_log_line_and_a_499(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                  genuine_item: SyntheticItem) -> None:
    """Issue 19 finding 9: a client that disconnects mid-multipart got a ~130-line traceback
    and counted as a 500 in /metrics."""
    photo = genuine_item.views["overall"]
    head = (b"--b\r\nContent-Disposition: form-data; name=\"overall\"; filename=\"o.jpg\"\r\n"
            b"Content-Type: image/jpeg\r\n\r\n")
    caplog.set_level(logging.INFO)
    with live_server(make_settings(tmp_path)) as server:
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(b"POST /v1/inspections HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: multipart/form-data; boundary=b\r\n"
                         b"Content-Length: %d\r\n\r\n" % (len(head) + len(photo) + 200)
                         + head + photo[: len(photo) // 2])
            time.sleep(0.3)  # the server is reading the body
        server.wait_for(lambda: server.metric("authentiq_http_requests_total", method="POST",
                                              route="/v1/inspections", status="499") == 1)
        assert server.metric("authentiq_http_requests_total", method="POST",
                             route="/v1/inspections", status="500") == 0
        assert httpx.get(server.url + "/readyz").status_code == 200
    aborted = [r for r in caplog.records if "client went away" in r.getMessage()]
    assert len(aborted) == 1 and aborted[0].levelno == logging.INFO
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], \
        [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
