from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from authentiq.errors import CorruptImage, EmptyFile, ImageTooLarge, UnsupportedMediaType
from authentiq.pipeline.preprocess import decode_view, supported_formats
from tests.conftest import jpeg

pytestmark = pytest.mark.db_independent  # the PostgreSQL pass leaves it out


def encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_jpeg_decodes_to_tile_with_draft_and_keeps_full_size() -> None:
    view = decode_view(jpeg((4000, 3000)), tile_size=128)
    assert view.tile.shape == (128, 128, 3) and view.tile.dtype == np.uint8
    assert view.analysis.shape == (256, 256)
    assert (view.width, view.height, view.format) == (4000, 3000, "JPEG")


def test_exif_orientation_is_applied() -> None:
    img = Image.new("RGB", (400, 300), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 400, 150))  # blue top half
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when shown
    view = decode_view(encode(img, "JPEG", exif=exif, quality=95), tile_size=64)
    assert (view.width, view.height) == (300, 400)
    left, right = view.tile[:, :8].mean(axis=(0, 1)), view.tile[:, -8:].mean(axis=(0, 1))
    assert right[2] > 200 and left[0] > 200  # the blue top is now on the right


@pytest.mark.parametrize("mode", ["L", "CMYK", "P", "RGBA", "LA"])
def test_colour_modes_become_rgb(mode: str) -> None:
    img = Image.new("RGB", (300, 300), (200, 100, 50)).convert(mode)
    fmt = "JPEG" if mode in ("L", "CMYK") else "PNG"
    view = decode_view(encode(img, fmt), tile_size=32)
    assert view.tile.shape == (32, 32, 3)


def test_transparent_pixels_composite_on_white() -> None:
    img = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    view = decode_view(encode(img, "PNG"), tile_size=32)
    assert view.tile.min() == 255


def test_16_bit_png_is_scaled_not_clipped() -> None:
    arr = np.full((300, 300), 32768, dtype=np.uint16)  # mid grey in 16 bits
    view = decode_view(encode(Image.fromarray(arr), "PNG"), tile_size=32)
    assert 120 <= view.tile.mean() <= 135


def test_webp_is_accepted() -> None:
    img = Image.new("RGB", (300, 300), (10, 200, 30))
    assert decode_view(encode(img, "WEBP"), tile_size=32).format == "WEBP"


def test_empty_file() -> None:
    with pytest.raises(EmptyFile):
        decode_view(b"", tile_size=32, view="logo")


def test_not_an_image() -> None:
    with pytest.raises(UnsupportedMediaType) as info:
        decode_view(b"%PDF-1.7 not an image", tile_size=32, view="logo")
    assert info.value.view == "logo" and "JPEG" in info.value.detail


def test_gif_is_not_accepted() -> None:
    with pytest.raises(UnsupportedMediaType):
        decode_view(encode(Image.new("RGB", (300, 300)), "GIF"), tile_size=32)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_image(fmt: str) -> None:
    data = jpeg((800, 600)) if fmt == "JPEG" else encode(
        Image.fromarray(np.random.default_rng(1).integers(0, 255, (600, 800, 3), dtype=np.uint8)), "PNG")
    with pytest.raises(CorruptImage):
        decode_view(data[: len(data) // 2], tile_size=32)


def test_pixel_limit() -> None:
    with pytest.raises(ImageTooLarge) as info:
        decode_view(jpeg((1000, 1000)), tile_size=32, max_pixels=999_999)
    assert "1,000,000" in info.value.detail


def test_decompression_bomb_header_is_refused_before_decoding() -> None:
    """A 200-byte PNG whose header claims 100,000 × 100,000 pixels."""
    png = encode(Image.new("RGB", (1, 1)), "PNG")
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    patched = png[:16] + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + png[33:]
    with pytest.raises(ImageTooLarge):
        decode_view(patched, tile_size=32)


def test_heic_decodes_when_the_extra_is_installed() -> None:
    pytest.importorskip("pillow_heif", reason="needs the [heic] extra")
    assert "HEIF" in supported_formats()  # registers the opener, which also enables saving
    view = decode_view(encode(Image.new("RGB", (300, 200), (200, 30, 30)), "HEIF", quality=90),
                       tile_size=32)
    assert view.format == "HEIF" and (view.width, view.height) == (300, 200)
    assert abs(float(view.tile[..., 0].mean()) - 200) < 8
