"""Reference search: exact in-memory index vs FAISS HNSW, on one core.

    python -m benchmarks.references            # 100k flat + FAISS, 1M FAISS (+ exact for recall)
    python -m benchmarks.references --quick    # 10k and 100k only

Vectors are clustered like real embeddings (products → centres, items → noise around them),
L2-normalised, float32, of the default model's embedding size. Each query is a new item of a
random product. Prints build time, query latency (median / p95), memory and recall@10 against
exact brute force; then the start-up rebuild of a ``ReferenceIndex`` from SQLite. Queries run on
one thread; FAISS builds its graph on every core (build times are for this machine's cores).
"""

from __future__ import annotations

import os

# One core, as the target says; set before numpy loads its BLAS.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks._common import machine, ms, timed  # noqa: E402

DIM = 128
K = 10
QUERIES = 300


def clustered(n: int, rng: np.random.Generator, centres: np.ndarray, spread: float = 0.35
              ) -> np.ndarray:
    which = rng.integers(0, len(centres), n)
    x = centres[which] + spread * rng.standard_normal((n, DIM), dtype=np.float32) / np.sqrt(DIM)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def bench_index(kind: str, data: np.ndarray, queries: np.ndarray, exact: list[set[str]] | None
                ) -> tuple[dict[str, str], list[set[str]]]:
    import faiss

    from authentiq.pipeline.similarity import new_index

    faiss.omp_set_num_threads(os.cpu_count() or 1)  # building may use every core ...
    ids = [f"r{i}" for i in range(len(data))]
    t = time.perf_counter()
    index = new_index(kind, DIM)  # type: ignore[arg-type]
    for start in range(0, len(data), 50_000):
        index.add(ids[start:start + 50_000], data[start:start + 50_000])
    build = time.perf_counter() - t
    faiss.omp_set_num_threads(1)  # ... queries get one
    found = [{ref for ref, _ in index.search(q, K)} for q in queries]
    it = iter(range(10 ** 9))
    times = timed(lambda: index.search(queries[next(it) % len(queries)], K), repeat=len(queries))
    recall = "1.000 (exact)" if exact is None else \
        f"{np.mean([len(a & b) / K for a, b in zip(found, exact, strict=True)]):.3f}"
    row = {"references": f"{len(data):,}", "index": kind, "build s": f"{build:.1f}",
           "query median ms": f"{ms(times):.2f}", "query p95 ms": f"{ms(times, 95):.2f}",
           "memory MB": f"{index.nbytes / 1e6:.0f}",
           "per 100k MB": f"{index.nbytes / len(data) * 1e5 / 1e6:.1f}",
           "recall@10": recall}
    return row, found


def startup_rebuild(n: int, rng: np.random.Generator, centres: np.ndarray) -> dict[str, str]:
    """Rows in SQLite (as enrolment leaves them) → a ReferenceIndex ready to search."""
    from sqlmodel import Session

    from authentiq.pipeline.reference_index import ReferenceIndex
    from authentiq.settings import ReferenceSettings
    from authentiq.storage.blobs import BlobStore
    from authentiq.storage.db import open_database
    from authentiq.storage.references import EmbeddingRow, ReferenceRow, ReferenceStore, product_key

    with tempfile.TemporaryDirectory() as tmp:
        engine = open_database(f"sqlite:///{tmp}/refs.db")
        store = ReferenceStore(engine, BlobStore(Path(tmp) / "blobs"))
        products = [(f"Brand{i % 3}", f"Model{i}") for i in range(6)]
        store.ensure_products(products)
        data = clustered(n, rng, centres)
        now = datetime.now(UTC)
        with Session(engine) as session:
            for i in range(n):
                b, m = products[i % 6]
                ref = uuid.uuid4().hex
                session.add(ReferenceRow(id=ref, product_key=product_key(b, m), brand=b, model=m,
                                         created_at=now, content_hash=ref + ref, body={}, seq=1))
                session.add(EmbeddingRow(reference_id=ref, model_id="bench",
                                         vector=data[i].tobytes(), created_at=now, seq=1))
            session.commit()
        store.ensure_products([("Brand9", "Model9")])  # moves the counter past the rows
        t = time.perf_counter()
        index = ReferenceIndex(store, ReferenceSettings(), model_id="bench", model_version="bench@1", dim=DIM)
        index.sync(force=True)
        rebuild = time.perf_counter() - t
        q = clustered(1, rng, centres)[0]
        it = timed(lambda: index.search(q, "Brand0", "Model0", k=5), repeat=100)
        engine.dispose()
    return {"references in SQLite": f"{n:,} (6 products)", "start-up rebuild s": f"{rebuild:.2f}",
            "one inspection's search, median ms (top-5 claimed + best of 5 others)": f"{ms(it):.2f}"}


def table(rows: list[dict[str, str]]) -> str:
    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r[h] for h in head) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((600, DIM), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    print(f"# Reference search — {machine()}, one thread\n")
    rows = []
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    for n in sizes:
        data = clustered(n, rng, centres)
        queries = clustered(QUERIES, rng, centres)
        flat, exact = bench_index("flat", data, queries, None)
        rows.append(flat)
        if n >= 100_000:
            rows.append(bench_index("faiss", data, queries, exact)[0])
        del data
    print(table(rows))
    print()
    print(table([startup_rebuild(100_000 if not args.quick else 20_000, rng, centres)]))


if __name__ == "__main__":
    main()
