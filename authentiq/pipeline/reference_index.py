"""In-memory search over the reference database, kept in step with it across worker processes.

One :class:`~authentiq.pipeline.similarity.VectorIndex` per product holds the current model version's
embeddings of live references. :meth:`ReferenceIndex.sync` applies what changed in the database
since the last change counter value it saw (``ReferenceStore.changes``): at start-up that is
everything, afterwards a cheap query at most every ``sync_interval_s`` — so an enrolment or a
delete in one worker is seen by every other worker within that interval, and at once by the
worker that made it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from authentiq.pipeline.similarity import VectorIndex, new_index
from authentiq.settings import ReferenceSettings
from authentiq.storage.references import ProductRow, ReferenceStore, product_key


@dataclass(frozen=True)
class Match:
    id: str
    brand: str
    model: str
    similarity: float


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
        }


class ReferenceIndex:
    def __init__(self, store: ReferenceStore, config: ReferenceSettings, *, model_version: str,
                 dim: int, k: int = 5) -> None:
        self.store, self.model_version, self.dim = store, model_version, dim
        self.kind, self.sync_interval_s = config.reference_index, config.reference_sync_s
        self.k = k
        self._indexes: dict[str, VectorIndex] = {}
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
            change = self.store.changes(self.model_version, self._seq)
            self._checked = now
            if change.seq == self._seq:
                return self._seq
            self._remove(change.removals)
            for ref, key, vector in change.upserts:
                old = self._product_of.get(ref)
                if old is not None and old != key:
                    self._remove([ref])
                index = self._indexes.get(key)
                if index is None:
                    index = self._indexes[key] = new_index(self.kind, self.dim)
                index.add([ref], vector.reshape(1, -1))
                self._product_of[ref] = key
            if change.products_changed or self._seq < 0:
                self._products = {p.key: p for p in self.store.products()}
            self._seq = change.seq
            return self._seq

    def _remove(self, refs: list[str]) -> None:
        for ref in refs:
            key = self._product_of.pop(ref, None)
            if key is not None:
                self._indexes[key].remove([ref])

    def known_product(self, brand: str, model: str) -> bool:
        """From the last sync (no database round trip: called on the event loop)."""
        return product_key(brand, model) in self._products

    def product_names(self) -> list[tuple[str, str]]:
        """Every product in the database (the model's and those created with PUT), as of the
        last sync."""
        return sorted((p.brand, p.model) for p in self._products.values())

    def count(self, brand: str, model: str) -> int:
        index = self._indexes.get(product_key(brand, model))
        return len(index) if index is not None else 0

    def search(self, embedding: np.ndarray, brand: str, model: str, k: int | None = None) -> Evidence:
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
            return Evidence(self.model_version, brand, model, k,
                            len(claimed_index) if claimed_index else 0, claimed, others[:3],
                            dict(product.thresholds) if product else {})

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


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _match(m: Match) -> dict[str, Any]:
    out = asdict(m)
    out["similarity"] = round(m.similarity, 4)
    return out
