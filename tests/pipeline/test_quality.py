from __future__ import annotations

import io

import pytest
from PIL import Image, ImageFilter

from authentiq.modelling.synthetic import SyntheticItem
from authentiq.pipeline.preprocess import decode_view
from authentiq.pipeline.quality import check
from authentiq.settings import Settings
from tests.conftest import jpeg

pytestmark = pytest.mark.db_independent  # the PostgreSQL pass leaves it out

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


def saved_at(data: bytes, quality: int, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buf, fmt, quality=quality)
    return buf.getvalue()


@pytest.mark.parametrize("quality", [1, 3, 10, 25, 50, 75, 90, 98])
def test_jpeg_quality_is_read_from_the_quantization_tables(genuine_item: SyntheticItem,
                                                           quality: int) -> None:
    q = quality_of(saved_at(genuine_item.views["stitching"], quality))
    assert q.jpeg_quality is not None and abs(q.jpeg_quality - quality) <= 1


@pytest.mark.parametrize("quality", [1, 5, 12])
def test_an_overcompressed_photo_is_retaken_whatever_its_sharpness(genuine_item: SyntheticItem,
                                                                   quality: int) -> None:
    """JPEG quality 1-12 replaces the detail with 8 x 8 blocks, whose edges read as sharp: the
    blur check passes such photos (an attack run found genuine items called counterfeit on one)."""
    data = saved_at(genuine_item.views["stitching"], quality)
    q = quality_of(data)
    assert not q.usable and q.reason == "overcompressed" and q.message
    assert f"about {q.jpeg_quality} of 100" in q.message and "as the camera saved it" in q.message
    assert q.sharpness >= THRESHOLDS.blur_threshold  # what the blur check alone would have let by


def test_photos_of_ordinary_quality_and_other_formats_pass(genuine_item: SyntheticItem) -> None:
    for quality in (30, 60, 95):
        assert quality_of(saved_at(genuine_item.views["logo"], quality)).usable
    png = quality_of(saved_at(genuine_item.views["logo"], 0, "PNG"))
    assert png.usable and png.jpeg_quality is None


@pytest.mark.parametrize("long_side", [16, 32, 48])
def test_a_photo_enlarged_from_a_thumbnail_is_retaken(genuine_item: SyntheticItem,
                                                      long_side: int) -> None:
    """Enlarged block by block (nearest neighbour) from a thumbnail: the block edges read as
    sharp, so only the repeated rows and columns give it away."""
    img = Image.open(io.BytesIO(genuine_item.views["hardware"])).convert("RGB")
    w, h = img.size
    small = img.resize((long_side, max(1, round(h * long_side / w))), Image.Resampling.BOX)
    buf = io.BytesIO()
    small.resize((w, h), Image.Resampling.NEAREST).save(buf, "JPEG", quality=90)
    q = quality_of(buf.getvalue())
    assert not q.usable and q.reason == "upscaled" and "full resolution" in (q.message or "")
    assert q.sharpness >= THRESHOLDS.blur_threshold and q.repeated_lines > 0.7


def test_photos_as_taken_are_neither_overcompressed_nor_upscaled() -> None:
    """120 views of 20 items, as the generator photographs them (JPEG quality 60-95, smooth
    renders): none is flagged by the two checks that look at how the photo was saved."""
    from authentiq.modelling.synthetic import make_item

    flagged = []
    for seed in range(20):
        for view, data in make_item(910_000 + seed, counterfeit=seed % 2 == 1).views.items():
            q = quality_of(data)
            if q.reason in ("overcompressed", "upscaled"):
                flagged.append((seed, view, q.reason, q.jpeg_quality, round(q.repeated_lines, 2)))
    assert not flagged


@pytest.mark.parametrize("size, stretched", [
    ((2400, 360), True), ((480, 1800), True),   # stretched 5x, 5x along the other side
    ((640, 360), False), ((840, 360), False),   # 16:9 and 21:9, a camera's own frames
])
def test_a_stretched_strip_is_retaken(genuine_item: SyntheticItem, size: tuple[int, int],
                                      stretched: bool) -> None:
    img = Image.open(io.BytesIO(genuine_item.views["logo"])).convert("RGB").resize(size)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    q = quality_of(buf.getvalue())
    assert (q.reason == "stretched") is stretched, q
    if stretched:
        assert "times as long as it is wide" in (q.message or "") and "strip" in (q.message or "")


@pytest.mark.parametrize("share", [0.3, 0.5])
def test_a_small_item_on_a_plain_backdrop_is_not_taken_for_a_thumbnail(
        genuine_item: SyntheticItem, share: float) -> None:
    """The usual marketplace shot: the item in the middle of a white sheet. Lines of backdrop
    repeat their neighbours as an enlarged thumbnail's do, so only lines through the item count
    (counting every line scored 0.73-0.82 here)."""
    import numpy as np

    rng = np.random.default_rng(0)
    sheet = np.clip(245 + rng.normal(0, 2.0, (1200, 1600, 3)), 0, 255).astype(np.uint8)
    canvas = Image.fromarray(sheet)
    item = Image.open(io.BytesIO(genuine_item.views["overall"])).convert("RGB")
    item = item.resize((int(1600 * share), int(1200 * share)))
    canvas.paste(item, ((1600 - item.width) // 2, (1200 - item.height) // 2))
    buf = io.BytesIO()
    canvas.save(buf, "JPEG", quality=90)
    q = quality_of(buf.getvalue())
    assert q.reason != "upscaled" and q.repeated_lines < THRESHOLDS.max_repeated_lines, q


def test_the_jpeg_quality_is_the_luma_components_table(genuine_item: SyntheticItem) -> None:
    """Table 0 fine, table 1 coarse, and the header pointing the luminance component at table 1:
    the photo is as coarse as its luminance, whatever table 0 says (and the reverse)."""
    buf = io.BytesIO()
    img = Image.open(io.BytesIO(genuine_item.views["logo"])).convert("RGB")
    img.save(buf, "JPEG", qtables=[[1] * 64, [255] * 64], subsampling=0)
    data = bytearray(buf.getvalue())
    assert quality_of(bytes(data)).jpeg_quality == 99  # luminance on the fine table 0
    sof = data.index(b"\xff\xc0")
    components = sof + 10  # marker 2, length 2, precision 1, height 2, width 2, count 1
    for k, table in enumerate((1, 0, 0)):  # luminance on the coarse table, chroma on the fine
        data[components + 3 * k + 2] = table
    q = quality_of(bytes(data))
    assert q.jpeg_quality == 1 and q.reason == "overcompressed"
