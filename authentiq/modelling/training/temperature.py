"""Fit the confidence temperature (``authentiq fit-temperature``; numpy only).

Temperature scaling (Guo et al., 2017): one number ``T`` such that ``softmax(logits / T)`` is
calibrated on held-out items — the share of items called counterfeit with probability 0.9 that
are counterfeit is 0.9. It changes no decision (the classifier's band is set on the raw
probability, and the order of items is kept), only the confidence a report states. Items come
from :data:`~authentiq.modelling.datasets.TRUST_SEED_BASE`, never used in training or thresholds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from authentiq.contract.model_spec import Calibration
from authentiq.inference.backends.onnxruntime import OnnxRuntimeBackend
from authentiq.modelling import datasets
from authentiq.modelling.model_eval import run_model
from authentiq.modelling.reliability import expected_calibration_error, fit_temperature, temperature_p
from authentiq.modelling.training.metadata import write_prop

log = logging.getLogger(__name__)


def fit(models: Sequence[Path], *, items: int = 2000, cache: Path | None = None,
        data: str | None = None, tiles: datasets.TileSet | None = None,
        source: str = "") -> dict[str, tuple[float, float, float]]:
    """Fit and write a temperature into every model (each on its own logits);
    returns ``{file: (temperature, ECE before, ECE after)}`` on the fit items. ``tiles`` (said
    by ``source``): these items instead of ``data`` or synthetic ones."""
    out = {}
    for path in models:
        backend = OnnxRuntimeBackend(path)
        spec = backend.spec
        if tiles is not None:
            ts = tiles
            source = source or f"{len(ts)} items"
        elif data:  # a folder of labelled items the model was not trained on
            ts = datasets.folder_tiles(datasets.folder_items(Path(data)), spec.view_names,
                                       spec.tile_size, required=())
            source = f"{len(ts)} items of {data}"
        else:
            ts = datasets.synthetic_cached(datasets.TRUST_SEED_BASE, items, spec.view_names,
                                           spec.tile_size, cache)
            source = f"{items} synthetic items (seeds {datasets.TRUST_SEED_BASE:,}+)"
        logits, _, _ = run_model(backend, ts)
        backend.close()
        t = fit_temperature(logits, ts.labels)
        before = expected_calibration_error(ts.labels, temperature_p(logits, 1.0))
        after = expected_calibration_error(ts.labels, temperature_p(logits, t))
        write_prop(path, "calibration", Calibration(temperature=round(t, 4), fitted_on=(
            f"{source}; ECE {before:.4f} → {after:.4f} on them")))
        log.info("%s: temperature %.4f, ECE %.4f → %.4f", path.name, t, before, after)
        out[path.name] = (t, before, after)
    return out
