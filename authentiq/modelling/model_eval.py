"""Accuracy of served models on held-out items (``authentiq evaluate``; the model benchmark).

Held-out synthetic items come from a seed range that training and calibration never use
(:data:`authentiq.modelling.datasets.HELD_OUT_SEED_BASE`). Models run through the service's own
backend, on mosaics built by the service's own preprocessing and stitching.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from authentiq.contract.model_spec import softmax_fake
from authentiq.inference.backends.onnxruntime import OnnxRuntimeBackend
from authentiq.modelling import datasets
from authentiq.modelling.evaluation import Metrics, evaluate
from authentiq.modelling.reliability import expected_calibration_error, temperature_p
from authentiq.pipeline.stitch import build_input


def held_out(items: int, views: tuple[str, ...], tile_size: int, cache: Path | None = None,
             data: str | None = None) -> datasets.TileSet:
    if data:
        found = datasets.folder_items(Path(data))
        return datasets.folder_tiles(found, views, tile_size, required=())
    if cache is not None and cache.is_file():
        ts = datasets.TileSet.load(cache)
        if len(ts) >= items:
            return ts.subset(np.arange(items))
    seeds = range(datasets.HELD_OUT_SEED_BASE, datasets.HELD_OUT_SEED_BASE + items)
    ts = datasets.synthetic_tiles(seeds, views, tile_size)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        ts.save(cache)
    return ts


def run_model(backend: OnnxRuntimeBackend, ts: datasets.TileSet,
              batch: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(logits [N, 2], embedding [N, D], cam [N, 2, h, w]) for every item."""
    spec = backend.spec
    logits, embeddings, cams = [], [], []
    for start in range(0, len(ts), batch):
        x = np.stack([
            build_input(spec, ts.tiles_of(i))
            for i in range(start, min(start + batch, len(ts)))
        ])
        out = backend.run(x)
        logits.append(out.logits)
        embeddings.append(out.embedding)
        cams.append(out.cam)
    return np.concatenate(logits), np.concatenate(embeddings), np.concatenate(cams)


def evaluate_models(models: Sequence[Path], *, items: int = 2000, data: str | None = None,
                    cache: Path | None = Path("var/heldout-2000.npz"),
                    ) -> str:
    reference: np.ndarray | None = None
    rows = []
    ts = None
    for path in models:
        backend = OnnxRuntimeBackend(path)
        spec = backend.spec
        if ts is None:
            ts = held_out(items, spec.view_names, spec.tile_size, cache, data)
        logits, _, _ = run_model(backend, ts)
        p = softmax_fake(logits)
        t = spec.thresholds
        m: Metrics = evaluate(ts.labels, p, t.authentic_below, t.counterfeit_above)
        drift = float(np.abs(logits - reference).max()) if reference is not None else 0.0
        reference = logits if reference is None else reference
        temperature = spec.calibration.temperature if spec.calibration else 1.0
        ece = (expected_calibration_error(ts.labels, p),
               expected_calibration_error(ts.labels, temperature_p(logits, temperature)))
        rows.append((path.name, spec.precision, m, drift, ece))
    header = ("| model | precision | items | accuracy | ROC AUC | decided acc. | inconclusive |"
              " ECE raw | ECE calibrated | max abs Δlogit vs first |\n"
              "|---|---|---|---|---|---|---|---|---|---|")
    lines = [header] + [
        f"| {name} | {prec} | {m.items} | {m.accuracy:.2%} | {m.roc_auc:.4f} | "
        f"{m.decided_accuracy:.2%} | {m.inconclusive_share:.2%} | {ece[0]:.4f} | {ece[1]:.4f} | "
        f"{drift:.3f} |"
        for name, prec, m, drift, ece in rows
    ]
    return "\n".join(lines)
