from __future__ import annotations

import io

import pytest
from PIL import Image, ImageFilter

from authentiq.modelling.synthetic import SyntheticItem
from authentiq.pipeline.preprocess import decode_view
from authentiq.pipeline.quality import check
from authentiq.settings import Settings
from tests.conftest import jpeg

THRESHOLDS = Settings().quality


def quality_of(data: bytes):  # type: ignore[no-untyped-def]
    return check(decode_view(data, tile_size=128), THRESHOLDS)


def transformed(data: bytes, fn) -> bytes:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    fn(Image.open(io.BytesIO(data)).convert("RGB")).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def test_generator_photos_are_usable(genuine_item: SyntheticItem) -> None:
    for view, data in genuine_item.views.items():
        q = quality_of(data)
        assert q.usable, (view, q)


@pytest.mark.parametrize("fn, reason", [
    (lambda im: im.filter(ImageFilter.GaussianBlur(5)), "blurred"),
    (lambda im: im.point(lambda p: p // 10), "underexposed"),
    (lambda im: im.point(lambda p: 235 + p // 20), "overexposed"),
    (lambda im: im.resize((200, 150)), "too_small"),
])
def test_unusable_photos_get_a_reason(genuine_item: SyntheticItem, fn, reason: str) -> None:  # type: ignore[no-untyped-def]
    q = quality_of(transformed(genuine_item.views["logo"], fn))
    assert not q.usable and q.reason == reason and q.message


def test_glare() -> None:
    def glare(im: Image.Image) -> Image.Image:
        im.paste((255, 255, 255), (0, 0, im.width, im.height // 2))
        return im
    q = quality_of(transformed(jpeg((800, 600)), glare))
    assert q.reason == "glare"
