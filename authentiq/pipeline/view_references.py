"""The per-view reference check: does each photo look like the same view of the claimed product?

The whole-item comparison (:mod:`authentiq.pipeline.reference_index`) cannot see one photo taken
from another product's genuine item among the claimed product's own: the item embedding
barely moves. So each usable photo is also compared, view by view, with the same view of the
claimed product's enrolled references.

**Descriptors** come from the model (``view_descriptors``, added by ``authentiq
fit-view-check``): per grid cell, the view gate's features (means of two middle stages: texture
and shape), square-rooted and *whitened by the within-product scatter* of genuine photos fitted
on items the model never trained on — the directions in which genuine photos of one product
differ among themselves (pose, light, background) are scaled down, so what is left is what tells
products apart. The frame is fixed by the model, so the check behaves the same whether one
product or a hundred are enrolled. Measured (docs/performance.md, "One view from another
product"): plain cosine of the features catches 1 of 33 foreign overall views at a 0.5% false
alarm rate, whitened 30 of 33.

**Findings** (:func:`check`): a view is ``unlike_references`` when its closest claimed reference
is below the view's floor, or below a looser floor while another product's references of that
view are closer by more than the view's margin. Floors and margins come from the model's
metadata (``ModelSpec.view_check``), one per number of references of the product.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from authentiq.contract.model_spec import ViewCheckParams
from authentiq.pipeline.similarity import FlatIndex

FINDING = "unlike_references"
MESSAGE = ("This photo does not look like the {view} of the genuine {product} references. If it "
           "is a photo of this item, a reviewer will compare it; if not, photograph this item's "
           "{view} and upload it again.")


def prepare(descriptor: np.ndarray) -> np.ndarray:
    """A ``view_descriptors`` row (or rows) → L2-normalised float32: cosine = inner product."""
    x = np.asarray(descriptor, np.float32)
    return np.asarray(x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12), np.float32)


class ViewReferences:
    """The enrolled references' descriptors: one exact index per product and view.

    Not thread-safe: :class:`~authentiq.pipeline.reference_index.ReferenceIndex` calls it under
    its lock.
    """

    def __init__(self) -> None:
        self._indexes: dict[tuple[str, str], FlatIndex] = {}
        self._views_of: dict[str, tuple[str, list[str]]] = {}  # id → (product, its views)

    def __len__(self) -> int:
        return len(self._views_of)

    def __contains__(self, ref: object) -> bool:
        return ref in self._views_of

    def put(self, ref: str, product: str, descriptors: Mapping[str, np.ndarray]) -> None:
        self.remove([ref])
        for view, x in descriptors.items():
            vector = prepare(x).reshape(1, -1)
            index = self._indexes.get((product, view))
            if index is None:
                index = self._indexes[(product, view)] = FlatIndex(vector.shape[1])
            index.add([ref], vector)
        self._views_of[ref] = (product, list(descriptors))

    def remove(self, refs: Iterable[str]) -> None:
        for ref in refs:
            found = self._views_of.pop(ref, None)
            if found is not None:
                for view in found[1]:
                    self._indexes[(found[0], view)].remove([ref])

    def count(self, product: str, view: str) -> int:
        """References of ``product`` that have ``view``."""
        index = self._indexes.get((product, view))
        return len(index) if index is not None else 0

    def closest(self, product: str, view: str, query: np.ndarray) -> tuple[str, float] | None:
        """The product's reference whose ``view`` is most similar to the prepared ``query``."""
        index = self._indexes.get((product, view))
        hits = index.search(query, 1) if index is not None else []
        return hits[0] if hits else None

    def closest_other(self, product: str, view: str, query: np.ndarray
                      ) -> tuple[str, str, float] | None:
        """(product, reference, similarity) of the most similar ``view`` of any other product."""
        found: tuple[str, str, float] | None = None
        for (other, v), index in self._indexes.items():
            if v != view or other == product or not len(index):
                continue
            ref, sim = index.search(query, 1)[0]
            if found is None or sim > found[2]:
                found = (other, ref, sim)
        return found


@dataclass(frozen=True)
class ViewMatch:
    """One photo against the same view of the claimed product's references."""

    view: str
    similarity: float  # to the closest claimed reference
    reference_id: str
    floor: float
    finding: str | None = None  # unlike_references
    other_product: str | None = None  # a product whose references' same view is closer
    other_similarity: float | None = None


def check(params: ViewCheckParams, refs: ViewReferences, product: str,
          queries: Mapping[str, np.ndarray]) -> list[ViewMatch]:
    """Each of ``queries`` (view → descriptor) against the claimed ``product``'s references;
    views its references lack, or the model's floors do not name, are left out."""
    out = []
    for view, descriptor in queries.items():
        query = prepare(descriptor)
        hit = refs.closest(product, view, query) if view in params.floors else None
        if hit is None:
            continue
        ref, sim = hit
        floor, loose, margin = params.at(view, refs.count(product, view))
        finding, other = (FINDING if sim < floor else None), None
        if finding is None and sim < loose:  # only then are the other products searched
            other = refs.closest_other(product, view, query)
            if other is not None and other[2] - sim > max(margin, 0.0):
                finding = FINDING
            else:
                other = None
        out.append(ViewMatch(view, round(sim, 4), ref, round(floor, 4), finding,
                             other[0] if other else None,
                             round(other[2], 4) if other else None))
    return out
