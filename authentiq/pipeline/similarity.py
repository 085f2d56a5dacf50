"""Nearest-neighbour search over L2-normalised embeddings (cosine similarity = inner product).

:class:`FlatIndex` is exact brute force over one contiguous float32 matrix, stored transposed
(``[D, capacity]``): a query is one ``q @ M`` that streams the matrix once, then a partial sort.
That serves 100,000 references in a few milliseconds on one core (``benchmarks/references.py``).
:class:`FaissIndex` (``faiss-cpu``, the ``[faiss]`` extra) is an HNSW graph behind the same
interface for sets past that; it is approximate, and the benchmark reports its recall@10.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal, Protocol

import numpy as np

IndexKind = Literal["flat", "faiss"]


class VectorIndex(Protocol):
    dim: int

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Add or replace rows; ``vectors`` is float32 ``[n, dim]``, L2-normalised."""

    def remove(self, ids: Iterable[str]) -> None:
        """Drop rows; unknown ids are ignored."""

    def search(self, query: np.ndarray, k: int) -> list[tuple[str, float]]:
        """The ``k`` most similar rows to ``query`` ``[dim]``, best first."""

    def __len__(self) -> int: ...

    @property
    def nbytes(self) -> int: ...


class FlatIndex:
    def __init__(self, dim: int, capacity: int = 64) -> None:
        self.dim = dim
        self._m = np.zeros((dim, max(capacity, 1)), dtype=np.float32)
        self._ids: list[str] = []
        self._pos: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def nbytes(self) -> int:
        return int(self._m.nbytes)

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        vectors = _rows(vectors, self.dim, len(ids))
        fresh = [i for i, ref in enumerate(ids) if ref not in self._pos]
        need = len(self._ids) + len(fresh)
        if need > self._m.shape[1]:  # amortised growth: double the capacity
            grown = np.zeros((self.dim, max(need, 2 * self._m.shape[1])), dtype=np.float32)
            grown[:, :len(self._ids)] = self._m[:, :len(self._ids)]
            self._m = grown
        for ref, vec in zip(ids, vectors, strict=True):
            pos = self._pos.get(ref)
            if pos is None:
                pos = len(self._ids)
                self._ids.append(ref)
                self._pos[ref] = pos
            self._m[:, pos] = vec

    def remove(self, ids: Iterable[str]) -> None:
        for ref in ids:
            pos = self._pos.pop(ref, None)
            if pos is None:
                continue
            last = len(self._ids) - 1
            if pos != last:  # move the last row into the hole: the matrix stays dense
                moved = self._ids[last]
                self._m[:, pos] = self._m[:, last]
                self._ids[pos] = moved
                self._pos[moved] = pos
            self._ids.pop()

    def search(self, query: np.ndarray, k: int) -> list[tuple[str, float]]:
        n = len(self._ids)
        if n == 0 or k <= 0:
            return []
        scores = np.asarray(query, dtype=np.float32) @ self._m[:, :n]
        top = np.argpartition(scores, n - k)[n - k:] if k < n else np.arange(n)
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self._ids[i], float(scores[i])) for i in top]


class FaissIndex:
    """HNSW (inner product) over the same vectors; removals are tombstones, compacted by a
    rebuild from the stored vectors once a fifth of the rows are dead."""

    def __init__(self, dim: int, m: int = 32, ef_search: int = 64, ef_construction: int = 80) -> None:
        self.dim = dim
        self._faiss = import_faiss()
        self._params = (m, ef_search, ef_construction)
        self._index = self._new()
        self._ids: list[str] = []  # faiss row → id
        self._row: dict[str, int] = {}  # live id → faiss row

    def _new(self) -> Any:
        m, ef_search, ef_construction = self._params
        index = self._faiss.IndexHNSWFlat(self.dim, m, self._faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = ef_search
        index.hnsw.efConstruction = ef_construction
        return index

    def __len__(self) -> int:
        return len(self._row)

    @property
    def nbytes(self) -> int:  # vectors + graph links (4-byte ids, 2·M at level 0)
        rows = len(self._ids)
        return rows * self.dim * 4 + rows * self._params[0] * 2 * 4

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        vectors = _rows(vectors, self.dim, len(ids))
        replaced = [ref for ref in ids if ref in self._row]
        if replaced:
            self.remove(replaced)
        start = len(self._ids)
        self._index.add(np.ascontiguousarray(vectors))
        for offset, ref in enumerate(ids):
            self._ids.append(ref)
            self._row[ref] = start + offset

    def remove(self, ids: Iterable[str]) -> None:
        for ref in ids:
            self._row.pop(ref, None)
        if len(self._ids) > 64 and len(self._row) < 0.8 * len(self._ids):
            self._rebuild()

    def _rebuild(self) -> None:
        live = sorted(self._row.items(), key=lambda kv: kv[1])
        stored = self._index.reconstruct_n(0, self._index.ntotal)
        vectors = stored[[row for _, row in live]]
        self._index, self._ids, self._row = self._new(), [], {}
        if live:
            self.add([ref for ref, _ in live], vectors)

    def search(self, query: np.ndarray, k: int) -> list[tuple[str, float]]:
        if not self._row or k <= 0:
            return []
        dead = len(self._ids) - len(self._row)
        fetch = min(len(self._ids), k + dead)
        scores, rows = self._index.search(np.asarray(query, np.float32).reshape(1, -1), fetch)
        hits = []
        for row, score in zip(rows[0], scores[0], strict=True):
            if row < 0:
                continue
            ref = self._ids[row]
            if self._row.get(ref) == row:
                hits.append((ref, float(score)))
                if len(hits) == k:
                    break
        return hits


def import_faiss() -> Any:
    try:
        import faiss
    except ImportError as exc:
        raise ImportError("faiss is not installed; the faiss reference index needs it: "
                          "pip install \"authentiq[faiss]\"") from exc
    return faiss


def new_index(kind: IndexKind, dim: int) -> VectorIndex:
    return FaissIndex(dim) if kind == "faiss" else FlatIndex(dim)


def _rows(vectors: np.ndarray, dim: int, n: int) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, dim) if n else \
        np.zeros((0, dim), np.float32)
    if vectors.shape[0] != n:
        raise ValueError(f"{n} ids but {vectors.shape[0]} vectors")
    return vectors
