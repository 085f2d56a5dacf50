"""How the number of references a product has changes the verdict fusion (docs/your-own-model.md).

The fusion's similarity is the mean of the claimed product's closest references and its floor a
low quantile of genuine items' best similarity, so a fusion fitted against many references a
product and served with few flags genuine items. This fits the shipped INT8 CPU model's fusion
against K references a product (or every genuine pool item) and serves it with K' references,
on held-out synthetic items, and prints one table (references drawn at random; three draws of
the served references averaged):

    .venv/bin/python -m benchmarks.fusion_references [--pool 1200] [--fit 800] [--test 1000]

Seeds: the pool 82,000,000+, the fit items 83,000,000+, the test items 84,000,000+ (none used
by any shipped fit or evaluation). Decoding 3,000 synthetic items takes ~10 min on 2 cores.
"""

from __future__ import annotations

import argparse

import numpy as np

from authentiq.contract.model_spec import read_spec
from authentiq.inference.backends.onnxruntime import OnnxRuntimeBackend
from authentiq.modelling import datasets
from authentiq.modelling.training.fusion import Scored, evaluate_fusion, fit, score
from authentiq.settings import DEFAULT_MODEL


def subset(s: Scored, idx: np.ndarray) -> Scored:
    return Scored(s.p[idx], s.embedding[idx], s.groups[idx], s.labels[idx])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pool", type=int, default=1200, help="items the references come from")
    parser.add_argument("--fit", type=int, default=800, help="items the fusion is fitted on")
    parser.add_argument("--test", type=int, default=1000, help="items it is evaluated on")
    args = parser.parse_args()
    spec = read_spec(DEFAULT_MODEL)
    backend = OnnxRuntimeBackend(DEFAULT_MODEL)
    pool, fit_items, test = (
        score(backend, datasets.synthetic_cached(base, n, spec.view_names, spec.tile_size, None))
        for base, n in ((82_000_000, args.pool), (83_000_000, args.fit), (84_000_000, args.test)))
    backend.close()
    genuine = np.flatnonzero(pool.labels == 0)

    def references(k: int | None, seed: int) -> Scored:
        if k is None:
            return subset(pool, genuine)
        rng = np.random.default_rng(seed)
        return subset(pool, np.concatenate([rng.permutation(genuine[pool.groups[genuine] == g])[:k]
                                            for g in np.unique(pool.groups[genuine])]))

    per = np.bincount(pool.groups[genuine])
    print(f"# The fusion against K references a product ({DEFAULT_MODEL.name}; genuine pool items a "
          f"product: {per.min()}–{per.max()}; fit {args.fit}, test {args.test} items)\n")
    print("| fitted against | served with | similarity floor | inconclusive | genuine flagged | "
          "decided accuracy |\n|---|---|---:|---:|---:|---:|")
    for fit_k in (None, 5, 20):
        params = fit(fit_items, references(fit_k, 1))
        served = spec.model_copy(update={"fusion": params})
        for serve_k in (5, 20, None):
            runs = [evaluate_fusion(served, test, references(serve_k, seed))
                    for seed in ((11, 12, 13) if serve_k is not None else (0,))]
            inconclusive = np.mean([r.fused.inconclusive_share for r in runs])
            flagged = np.mean([r.genuine_flagged for r in runs])
            accuracy = np.mean([r.fused.decided_accuracy for r in runs])
            name = lambda k: "every pool item" if k is None else f"{k} a product"  # noqa: E731
            print(f"| {name(fit_k)} | {name(serve_k)} | {params.min_similarity:.4f} | "
                  f"{inconclusive:.2%} | {flagged:.2%} | {accuracy:.2%} |", flush=True)


if __name__ == "__main__":
    main()
