"""Accuracy of served models on held-out items (``authentiq evaluate``; the model benchmark).

Held-out synthetic items come from a seed range that training and calibration never use
(:data:`authentiq.modelling.datasets.HELD_OUT_SEED_BASE`). Models run through the service's own
backend, on mosaics built by the service's own preprocessing and stitching.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from authentiq.contract.model_spec import read_spec, softmax_fake
from authentiq.errors import DatasetError
from authentiq.inference.backends.onnxruntime import OnnxRuntimeBackend
from authentiq.modelling import datasets, splits
from authentiq.modelling.evaluation import Metrics, evaluate
from authentiq.modelling.progress import SILENT, Progress
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


def run_model(backend: OnnxRuntimeBackend, ts: datasets.TileSet, batch: int = 32,
              progress: Progress = SILENT) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(logits [N, 2], embedding [N, D], cam [N, 2, h, w]) for every item."""
    spec = backend.spec
    logits, embeddings, cams = [], [], []
    for start in range(0, len(ts), batch):
        stop = min(start + batch, len(ts))
        x = np.stack([build_input(spec, ts.tiles_of(i)) for i in range(start, stop)])
        out = backend.run(x)
        logits.append(out.logits)
        embeddings.append(out.embedding)
        cams.append(out.cam)
        progress.advance(stop - start)
    return np.concatenate(logits), np.concatenate(embeddings), np.concatenate(cams)


@dataclass(frozen=True)
class ModelScore:
    """One model's figures on one set of items (a row of ``authentiq evaluate``'s table)."""

    name: str
    precision: str
    metrics: Metrics
    drift: float  # max |Δlogit| against the first model scored
    ece_raw: float
    ece_calibrated: float  # with the model's temperature (= raw without one)


def score_models(models: Sequence[Path], ts: datasets.TileSet,
                 progress: Progress = SILENT) -> list[ModelScore]:
    """Every model on the same items, each with its own band and temperature."""
    reference: np.ndarray | None = None
    rows = []
    for path in models:
        backend = OnnxRuntimeBackend(path)
        spec = backend.spec
        with progress.task(f"scoring {path.name}", len(ts), "item"):
            logits, _, _ = run_model(backend, ts, progress=progress)
        backend.close()
        p = softmax_fake(logits)
        t = spec.thresholds
        m = evaluate(ts.labels, p, t.authentic_below, t.counterfeit_above)
        drift = float(np.abs(logits - reference).max()) if reference is not None else 0.0
        reference = logits if reference is None else reference
        temperature = spec.calibration.temperature if spec.calibration else 1.0
        rows.append(ModelScore(path.name, spec.precision, m, drift,
                               expected_calibration_error(ts.labels, p),
                               expected_calibration_error(ts.labels, temperature_p(logits, temperature))))
    return rows


def table(rows: Sequence[ModelScore]) -> str:
    header = ("| model | precision | items | accuracy | ROC AUC | decided acc. | inconclusive |"
              " ECE raw | ECE calibrated | max abs Δlogit vs first |\n"
              "|---|---|---|---|---|---|---|---|---|---|")
    return "\n".join([header] + [
        f"| {r.name} | {r.precision} | {r.metrics.items} | {r.metrics.accuracy:.2%} | "
        f"{r.metrics.roc_auc:.4f} | {r.metrics.decided_accuracy:.2%} | "
        f"{r.metrics.inconclusive_share:.2%} | {r.ece_raw:.4f} | {r.ece_calibrated:.4f} | "
        f"{r.drift:.3f} |" for r in rows])


def evaluate_models(models: Sequence[Path], *, items: int = 2000, data: str | None = None,
                    cache: Path | None = Path("var/heldout-2000.npz"),
                    tiles: datasets.TileSet | None = None, progress: Progress = SILENT) -> str:
    """The table of ``authentiq evaluate``: on ``tiles``, else a folder (``data``), else
    held-out synthetic items."""
    if tiles is None:
        spec = read_spec(models[0])
        tiles = held_out(items, spec.view_names, spec.tile_size, cache, data)
    return table(score_models(models, tiles, progress))


def folder_test_items(root: Path, split_file: Path | None = None, *, every: bool = False
                      ) -> tuple[list[datasets.LabelledItem], str]:
    """The items of ``root`` to score, and a line saying which: the test items of the split in
    ``split_file`` (training's ``OUT/splits.json``) or of the folder's own ``splits.json``, else
    (or with ``every``) all of them."""
    items = datasets.folder_items(root)
    path = split_file or root / splits.SPLITS_FILE
    if every or not path.is_file():
        why = "--all-items" if every else f"no {splits.SPLITS_FILE} in {root} and no --splits"
        return items, (f"scoring all {len(items)} items of {root} ({why}): items a model trained "
                       f"on score better than new ones")
    split, errors, _ = splits.read_pinned(path, items)
    datasets.refuse(errors, root, f"the split in {path}")
    test = [it for it in items if split.assignment[it.name] == "test"]
    if not test:
        raise DatasetError(f"{path} assigns no item of {root} to the test split")
    return test, (f"scoring the {len(test)} test items of {root} (split: {path}); "
                  f"--all-items scores all {len(items)}")
