from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib import colormaps
from PIL import Image

from authentiq.pipeline import heatmap
from tests.conftest import tiny_spec

pytestmark = pytest.mark.db_independent  # the PostgreSQL pass leaves it out

SPEC = tiny_spec()  # views front | back in a 1x2 grid


def attention(cam: np.ndarray) -> heatmap.Attention:
    return heatmap.Attention.of(SPEC, cam)


def test_heat_is_positive_evidence_scaled_over_the_item() -> None:
    cam = np.zeros((2, 4, 8), np.float32)
    cam[1, :, 4:] = 2.0  # counterfeit evidence in "back"
    cam[1, 0, 0] = 1.0  # half as much at one spot of "front"
    cam[0] = -1.0  # no positive evidence for "authentic"
    heat = attention(cam).heat_by_view("counterfeit", {"front", "back"})
    assert heat["back"].max() == 1.0 and heat["front"].max() == 0.5
    assert not attention(cam).heat_by_view("authentic", {"front", "back"})["front"].any()
    assert set(attention(cam).heat_by_view("counterfeit", {"front"})) == {"front"}


def test_attention_survives_storage_with_its_geometry() -> None:
    """What a report stores is all a later draw needs, whatever model is served by then."""
    cam = np.random.default_rng(1).normal(size=(2, 4, 8)).astype(np.float32)
    stored = attention(cam).to_bytes()
    assert len(stored) < 4096  # a few KB beside the photos, not images
    back = heatmap.Attention.from_bytes(stored)
    assert np.array_equal(back.cam, cam) and back.classes == tuple(SPEC.classes)
    assert back.grid == SPEC.grid and back.tile_size == SPEC.tile_size
    assert dict(back.cells) == {"front": (0, 0), "back": (0, 1)}


def test_blend_keeps_the_photo_where_there_is_no_attention() -> None:
    photo = np.full((64, 64, 3), 120, np.uint8)
    heat = np.zeros((4, 4), np.float32)
    heat[0, 0] = 1.0
    out = heatmap.blend(photo, heat)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert (out[-1, -1] == 120).all()  # cold corner: the photo untouched
    hot = heatmap.lookup_table()[255]
    expected = 120 * (1 - heatmap.MAX_ALPHA) + hot * heatmap.MAX_ALPHA
    assert np.abs(out[0, 0].astype(float) - expected).max() <= 1.0
    lut = (colormaps[heatmap.COLORMAP](np.linspace(0, 1, 256))[:, :3] * 255).round()
    assert np.array_equal(heatmap.lookup_table(), lut.astype(np.uint8))


def test_render_names_and_sizes_without_text_in_the_pixels() -> None:
    cam = np.random.default_rng(0).normal(size=(2, 4, 8)).astype(np.float32)
    displays = {"front": np.full((96, 96, 3), 200, np.uint8)}
    images = heatmap.render(attention(cam), displays, heatmap.classes_to_render("inconclusive"))
    assert sorted(images) == ["heatmap-authentic-front.webp", "heatmap-authentic-overview.webp",
                              "heatmap-counterfeit-front.webp", "heatmap-counterfeit-overview.webp"]
    view = Image.open(io.BytesIO(images["heatmap-counterfeit-front.webp"]))
    assert view.format == "WEBP" and view.size == (96, 96)  # the page and the PDF caption it
    overview = Image.open(io.BytesIO(images["heatmap-counterfeit-overview.webp"]))
    assert overview.size == (192, 96)  # 1x2 grid; the missing "back" is grey
    assert np.asarray(overview.convert("RGB"))[:, 96:].std() < 1.0
    assert heatmap.classes_to_render("counterfeit") == ["counterfeit"]
