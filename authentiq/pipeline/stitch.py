"""Tile the views into the mosaic the model expects and normalise it.

Views go into the grid row by row in the order the model declares them; a missing or unusable
view becomes a blank tile (zeros after normalisation, i.e. the dataset mean colour), which is what
the model saw for missing views in training.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from authentiq.contract.model_spec import ModelSpec


def cell_of(spec: ModelSpec, view: str) -> tuple[int, int]:
    index = spec.view_names.index(view)
    return divmod(index, spec.grid[1])


def mosaic_uint8(spec: ModelSpec, tiles: Mapping[str, np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
    """Stitch uint8 tiles [T, T, 3] into [H, W, 3]; returns it with a [rows, cols] presence mask."""
    t = spec.tile_size
    rows, cols = spec.grid
    canvas = np.zeros((rows * t, cols * t, 3), dtype=np.uint8)
    present = np.zeros((rows, cols), dtype=bool)
    for view in spec.view_names:
        tile = tiles.get(view)
        if tile is None:
            continue
        if tile.shape != (t, t, 3):
            raise ValueError(f"tile for {view!r} has shape {tile.shape}, expected {(t, t, 3)}")
        r, c = cell_of(spec, view)
        canvas[r * t:(r + 1) * t, c * t:(c + 1) * t] = tile
        present[r, c] = True
    return canvas, present


def normalise(spec: ModelSpec, canvas: np.ndarray, present: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] → float32 [3, H, W]; absent cells are exactly zero."""
    t = spec.tile_size
    mean = np.asarray(spec.mean, dtype=np.float32) * 255
    inv_std = 1.0 / (np.asarray(spec.std, dtype=np.float32) * 255)
    out = (canvas.astype(np.float32) - mean) * inv_std
    mask = np.repeat(np.repeat(present, t, axis=0), t, axis=1)
    out[~mask] = 0.0
    return np.ascontiguousarray(out.transpose(2, 0, 1))


def build_input(spec: ModelSpec, tiles: Mapping[str, np.ndarray | None]) -> np.ndarray:
    canvas, present = mosaic_uint8(spec, tiles)
    return normalise(spec, canvas, present)
