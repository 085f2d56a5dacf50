"""Near-duplicate photos: re-saved copies are found, different items of one product are not."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from authentiq.modelling.photo_hash import MAX_DISTANCE, fingerprint, near_pairs
from authentiq.modelling.synthetic import make_item
from authentiq.pipeline.preprocess import decode_view

pytestmark = pytest.mark.db_independent  # the PostgreSQL pass leaves it out


def grey(data: bytes) -> np.ndarray:
    return decode_view(data, tile_size=32).analysis


def resaved(data: bytes, scale: float, quality: int) -> bytes:
    img = Image.open(io.BytesIO(data))
    buf = io.BytesIO()
    img.resize((int(img.width * scale), int(img.height * scale))).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def test_resaved_copies_are_near_duplicates_and_other_items_are_not() -> None:
    items = [make_item(seed, counterfeit=False) for seed in (11, 12, 13)]
    photo = items[0].views["hardware"]
    prints = [fingerprint(grey(photo)), fingerprint(grey(resaved(photo, 0.5, 60))),
              *(fingerprint(grey(it.views["hardware"])) for it in items[1:])]
    pairs = near_pairs(prints)
    assert [(i, j) for i, j, _ in pairs] == [(0, 1)]
    assert pairs[0][2] <= MAX_DISTANCE


def test_similar_hashes_of_different_photos_are_not_enough() -> None:
    """Photos whose left-to-right gradients agree (a smooth lining under different light bands)
    share every hash bit; their thumbnails do not correlate."""
    ramp = np.tile(np.linspace(20, 60, 256), (256, 1))
    rng = np.random.default_rng(0)
    bands = [np.repeat(rng.uniform(0, 180, 16), 16)[:, None] for _ in range(2)]
    a, b = fingerprint(ramp + bands[0]), fingerprint(ramp + bands[1])
    bits = sum(int(x ^ y).bit_count() for x, y in zip(a.dhash, b.dhash, strict=True))
    assert bits <= MAX_DISTANCE  # the hash alone would call them duplicates
    assert near_pairs([a, b]) == []
