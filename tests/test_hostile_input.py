"""Hostile and broken input: property-based tests of the image pipeline (hypothesis) and specific
attacks through the real app. Only documented errors, no crash, no hang, no temp files left."""

from __future__ import annotations

import io
import os
import signal
import struct
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from authentiq.errors import CorruptImage, EmptyFile, ImageTooLarge, UnsupportedMediaType
from authentiq.preprocess import decode_view
from authentiq.synthetic import SyntheticItem
from tests.conftest import files_of, jpeg

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
    assert sorted(r.json()["stored_files"])[0] in ("heatmap-authentic-hardware.webp", "hardware.jpg")
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
