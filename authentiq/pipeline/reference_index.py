"""In-memory search over the reference database, kept in step with it across worker processes.

One :class:`~authentiq.pipeline.similarity.VectorIndex` per product holds the current model version's
embeddings of live references. :meth:`ReferenceIndex.sync` applies what changed in the database
since the last change counter value it saw (``ReferenceStore.changes``): at start-up that is
everything, afterwards a cheap query at most every ``sync_interval_s`` — so an enrolment or a
delete in one worker is seen by every other worker within that interval, and at once by the
worker that made it.

Beside each product's embeddings it keeps the references' per-view descriptors
(:class:`~authentiq.pipeline.view_references.ViewReferences`) for the per-view check, and which
references lack them (enrolled before they were kept, or made by another fit of the check): for
such a product the check is skipped and the evidence says why (``ViewEvidence.status``).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, Protocol

import numpy as np

from authentiq.contract.model_spec import ModelSpec, ViewCheckParams
from authentiq.pipeline.similarity import VectorIndex, new_index
from authentiq.pipeline.stitch import cell_of
from authentiq.pipeline.view_references import ViewMatch, ViewReferences, check
from authentiq.settings import ReferenceSettings
from authentiq.storage.references import Change, ProductRow, product_key

ViewCheckStatus = Literal["checked", "no_references", "not_filled", "unavailable"]


@dataclass(frozen=True)
class Match:
    id: str
    brand: str
    model: str
    similarity: float


@dataclass(frozen=True)
class ViewEvidence:
    """The per-view comparison of one item's photos with the claimed product's references.

    ``status``: ``checked``; ``no_references`` (the claimed product has none);
    ``not_filled`` (``lacking`` of its references have no per-view features yet: run
    ``authentiq re-embed``); ``unavailable`` (the model has no per-view features or floors)."""

    status: ViewCheckStatus
    matches: list[ViewMatch] = field(default_factory=list)
    lacking: int = 0

    @property
    def unlike(self) -> list[ViewMatch]:
        return [m for m in self.matches if m.finding is not None]

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "lacking": self.lacking,
                "matches": [asdict(m) for m in self.matches]}


@dataclass(frozen=True)
class Evidence:
    """What the reference database says about one item's embedding."""

    model_version: str
    brand: str
    model: str
    k: int
    claimed_count: int  # live references of the claimed product for this model version
    claimed: list[Match]  # its top-k, best first
    others: list[Match]  # the best match of each other product, best first (top 3)
    thresholds: dict[str, float] = field(default_factory=dict)  # product overrides
    views: ViewEvidence = field(default_factory=lambda: ViewEvidence("unavailable"))

    @property
    def best(self) -> float | None:
        return self.claimed[0].similarity if self.claimed else None

    @property
    def mean_top_k(self) -> float | None:
        return float(np.mean([m.similarity for m in self.claimed])) if self.claimed else None

    @property
    def best_other(self) -> Match | None:
        return self.others[0] if self.others else None

    def as_dict(self) -> dict[str, Any]:
        """The copy a report keeps: it stays valid after references are deleted."""
        return {
            "model_version": self.model_version, "k": self.k,
            "claimed": {"brand": self.brand, "model": self.model, "count": self.claimed_count,
                        "best": _round(self.best), "mean_top_k": _round(self.mean_top_k),
                        "matches": [_match(m) for m in self.claimed]},
            "other_products": [_match(m) for m in self.others],
            "views": self.views.as_dict(),
        }


class ReferenceSource(Protocol):
    """Where an index reads embeddings and products from: the database
    (:class:`~authentiq.storage.references.ReferenceStore`), or a candidate model's embeddings
    kept in memory (:class:`~authentiq.pipeline.memory_references.MemoryReferences`)."""

    def changes(self, model_id: str, since: int) -> Change: ...
    def products(self) -> list[ProductRow]: ...


class ReferenceIndex:
    def __init__(self, store: ReferenceSource, config: ReferenceSettings, *, model_id: str,
                 model_version: str, dim: int, k: int = 5,
                 view_check: ViewCheckParams | None = None) -> None:
        """``model_id``: only embeddings this model made are searched; ``model_version``
        (name@version) names it in the evidence; ``view_check``: the model's floors of the
        per-view check (None: it does not run)."""
        self.store, self.model_id, self.model_version, self.dim = store, model_id, model_version, dim
        self.kind, self.sync_interval_s = config.reference_index, config.reference_sync_s
        self.k = k
        self.view_check = view_check
        self._indexes: dict[str, VectorIndex] = {}
        self._views = ViewReferences()
        self._lacking: dict[str, str] = {}  # reference id → product key: no per-view features
        self._lacking_per_product: Counter[str] = Counter()
        self._product_of: dict[str, str] = {}  # reference id → product key
        self._products: dict[str, ProductRow] = {}
        self._seq = -1
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def sync(self, *, force: bool = False) -> int:
        """Catch up with the database; returns the change counter value now applied."""
        with self._lock:
            now = time.monotonic()
            if not force and now - self._checked < self.sync_interval_s:
                return self._seq
            change = self.store.changes(self.model_id, self._seq)
            self._checked = now
            if change.seq == self._seq:
                return self._seq
            self._remove(change.removals)
            for up in change.upserts:
                ref, key = up.reference_id, up.product_key
                old = self._product_of.get(ref)
                if old is not None and old != key:
                    self._remove([ref])
                index = self._indexes.get(key)
                if index is None:
                    index = self._indexes[key] = new_index(self.kind, self.dim)
                index.add([ref], up.vector.reshape(1, -1))
                self._product_of[ref] = key
                if up.view_features is None or self.view_check is None or \
                        up.features_id != self.view_check.features_id:
                    self._views.remove([ref])
                    self._lacking[ref] = key
                else:
                    self._views.put(ref, key, up.view_features)
                    self._lacking.pop(ref, None)
            self._lacking_per_product = Counter(self._lacking.values())  # per search: a lookup
            if change.products_changed or self._seq < 0:
                self._products = {p.key: p for p in self.store.products()}
            self._seq = change.seq
            return self._seq

    def _remove(self, refs: list[str]) -> None:
        for ref in refs:
            key = self._product_of.pop(ref, None)
            if key is not None:
                self._indexes[key].remove([ref])
            self._lacking.pop(ref, None)
        self._views.remove(refs)

    def known_product(self, brand: str, model: str) -> bool:
        """From the last sync (no database round trip: called on the event loop)."""
        return product_key(brand, model) in self._products

    def product_label(self, brand: str, model: str) -> str | None:
        """"Brand/Model" as the database spells it, or None for a product it does not know (as
        of the last sync): a bounded label for metrics, whatever a client typed."""
        product = self._products.get(product_key(brand, model))
        return f"{product.brand}/{product.model}" if product else None

    def product_names(self) -> list[tuple[str, str]]:
        """Every product in the database (the model's and those created with PUT), as of the
        last sync."""
        return sorted((p.brand, p.model) for p in self._products.values())

    def count(self, brand: str, model: str) -> int:
        index = self._indexes.get(product_key(brand, model))
        return len(index) if index is not None else 0

    def search(self, embedding: np.ndarray, brand: str, model: str, k: int | None = None, *,
               view_descriptors: Mapping[str, np.ndarray] | None = None) -> Evidence:
        """``view_descriptors``: the model's per-view descriptors of the item's usable photos
        (None: the model has none), each compared with the same view of the claimed references."""
        self.sync()
        k = k or self.k
        key = product_key(brand, model)
        query = np.asarray(embedding, dtype=np.float32).reshape(-1)
        with self._lock:
            claimed_index = self._indexes.get(key)
            claimed = self._matches(claimed_index.search(query, k)) if claimed_index else []
            others = []
            for other, index in self._indexes.items():
                if other != key and len(index):
                    others += self._matches(index.search(query, 1))
            others.sort(key=lambda m: -m.similarity)
            product = self._products.get(key)
            count = len(claimed_index) if claimed_index else 0
            return Evidence(self.model_version, brand, model, k, count, claimed, others[:3],
                            dict(product.thresholds) if product else {},
                            self._check_views(key, count, view_descriptors))

    def _check_views(self, key: str, count: int, features: Mapping[str, np.ndarray] | None
                     ) -> ViewEvidence:
        if self.view_check is None or features is None:
            return ViewEvidence("unavailable")
        if count == 0:
            return ViewEvidence("no_references")
        lacking = self._lacking_per_product.get(key, 0)
        if lacking:
            return ViewEvidence("not_filled", lacking=lacking)
        found = check(self.view_check, self._views, key, features)
        return ViewEvidence("checked", [replace(m, other_product=self._name(m.other_product))
                                        if m.other_product else m for m in found])

    def _name(self, key: str) -> str:
        product = self._products.get(key)
        return f"{product.brand}/{product.model}" if product else key

    def _matches(self, hits: list[tuple[str, float]]) -> list[Match]:
        out = []
        for ref, score in hits:
            product = self._products.get(self._product_of[ref])
            brand, model = (product.brand, product.model) if product else \
                tuple(self._product_of[ref].split("/", 1))
            out.append(Match(ref, brand, model, round(score, 4)))  # reasons and JSON agree
        return out

    @property
    def size(self) -> int:
        return len(self._product_of)

    def nbytes(self) -> int:
        return sum(index.nbytes for index in self._indexes.values())


def by_view(spec: ModelSpec, features: np.ndarray | None, views: Iterable[str]
            ) -> dict[str, np.ndarray] | None:
    """One item's per-cell output (``view_descriptors [cells, D]``, or ``[1, cells, D]``) →
    its cells' rows for ``views``; None when the model has no such output."""
    if features is None:
        return None
    rows = np.asarray(features).reshape(-1, np.asarray(features).shape[-1])
    cols = spec.grid[1]
    return {v: rows[cell_of(spec, v)[0] * cols + cell_of(spec, v)[1]] for v in views}


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _match(m: Match) -> dict[str, Any]:
    out = asdict(m)
    out["similarity"] = round(m.similarity, 4)
    return out
