"""Fit the view gate and write it into a model (``authentiq fit-gate``; numpy + onnx, no PyTorch).

What the gate asks of every photo: does it look like the photos of *this view* that the model was
fitted on? The evidence is the model's own features:

* ``view_features [B, cells, D]``: per grid cell, the mean of the block outputs of two middle
  stages of the backbone (the default network's stages 1 and 2: 96 + 160 channels). Middle stages
  describe texture and shape; the last stage is tuned to genuine-vs-counterfeit cues and separated
  views and non-products less well (measured: docs/performance.md, "Choosing the gate's
  features").
* ``view_scores [B, cells, views]``: the squared Mahalanobis distance of each cell's square-rooted
  features to each view's Gaussian, with a 64-component principal subspace plus an isotropic
  residual (a probabilistic PCA): ``Σ (uᵢ·x̃)² / λᵢ + (‖x̃‖² − Σ (uᵢ·x̃)²) / σ²``, ``x̃ = √f − μ``.

Both are computed *inside the graph* (AveragePool, Concat, Sqrt, Einsum, ReduceSum) so every
backend (ONNX Runtime, TensorRT, Triton) returns them with the logits, and the classifier's
outputs are untouched. The fitted statistics are initialisers of the graph; the thresholds (one
per view, a high quantile of in-distribution distances on items the statistics were not fitted
on) live in the metadata (:class:`~authentiq.contract.model_spec.GateParams`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from authentiq.contract.model_spec import VIEW_FEATURES, VIEW_SCORES, GateParams, ModelSpec, read_spec
from authentiq.errors import ModelContractError
from authentiq.modelling import datasets
from authentiq.modelling.training import alterations
from authentiq.modelling.training.alterations import HeadWeights, add_head
from authentiq.modelling.training.graph import PREFIX, strip_gate, strip_view_check
from authentiq.modelling.training.metadata import save_atomic, set_prop
from authentiq.pipeline.stitch import build_input

log = logging.getLogger(__name__)
# Block outputs of the default network (authentiq.modelling.training.net) the features are pooled from.
LAYERS = ("/stages/stages.1/Relu_1_output_0", "/stages/stages.2/Relu_1_output_0")
COMPONENTS = 64


@dataclass(frozen=True)
class ViewStats:
    """One Gaussian per view over √features: mean [V, D], basis [V, D, k], variances [V, k],
    residual variance [V]."""

    mean: np.ndarray
    basis: np.ndarray
    variances: np.ndarray
    residual: np.ndarray

    def scores(self, features: np.ndarray) -> np.ndarray:
        """[..., D] raw features → [..., V] squared distances (the graph computes the same)."""
        x = np.sqrt(np.maximum(features, 0.0))[..., None, :] - self.mean  # [..., V, D]
        proj = np.einsum("...vd,vdk->...vk", x, self.basis)
        sq = proj * proj
        inside = (sq / self.variances).sum(-1)
        return np.asarray(inside + ((x * x).sum(-1) - sq.sum(-1)) / self.residual)


def fit_stats(features: np.ndarray, components: int = COMPONENTS) -> ViewStats:
    """``features [N, V, D]`` (cell v holding a photo of view v) → one Gaussian per view."""
    means, bases, variances, residuals = [], [], [], []
    for v in range(features.shape[1]):
        x = np.sqrt(np.maximum(features[:, v].astype(np.float64), 0.0))
        mu = x.mean(0)
        _, s, vt = np.linalg.svd(x - mu, full_matrices=False)
        var = s ** 2 / max(len(x) - 1, 1)
        k = min(components, len(var) - 1)
        means.append(mu)
        bases.append(vt[:k].T)
        variances.append(np.maximum(var[:k], 1e-8))
        residuals.append(max(float(var[k:].mean()), 1e-8))
    return ViewStats(np.asarray(means, np.float32), np.asarray(bases, np.float32),
                     np.asarray(variances, np.float32), np.asarray(residuals, np.float32))


# --- graph surgery ------------------------------------------------------------------------------


def layer_shapes(path: Path) -> dict[str, tuple[int, int, int]]:
    """(channels, h, w) of each gate layer, from one run of the model with those tensors exposed."""
    import onnx
    import onnxruntime as ort

    spec = read_spec(path)
    proto = onnx.load(str(path))
    strip_gate(proto.graph)
    produced = {o for n in proto.graph.node for o in n.output}
    missing = [name for name in LAYERS if name not in produced]
    if missing:
        raise ModelContractError(f"{path}: the view gate needs the default network's block outputs "
                                 f"{missing}; other architectures are not supported yet")
    for name in LAYERS:
        proto.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    h, w = spec.input_hw
    out = session.run(list(LAYERS), {"views": np.zeros((1, 3, h, w), np.float32)})
    return {name: (int(a.shape[1]), int(a.shape[2]), int(a.shape[3]))
            for name, a in zip(LAYERS, out, strict=True)}


def add_features(proto: Any, spec: ModelSpec, shapes: dict[str, tuple[int, int, int]]) -> None:
    """Add ``view_features [B, cells, D]`` (per-cell means of :data:`LAYERS`, concatenated)."""
    from onnx import TensorProto, helper

    graph = proto.graph
    rows, cols = spec.grid
    cells = rows * cols
    shape = PREFIX + "cells_shape"
    graph.initializer.append(helper.make_tensor(shape, TensorProto.INT64, [3], [0, 0, cells]))
    flat = []
    depth = sum(c for c, _, _ in shapes.values())
    for i, name in enumerate(LAYERS):
        _, h, w = shapes[name]
        if h % rows or w % cols:
            raise ModelContractError(f"layer {name} is {h}×{w}: not divisible by the {rows}×{cols} grid")
        kernel = [h // rows, w // cols]
        pooled, out = f"{PREFIX}pooled{i}", f"{PREFIX}flat{i}"
        graph.node.extend([
            helper.make_node("AveragePool", [name], [pooled], name=f"{PREFIX}AveragePool{i}",
                             kernel_shape=kernel, strides=kernel),
            helper.make_node("Reshape", [pooled, shape], [out], name=f"{PREFIX}Reshape{i}"),
        ])
        flat.append(out)
    graph.node.extend([
        helper.make_node("Concat", flat, [PREFIX + "concat"], name=PREFIX + "Concat", axis=1),
        helper.make_node("Transpose", [PREFIX + "concat"], [VIEW_FEATURES], name=PREFIX + "Transpose",
                         perm=[0, 2, 1]),
    ])
    graph.output.append(helper.make_tensor_value_info(VIEW_FEATURES, TensorProto.FLOAT,
                                                      ["batch", cells, depth]))


def add_scores(proto: Any, spec: ModelSpec, stats: ViewStats, out: str = VIEW_SCORES) -> None:
    """Add ``out [B, cells, views]`` (``view_scores`` unless the alteration head follows),
    computed from ``view_features`` and ``stats``."""
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    p = PREFIX
    consts = {
        "mean": stats.mean, "basis": stats.basis, "inv_var": 1.0 / stats.variances,
        "inv_residual": 1.0 / stats.residual,
    }
    for key, value in consts.items():
        graph.initializer.append(numpy_helper.from_array(np.asarray(value, np.float32), p + key))
    graph.initializer.append(helper.make_tensor(p + "axis2", TensorProto.INT64, [1], [2]))
    graph.initializer.append(helper.make_tensor(p + "axis3", TensorProto.INT64, [1], [3]))
    n = helper.make_node
    graph.node.extend([
        n("Relu", [VIEW_FEATURES], [p + "pos"], name=p + "Relu"),
        n("Sqrt", [p + "pos"], [p + "sqrt"], name=p + "Sqrt"),
        n("Unsqueeze", [p + "sqrt", p + "axis2"], [p + "x"], name=p + "Unsqueeze"),
        n("Sub", [p + "x", p + "mean"], [p + "xc"], name=p + "Sub"),  # [B, N, V, D]
        n("Einsum", [p + "xc", p + "basis"], [p + "proj"], name=p + "Einsum", equation="bnvd,vdk->bnvk"),
        n("Mul", [p + "proj", p + "proj"], [p + "sq"], name=p + "MulSq"),
        n("Mul", [p + "sq", p + "inv_var"], [p + "scaled"], name=p + "MulVar"),
        n("ReduceSum", [p + "scaled", p + "axis3"], [p + "inside"], name=p + "SumInside", keepdims=0),
        n("Mul", [p + "xc", p + "xc"], [p + "xc2"], name=p + "MulXc"),
        n("ReduceSum", [p + "xc2", p + "axis3"], [p + "total"], name=p + "SumTotal", keepdims=0),
        n("ReduceSum", [p + "sq", p + "axis3"], [p + "explained"], name=p + "SumExplained", keepdims=0),
        n("Sub", [p + "total", p + "explained"], [p + "rest"], name=p + "SubRest"),
        n("Mul", [p + "rest", p + "inv_residual"], [p + "outside"], name=p + "MulResidual"),
        n("Add", [p + "inside", p + "outside"], [out], name=p + "Add"),
    ])
    if out == VIEW_SCORES:
        graph.output.append(helper.make_tensor_value_info(
            VIEW_SCORES, TensorProto.FLOAT, ["batch", spec.grid[0] * spec.grid[1], len(spec.views)]))


def _featured(path: Path) -> tuple[Any, ModelSpec]:
    """The model at ``path`` without any earlier gate, with ``view_features`` added."""
    import onnx

    spec = read_spec(path)
    shapes = layer_shapes(path)
    proto = onnx.load(str(path))
    strip_gate(proto.graph)
    strip_view_check(proto.graph, proto)  # built on the old features: fit it again afterwards
    add_features(proto, spec, shapes)
    return proto, spec


def with_features(path: Path) -> bytes:
    """The model at ``path`` (serialised) with ``view_features`` as an output, no scores."""
    return bytes(_featured(path)[0].SerializeToString())


def gated(path: Path, stats: ViewStats, head: HeadWeights | None = None) -> tuple[Any, ModelSpec]:
    """The model at ``path`` with the gate's outputs (features, scores and, with ``head``, the
    alteration logits appended to the scores), without metadata."""
    proto, spec = _featured(path)
    if head is None:
        add_scores(proto, spec, stats, VIEW_SCORES)
        return proto, spec
    from onnx import TensorProto, helper


    add_scores(proto, spec, stats, PREFIX + "distances")
    add_head(proto, spec, head, PREFIX + "distances", VIEW_SCORES)
    proto.graph.output.append(helper.make_tensor_value_info(
        VIEW_SCORES, TensorProto.FLOAT, ["batch", spec.grid[0] * spec.grid[1], len(spec.views) + 2]))
    return proto, spec


def write_gate(path: Path, stats: ViewStats, params: GateParams, head: HeadWeights | None = None) -> None:
    """Write the gate (features, scores, metadata) into the model at ``path``, replacing any."""
    import onnx

    proto, _ = gated(path, stats, head)
    set_prop(proto, "gate", params)
    onnx.checker.check_model(proto)
    save_atomic(proto, path)


# --- fitting ------------------------------------------------------------------------------------


def cell_features(model: bytes, spec: ModelSpec, ts: datasets.TileSet, *, alone: bool = False,
                  batch: int = 64) -> np.ndarray:
    """``[N, V, D]``: each view's cell features, in full mosaics or (``alone``) one photo per
    mosaic with blank neighbours, as ``/v1/quality`` sees it."""
    import onnxruntime as ort

    from authentiq.pipeline.stitch import cell_of

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    cols = spec.grid[1]
    cells = [r * cols + c for r, c in (cell_of(spec, v) for v in spec.view_names)]

    def mosaics(select: Sequence[str]) -> np.ndarray:
        out = []
        for start in range(0, len(ts), batch):
            x = np.stack([build_input(spec, ts.tiles_of(i, select))
                          for i in range(start, min(start + batch, len(ts)))])
            out.append(session.run([VIEW_FEATURES], {"views": x})[0])
        return np.concatenate(out)

    if not alone:
        return mosaics(spec.view_names)[:, cells]
    return np.stack([mosaics([v])[:, cells[k]] for k, v in enumerate(spec.view_names)], axis=1)


def thresholds(stats: ViewStats, features: np.ndarray, quantile: float) -> np.ndarray:
    """Per view, the ``quantile`` of in-distribution distances of that view's photos."""
    scores = stats.scores(features)  # [N, V(photo), V(distribution)]
    return np.asarray([np.quantile(scores[:, v, v], quantile) for v in range(features.shape[1])])


def alteration_thresholds(model: bytes, spec: ModelSpec, ts: datasets.TileSet,
                          single: datasets.TileSet, quantile: float
                          ) -> tuple[dict[str, tuple[float, float]], dict[str, tuple[float, float]]]:
    """Per view, the ``quantile`` of the [orientation, degradation] logits of photos as taken:
    in full mosaics, and (at least as high) one photo at a time."""

    full = np.quantile(alterations.logits(model, spec, ts), quantile, axis=0)
    alone = np.maximum(np.quantile(alterations.logits(model, spec, single, alone=True), quantile,
                                   axis=0), full)

    def table(q: np.ndarray) -> dict[str, tuple[float, float]]:
        return {v: (round(float(q[i, 0]), 3), round(float(q[i, 1]), 3))
                for i, v in enumerate(spec.view_names)}

    return table(full), table(alone)


def fit_gate(models: Sequence[Path], *, items: int = 2000, quantile: float = 0.998,
             single_items: int = 400, data: str | None = None, cache: Path | None = None,
             alteration_items: int = 1500, epochs: int = 12,
             alteration_quantile: float = 0.9995, tiles: datasets.TileSet | None = None,
             source: str = "", min_items: int = 100,
             alteration_folders: Sequence[Path] | None = None) -> GateParams:
    """Fit on the first model's features; thresholds per model from its own features.

    ``alteration_items`` > 0 also trains the alteration head (PyTorch) on that many synthetic
    items, or of ``alteration_folders`` (item folders: a dataset's training items), as taken
    and altered (:mod:`authentiq.modelling.training.alterations`); its thresholds are the
    ``alteration_quantile`` of the logits of all the gate's items (the head never saw them).
    ``tiles`` (said by ``source``): these items instead of ``data`` or synthetic ones; fewer than
    ``min_items`` with every view are refused."""

    first = read_spec(models[0])
    if tiles is not None:
        ts = tiles
        source = source or f"{len(ts)} items"
    elif data:
        found = datasets.folder_items(Path(data))
        ts = datasets.folder_tiles(found, first.view_names, first.tile_size, required=())
        source = f"{len(ts)} items of {data}"
    else:
        ts = datasets.synthetic_cached(datasets.TRUST_SEED_BASE, items, first.view_names,
                                       first.tile_size, cache)
        source = f"{items} synthetic items (seeds {datasets.TRUST_SEED_BASE:,}+)"
    if not ts.present.all():
        keep = np.flatnonzero(ts.present.all(axis=1))
        if len(keep) < min_items:
            raise ModelContractError(f"the view gate needs at least {min_items} items with every "
                                     f"view; {len(keep)} have them")
        ts = ts.subset(keep)
    split = int(len(ts) * 0.7)
    fit_part, held = ts.subset(np.arange(split)), ts.subset(np.arange(split, len(ts)))
    single = held.subset(np.arange(min(single_items, len(held))))
    stats = fit_stats(cell_features(with_features(models[0]), first, fit_part))
    head = None
    altered_on = ""
    if alteration_items > 0:
        if alteration_folders is None:
            chosen: int | list[Path] = alteration_items
            altered_on = (f"{alteration_items} synthetic items (seeds "
                          f"{alterations.ALTERATION_SEED_BASE:,}+)")
        else:
            chosen = list(alteration_folders)[:alteration_items]
            altered_on = f"{len(chosen)} training items"
        maps, kinds = alterations.training_maps(alterations.with_layer(models[0]), first, chosen)
        head = alterations.train_head(first, maps, kinds, epochs=epochs)
        del maps
    fitted: list[tuple[Path, GateParams]] = []
    for path in models:
        spec = read_spec(path)
        model = with_features(path)
        full = thresholds(stats, cell_features(model, spec, held), quantile)
        alone = thresholds(stats, cell_features(model, spec, single, alone=True), quantile)
        altered: dict[str, tuple[float, float]] | None = None
        altered_alone: dict[str, tuple[float, float]] | None = None
        if head is not None:
            altered, altered_alone = alteration_thresholds(
                gated(path, stats, head)[0].SerializeToString(), spec, ts, single,
                alteration_quantile)
        params = GateParams(
            thresholds={v: round(float(t), 3) for v, t in zip(spec.view_names, full, strict=True)},
            single_photo_thresholds={v: round(float(max(a, t)), 3) for v, a, t in
                                     zip(spec.view_names, alone, full, strict=True)},
            alteration_thresholds=altered, single_photo_alteration_thresholds=altered_alone,
            quantile=quantile,
            fitted_on=(f"{source}: statistics on {split}, thresholds on {len(held)} others "
                       f"({len(single)} also one photo at a time), features of {models[0].name}"
                       + (f"; alteration head on {altered_on} as taken and altered, its "
                          f"thresholds at the {alteration_quantile} quantile of all {len(ts)}"
                          if head is not None else "")))
        _check(spec, params, source)
        fitted.append((path, params))
    for path, params in fitted:  # only once every flavour's gate is valid: none half-written
        write_gate(path, stats, params, head)
        log.info("wrote the view gate into %s: %s", path, params.thresholds)
    if not fitted:
        raise ValueError("no models given")
    return fitted[-1][1]


def _check(spec: ModelSpec, params: GateParams, source: str) -> None:
    """Refuse a gate the model contract would refuse (e.g. zero thresholds from items that are
    all alike) before any model is rewritten."""
    from pydantic import ValidationError

    try:
        ModelSpec.model_validate({**spec.model_dump(), "gate": params.model_dump()})
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]) for e in exc.errors())
        raise ModelContractError(f"the view gate fitted on {source} is not usable ({problems}): "
                                 f"the items are too few or too alike") from exc
