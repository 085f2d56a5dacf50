from __future__ import annotations

import numpy as np
import pytest

from authentiq.pipeline.similarity import FaissIndex, FlatIndex, new_index

pytestmark = pytest.mark.db_independent  # the PostgreSQL pass leaves it out


def unit(rng: np.random.Generator, n: int, dim: int = 16) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact(data: dict[str, np.ndarray], q: np.ndarray, k: int) -> list[str]:
    ids = list(data)
    scores = np.stack([data[i] for i in ids]) @ q
    return [ids[i] for i in np.argsort(-scores, kind="stable")[:k]]


def test_flat_index_is_exact_through_adds_removes_and_growth() -> None:
    rng = np.random.default_rng(0)
    index = FlatIndex(16, capacity=4)  # forces several growths
    data: dict[str, np.ndarray] = {}
    vectors = unit(rng, 300)
    index.add([f"r{i}" for i in range(300)], vectors)
    data.update({f"r{i}": vectors[i] for i in range(300)})
    gone = [f"r{i}" for i in range(0, 300, 3)] + ["never-there"]
    index.remove(gone)
    for ref in gone:
        data.pop(ref, None)
    replaced = unit(rng, 1)[0]
    index.add(["r1"], replaced[None])  # same id: replaced, not duplicated
    data["r1"] = replaced
    assert len(index) == len(data) == 200
    for q in unit(rng, 20):
        hits = index.search(q, 10)
        assert [ref for ref, _ in hits] == exact(data, q, 10)
        assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
        assert hits[0][1] == pytest.approx(float(data[hits[0][0]] @ q), abs=1e-5)
    assert index.search(vectors[1], 0) == [] and FlatIndex(16).search(vectors[0], 5) == []
    assert len(index.search(vectors[1], 1000)) == 200


def test_faiss_index_recall_and_removal() -> None:
    pytest.importorskip("faiss")
    rng = np.random.default_rng(1)
    vectors = unit(rng, 2000)
    ids = [f"r{i}" for i in range(2000)]
    index = new_index("faiss", 16)
    assert isinstance(index, FaissIndex)
    index.add(ids, vectors)
    data = dict(zip(ids, vectors, strict=True))
    queries = unit(rng, 50)
    recall = np.mean([len({r for r, _ in index.search(q, 10)} & set(exact(data, q, 10))) / 10
                      for q in queries])
    assert recall > 0.9
    # Removing most rows triggers a compaction; removed ids never come back.
    gone = ids[:1500]
    index.remove(gone)
    for ref in gone:
        del data[ref]
    assert len(index) == 500
    for q in queries[:10]:
        found = [r for r, _ in index.search(q, 10)]
        assert len(found) == 10 and not set(found) & set(gone)
    assert index.search(vectors[1600], 1)[0][0] == "r1600"
