"""Attention heatmaps from the model's class activation map, blended over what the model saw.

An inspection keeps only the map (:class:`Attention`, a few KB stored beside the report's photos
as ``attention.npz``); the images are drawn the first time someone asks for them
(:mod:`authentiq.web.heatmap_images`), so a client that never looks pays nothing.

Drawing: for one class, the CAM's positive part is normalised by its maximum over the item's
present views (so the views of one report are comparable), each view's cell is cut out and
upsampled (bilinear) to the view's display square — the centre square the model analysed — mapped
through a colormap lookup table (one of matplotlib's colormaps, built once) and alpha-blended over
the photo, more opaque where the attention is higher. Numpy and Pillow, no pyplot
(``benchmarks/heatmap.py``: a few ms per view on one core).

The images carry no text: the page, the kiosk and the PDF caption them (a heatmap shows where the
model's attention was, not proof of where a defect is — :data:`NOTICE`, :data:`CAPTION`).
"""

from __future__ import annotations

import functools
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image

from authentiq.contract.model_spec import ModelSpec
from authentiq.contract.report import heatmap_file
from authentiq.pipeline.stitch import cell_of

CAPTION = "model attention ({cls} class); not proof of a defect"
NOTICE = ("Heatmaps show where the model's attention was when it scored the item, for the class "
          "named. They are an explanation of the model, not proof of where a defect is.")
COLORMAP = "inferno"
MAX_ALPHA = 0.65


@dataclass(frozen=True)
class Attention:
    """One inspection's class activation map ``[classes, h, w]`` over the mosaic, with the
    geometry needed to cut it into views: everything a heatmap needs except the photos, so a
    report can be drawn later even after the served model changed."""

    cam: np.ndarray  # float32 [n_classes, h, w]
    classes: tuple[str, ...]
    grid: tuple[int, int]  # rows, cols of the mosaic
    cells: Mapping[str, tuple[int, int]]  # every view of the model → (row, col)
    tile_size: int  # the decode's tile size (photos are decoded again to draw)

    @classmethod
    def of(cls, spec: ModelSpec, cam: np.ndarray) -> Attention:
        return cls(np.asarray(cam, np.float32), tuple(spec.classes), spec.grid,
                   {v: cell_of(spec, v) for v in spec.view_names}, spec.tile_size)

    def to_bytes(self) -> bytes:
        layout = {"classes": self.classes, "grid": self.grid, "cells": self.cells,
                  "tile_size": self.tile_size}
        buf = io.BytesIO()
        np.savez_compressed(buf, cam=self.cam, layout=np.array(json.dumps(layout)))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Attention:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            cam, layout = npz["cam"], json.loads(str(npz["layout"]))
        return cls(cam.astype(np.float32), tuple(layout["classes"]), tuple(layout["grid"]),
                   {v: (int(r), int(c)) for v, (r, c) in layout["cells"].items()},
                   int(layout["tile_size"]))

    def heat_by_view(self, cls: str, present: set[str]) -> dict[str, np.ndarray]:
        """Per present view: the class's attention in its cell, scaled to 0..1 over the item."""
        positive = np.maximum(self.cam[self.classes.index(cls)], 0.0)
        rows, cols = self.grid
        ch, cw = positive.shape[0] // rows, positive.shape[1] // cols
        cells = {v: positive[r * ch:(r + 1) * ch, c * cw:(c + 1) * cw]
                 for v, (r, c) in self.cells.items() if v in present}
        peak = max((float(x.max()) for x in cells.values()), default=0.0)
        return {v: (x / peak if peak > 0 else np.zeros_like(x)).astype(np.float32)
                for v, x in cells.items()}


@functools.cache
def lookup_table(name: str = COLORMAP) -> np.ndarray:
    """``[256, 3]`` uint8 RGB from one of matplotlib's colormaps (imported once, lazily)."""
    from matplotlib import colormaps

    return (colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)


def blend(display: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """``display`` uint8 [a, a, 3] with ``heat`` (0..1, any small grid) upsampled and overlaid."""
    side = display.shape[0]
    up = np.asarray(Image.fromarray(heat, "F").resize((side, side), Image.Resampling.BILINEAR))
    up = np.clip(up, 0.0, 1.0)
    colour = lookup_table()[(up * 255).astype(np.uint8)]
    alpha = (up * MAX_ALPHA)[..., None]
    out: np.ndarray = (display * (1 - alpha) + colour * alpha).astype(np.uint8)
    return out


def render(attention: Attention, displays: Mapping[str, np.ndarray], classes: list[str]
           ) -> dict[str, bytes]:
    """WebP images, per class: one per view in ``displays`` and the ``overview`` mosaic."""
    out: dict[str, bytes] = {}
    for cls in classes:
        heat = attention.heat_by_view(cls, set(displays))
        blended = {v: blend(displays[v], h) for v, h in heat.items()}
        for view, rgb in blended.items():
            out[heatmap_file(cls, view)] = _encode(rgb)
        out[heatmap_file(cls, "overview")] = _encode(_mosaic(attention, blended))
    return out


def _encode(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "WEBP", quality=80, method=0)
    return buf.getvalue()


def _mosaic(attention: Attention, blended: Mapping[str, np.ndarray]) -> np.ndarray:
    side = next(iter(blended.values())).shape[0] if blended else 64
    rows, cols = attention.grid
    canvas = np.full((rows * side, cols * side, 3), 90, dtype=np.uint8)  # grey: view not seen
    for view, rgb in blended.items():
        r, c = attention.cells[view]
        canvas[r * side:(r + 1) * side, c * side:(c + 1) * side] = rgb
    return canvas


def classes_to_render(verdict: str) -> list[str]:
    """The decided class; both for inconclusive."""
    return ["authentic", "counterfeit"] if verdict == "inconclusive" else [verdict]
