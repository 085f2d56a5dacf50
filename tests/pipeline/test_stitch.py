from __future__ import annotations

import numpy as np
import pytest

from authentiq.pipeline.stitch import build_input, cell_of, mosaic_uint8
from tests.conftest import tiny_spec

pytestmark = pytest.mark.db_independent  # the PostgreSQL pass leaves it out


def test_views_go_row_by_row_and_missing_views_are_zero() -> None:
    spec = tiny_spec(grid=(2, 2), views=[{"name": n} for n in ("a", "b", "c")])
    assert [cell_of(spec, v) for v in ("a", "b", "c")] == [(0, 0), (0, 1), (1, 0)]
    t = spec.tile_size
    tiles = {"a": np.full((t, t, 3), 10, np.uint8), "b": None, "c": np.full((t, t, 3), 200, np.uint8)}
    canvas, present = mosaic_uint8(spec, tiles)
    assert present.tolist() == [[True, False], [True, False]]
    assert canvas[0, 0, 0] == 10 and canvas[t, 0, 0] == 200 and canvas[0, t, 0] == 0
    x = build_input(spec, tiles)
    assert x.shape == (3, 2 * t, 2 * t) and x.dtype == np.float32
    assert np.all(x[:, :t, t:] == 0) and np.all(x[:, t:, t:] == 0)  # blank cells
    expected = (10 / 255 - 0.5) / 0.25
    assert np.allclose(x[:, 0, 0], expected, atol=1e-5)


def test_wrong_tile_shape() -> None:
    spec = tiny_spec()
    with pytest.raises(ValueError, match="front"):
        mosaic_uint8(spec, {"front": np.zeros((8, 8, 3), np.uint8)})
