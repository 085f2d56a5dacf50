"""The view gate: is each photo a photo of the view its slot asks for, of an item the model knows?

Three findings, each a retake request for one view (the verdict becomes inconclusive):

* ``not_a_product`` — the photo's features are further from every view's fitted distribution than
  that view's threshold: nothing like what the model was fitted on (noise, a blank frame, a
  document, another object, a real photo for a model fitted on synthetic ones).
* ``wrong_view`` — it does not fit its own slot's view but fits another view, or it fits another
  view much better (``GateParams.wrong_view_ratio``) than its own.
* ``duplicate_view`` — the same photo as another slot's (16 × 16 grey thumbnails correlate at
  ``GateParams.duplicate_correlation`` or more; genuine different views stay far below).
* ``misoriented_view`` — mirrored, upside down or turned on its side after it was taken;
  ``degraded_view`` — ruined by heavy compression, upscaling from a small image or stretching.
  Both from the model's alteration head (:mod:`authentiq.modelling.training.alterations`), when it has one.

Distances and alteration logits come from the model (the ``view_scores`` output,
:mod:`authentiq.modelling.training.gate`); thresholds from its metadata. Numpy only, microseconds per item.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image

from authentiq.contract.model_spec import GateParams, ModelSpec
from authentiq.pipeline.stitch import cell_of

THUMB = 16
MESSAGES = {
    "not_a_product": "This photo does not look like the {view} of an item this model knows.",
    "wrong_view": "This photo looks like the {other} view, not the {view}.",
    "duplicate_view": "This is the same photo as the {other} view.",
    "misoriented_view": "This photo looks mirrored, upside down or turned on its side.",
    "degraded_view": "This photo looks heavily compressed, enlarged from a small image or stretched.",
}
FINDINGS = tuple(MESSAGES)
ALTERED = ("misoriented_view", "degraded_view")  # the alteration head's two logits, in order
RETAKE_HINT = "Photograph the {view} as the guide shows and upload it again."


@dataclass(frozen=True)
class ViewCheck:
    """The gate's answer for one photo. ``distance`` is its own view's distance ratio (≤ 1: like
    the photos the model was fitted on); ``looks_like`` the view it resembles most."""

    view: str
    distance: float
    looks_like: str | None
    finding: str | None = None  # not_a_product | wrong_view | duplicate_view
    other: str | None = None  # the other view named by wrong_view / duplicate_view

    @property
    def message(self) -> str | None:
        if self.finding is None:
            return None
        text = MESSAGES[self.finding].format(view=self.view, other=self.other)
        return f"{text} {RETAKE_HINT.format(view=self.view)}"


def check_views(spec: ModelSpec, gate: GateParams, scores: np.ndarray, present: set[str], *,
                single: bool = False) -> dict[str, ViewCheck]:
    """``scores [cells, views (+ 2)]`` (one item's ``view_scores``) → a check per present view."""
    thresholds = gate.single_photo_thresholds if single else gate.thresholds
    limits = np.asarray([thresholds[v] for v in spec.view_names], dtype=np.float64)
    altered = gate.single_photo_alteration_thresholds if single else gate.alteration_thresholds
    cols, n_views = spec.grid[1], len(spec.view_names)
    out = {}
    for view in spec.view_names:
        if view not in present:
            continue
        r, c = cell_of(spec, view)
        cell = np.asarray(scores[r * cols + c], dtype=np.float64)
        ratios = cell[:n_views] / limits
        own_index = spec.view_names.index(view)
        own = float(ratios[own_index])
        others = np.delete(ratios, own_index)
        other_names = [v for v in spec.view_names if v != view]
        best = int(np.argmin(others)) if len(others) else -1
        best_ratio = float(others[best]) if best >= 0 else float("inf")
        looks_like = view if own <= best_ratio else other_names[best]
        finding, other = None, None
        if own > 1 and best_ratio > 1:
            finding = "not_a_product"
        elif best >= 0 and (own > 1 or own > gate.wrong_view_ratio * best_ratio):
            finding, other = "wrong_view", other_names[best]
        elif altered is not None and len(cell) >= n_views + 2:
            over = cell[n_views:n_views + 2] - np.asarray(altered[view], dtype=np.float64)
            if over.max() > 0:
                finding = ALTERED[int(np.argmax(over))]
        out[view] = ViewCheck(view, round(own, 4), looks_like, finding, other)
    return out


def thumbnail(tile: np.ndarray) -> np.ndarray:
    """A zero-mean, unit-norm 16 × 16 grey thumbnail (flat) of a model tile."""
    grey = Image.fromarray(tile).convert("L").resize((THUMB, THUMB), Image.Resampling.BOX)
    g = np.asarray(grey, dtype=np.float64).ravel()
    g -= g.mean()
    norm = float(np.linalg.norm(g))
    return g / norm if norm > 1e-6 else g


def duplicates(spec: ModelSpec, gate: GateParams, tiles: Mapping[str, np.ndarray]
               ) -> dict[str, str]:
    """Views whose photo repeats an earlier view's (in the model's view order) → that view.

    A flat photo (no texture to correlate) repeats another flat photo of the same mean colour."""
    seen: list[tuple[str, np.ndarray, float]] = []
    out: dict[str, str] = {}
    for view in spec.view_names:
        tile = tiles.get(view)
        if tile is None:
            continue
        thumb, level = thumbnail(tile), float(tile.mean())
        for other, other_thumb, other_level in seen:
            flat = not thumb.any() and not other_thumb.any()
            if (flat and abs(level - other_level) < 2.0) or \
                    float(thumb @ other_thumb) >= gate.duplicate_correlation:
                out[view] = other
                break
        seen.append((view, thumb, level))
    return out


def assess(spec: ModelSpec, scores: np.ndarray | None, tiles: Mapping[str, np.ndarray], *,
           single: bool = False) -> dict[str, ViewCheck] | None:
    """Every present view's check, duplicates included; None when the model has no gate."""
    if spec.gate is None or scores is None:
        return None
    checks = check_views(spec, spec.gate, scores, set(tiles), single=single)
    for view, other in duplicates(spec, spec.gate, tiles).items():
        c = checks[view]
        checks[view] = ViewCheck(view, c.distance, c.looks_like, "duplicate_view", other)
    return checks
