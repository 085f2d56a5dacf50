"""Fit the per-view reference check and write it into a model (``authentiq fit-view-check``).

The check (:mod:`authentiq.pipeline.view_references`) compares each photo with the same view of
the claimed product's references. It is fitted on genuine items the model never trained on
(:data:`authentiq.modelling.datasets.VIEW_CHECK_SEED_BASE`), split in two halves:

1. **The frame** (one half). Per view, the *within-product* scatter of the square-rooted
   ``view_features`` (each item minus its product's mean), shrunk towards isotropic by
   ``shrinkage`` and kept as ``components`` principal directions plus an isotropic rest (a
   probabilistic PCA, as the view gate's). The model gets a new output, computed in its graph:
   ``view_descriptors [B, cells, D] = x̃/σ + ((x̃·U)·a)·Uᵀ`` with ``x̃ = √relu(view_features) −
   μ`` and ``a = w^-½ − 1/σ``: the features whitened so that the ways genuine photos of one
   product differ (pose, light, background) count little and what tells products apart counts.
   Measured (docs/performance.md): fitted on some products, it separates foreign views of
   products it never saw better than plain features (and than a projection onto the fit
   products' differences, which does not carry over).
2. **The floors** (the other half, which the frame never saw: its own items would look more
   alike than new ones). Similarities to the closest of n references grow with n, so per count
   n, ``draws`` times, n items per product are drawn as references and every other item is
   checked against them exactly as the service does (:class:`ViewReferences`): per view,
   ``floors`` is the ``quantile`` of the closest claimed similarity, ``loose`` its
   ``loose_quantile`` and ``margins`` the ``margin_quantile`` of (closest other product −
   closest claimed).

The frame is fitted on the first model's features and written into every flavour; each flavour's
floors come from its own descriptors. Metadata: ``authentiq.view_check``
(:class:`~authentiq.contract.model_spec.ViewCheckParams`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from authentiq.contract.model_spec import (
    VIEW_DESCRIPTORS,
    VIEW_FEATURES,
    ModelSpec,
    ViewCheckParams,
    read_spec,
)
from authentiq.errors import ModelContractError
from authentiq.modelling import datasets
from authentiq.modelling.training.graph import CHECK_PREFIX, strip_view_check
from authentiq.modelling.training.metadata import save_atomic, set_prop
from authentiq.pipeline.stitch import build_input, cell_of
from authentiq.pipeline.view_references import ViewReferences

log = logging.getLogger(__name__)
COUNTS = (1, 2, 3, 5, 10, 20)


@dataclass(frozen=True)
class Frame:
    """Per view: mean [V, D], basis [V, D, k], scale [V, k] (``w^-½ − 1/σ``), inv_sigma [V]."""

    mean: np.ndarray
    basis: np.ndarray
    scale: np.ndarray
    inv_sigma: np.ndarray

    @property
    def id(self) -> str:
        """What references keep with their descriptors: another fit makes other descriptors."""
        h = hashlib.sha256()
        for a in (self.mean, self.basis, self.scale, self.inv_sigma):
            h.update(np.ascontiguousarray(a, np.float32).tobytes())
        return h.hexdigest()[:16]

    def describe(self, features: np.ndarray) -> np.ndarray:
        """Raw ``view_features`` ``[..., V, D]`` (cell v holding view v) → descriptors, as the
        graph computes them."""
        x = np.sqrt(np.maximum(np.asarray(features, np.float32), 0)) - self.mean
        proj = np.einsum("...vd,vdk->...vk", x, self.basis) * self.scale
        return np.asarray(x * self.inv_sigma[:, None] + np.einsum("...vk,vdk->...vd", proj, self.basis),
                          np.float32)


def fit_frame(features: np.ndarray, groups: np.ndarray, *, components: int = 32,
              shrinkage: float = 0.1) -> Frame:
    """``features [N, V, D]`` raw (cell v holding view v) of genuine items of the products in
    ``groups`` → the whitening of each view's within-product scatter."""
    labels = np.asarray(groups)
    products = sorted(set(labels.tolist()))
    if len(labels) - len(products) < 2:
        raise ModelContractError("the view check needs several genuine items of each product")
    means, bases, scales, inv_sigmas = [], [], [], []
    for v in range(features.shape[1]):
        x = np.sqrt(np.maximum(features[:, v].astype(np.float64), 0))
        centred = x.copy()
        for p in products:
            centred[labels == p] -= x[labels == p].mean(0)
        scatter = centred.T @ centred / (len(x) - len(products))
        level = float(np.trace(scatter)) / len(scatter)
        values, vectors = np.linalg.eigh((1 - shrinkage) * scatter + shrinkage * level * np.eye(len(scatter)))
        k = min(components, len(values) - 1)
        sigma = float(values[:len(values) - k].mean())
        top, top_vectors = values[len(values) - k:], vectors[:, len(values) - k:]
        means.append(x.mean(0))
        bases.append(top_vectors)
        scales.append(1 / np.sqrt(top) - 1 / np.sqrt(sigma))
        inv_sigmas.append(1 / np.sqrt(sigma))
    return Frame(np.asarray(means, np.float32), np.asarray(bases, np.float32),
                 np.asarray(scales, np.float32), np.asarray(inv_sigmas, np.float32))


def add_descriptors(proto: Any, spec: ModelSpec, frame: Frame) -> None:
    """Add ``view_descriptors [B, cells, D]`` from ``view_features`` (replacing earlier ones);
    cells without a view pass their square-rooted features through."""
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    strip_view_check(graph)
    if VIEW_FEATURES not in {o.name for o in graph.output}:
        raise ModelContractError(f"the model has no {VIEW_FEATURES} output; run `authentiq "
                                 "fit-gate` on it first")
    rows, cols = spec.grid
    cells, depth, k = rows * cols, frame.mean.shape[1], frame.basis.shape[2]
    mean = np.zeros((cells, depth), np.float32)
    basis = np.zeros((cells, depth, k), np.float32)
    scale = np.zeros((cells, k), np.float32)
    inv_sigma = np.ones((cells, 1), np.float32)
    for v, view in enumerate(spec.view_names):
        r, c = cell_of(spec, view)
        cell = r * cols + c
        mean[cell], basis[cell], scale[cell] = frame.mean[v], frame.basis[v], frame.scale[v]
        inv_sigma[cell, 0] = frame.inv_sigma[v]
    p = CHECK_PREFIX
    for name, value in {"mean": mean, "basis": basis, "scale": scale, "inv_sigma": inv_sigma}.items():
        graph.initializer.append(numpy_helper.from_array(value, p + name))
    n = helper.make_node
    graph.node.extend([
        n("Relu", [VIEW_FEATURES], [p + "pos"], name=p + "Relu"),
        n("Sqrt", [p + "pos"], [p + "sqrt"], name=p + "Sqrt"),
        n("Sub", [p + "sqrt", p + "mean"], [p + "x"], name=p + "Sub"),  # [B, C, D]
        n("Einsum", [p + "x", p + "basis"], [p + "proj"], name=p + "Project", equation="bcd,cdk->bck"),
        n("Mul", [p + "proj", p + "scale"], [p + "scaled"], name=p + "Scale"),
        n("Einsum", [p + "scaled", p + "basis"], [p + "back"], name=p + "Back", equation="bck,cdk->bcd"),
        n("Mul", [p + "x", p + "inv_sigma"], [p + "rest"], name=p + "Rest"),
        n("Add", [p + "rest", p + "back"], [VIEW_DESCRIPTORS], name=p + "Add"),
    ])
    graph.output.append(helper.make_tensor_value_info(VIEW_DESCRIPTORS, TensorProto.FLOAT,
                                                      ["batch", cells, depth]))


def cell_outputs(model: bytes, spec: ModelSpec, ts: datasets.TileSet, output: str,
                 batch: int = 32) -> np.ndarray:
    """``[N, V, D]``: each view's cell of ``output`` for every item (NaN where the view is absent)."""
    import onnxruntime as ort

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    cells = [cell_of(spec, v)[0] * spec.grid[1] + cell_of(spec, v)[1] for v in spec.view_names]
    out = []
    for start in range(0, len(ts), batch):
        x = np.stack([build_input(spec, ts.tiles_of(i))
                      for i in range(start, min(start + batch, len(ts)))])
        out.append(session.run([output], {"views": x})[0][:, cells])
    found = np.concatenate(out).astype(np.float32)
    found[~ts.present] = np.nan
    return found


def simulate(descriptors: np.ndarray, groups: np.ndarray, views: Sequence[str], n: int,
             draws: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(closest claimed similarity, closest other product − claimed) ``[checks, V]`` of genuine
    items against ``draws`` random reference sets of ``n`` items per product."""
    products = sorted(set(groups.tolist()))
    own_all, margin_all = [], []
    for _ in range(draws):
        picks = np.concatenate([rng.choice(np.flatnonzero(groups == p), n, replace=False)
                                for p in products])
        refs = ViewReferences()
        for i in picks:
            refs.put(str(i), str(groups[i]), {v: descriptors[i, k] for k, v in enumerate(views)
                                              if not np.isnan(descriptors[i, k, 0])})
        for i in np.setdiff1d(np.arange(len(groups)), picks):
            own, margin = np.full(len(views), np.nan), np.full(len(views), np.nan)
            for k, view in enumerate(views):
                if np.isnan(descriptors[i, k, 0]):
                    continue
                query = descriptors[i, k] / np.linalg.norm(descriptors[i, k])
                hit = refs.closest(str(groups[i]), view, query)
                other = refs.closest_other(str(groups[i]), view, query)
                if hit is not None:
                    own[k] = hit[1]
                    if other is not None:
                        margin[k] = other[2] - hit[1]
            own_all.append(own)
            margin_all.append(margin)
    return np.asarray(own_all), np.asarray(margin_all)


def fit_floors(spec: ModelSpec, descriptors: np.ndarray, groups: np.ndarray, *, features_id: str,
               components: int, source: str, quantile: float, loose_quantile: float,
               margin_quantile: float, draws: int = 10, counts: Sequence[int] = COUNTS,
               seed: int = 0) -> ViewCheckParams:
    smallest = min(int((groups == p).sum()) for p in set(groups.tolist()))
    usable = [n for n in counts if n < smallest]  # at least one item of each product left to check
    if not usable:
        raise ModelContractError(f"the view check needs at least 2 genuine items of each product; "
                                 f"the smallest product has {smallest}")
    rng = np.random.default_rng(seed)
    views = spec.view_names
    floors: dict[str, list[float]] = {v: [] for v in views}
    loose: dict[str, list[float]] = {v: [] for v in views}
    margins: dict[str, list[float]] = {v: [] for v in views}
    for n in usable:
        own, margin = simulate(descriptors, groups, views, n, draws, rng)
        for k, view in enumerate(views):
            o, m = own[:, k][~np.isnan(own[:, k])], margin[:, k][~np.isnan(margin[:, k])]
            floors[view].append(round(float(np.quantile(o, quantile)), 4))
            loose[view].append(round(float(np.quantile(o, loose_quantile)), 4))
            margins[view].append(round(float(np.quantile(m, margin_quantile)), 4) if len(m) else 2.0)
        log.info("view check, %d references per product: floors %s", n,
                 {v: floors[v][-1] for v in views})
    return ViewCheckParams(
        features_id=features_id, components=components, counts=tuple(usable),
        floors={v: tuple(x) for v, x in floors.items()},
        loose={v: tuple(x) for v, x in loose.items()},
        margins={v: tuple(x) for v, x in margins.items()},
        quantile=quantile, loose_quantile=loose_quantile, margin_quantile=margin_quantile,
        fitted_on=source)


def fit_view_check(models: Sequence[Path], *, items: int = 1200, data: str | None = None,
                   cache: Path | None = None, quantile: float = 0.0005,
                   loose_quantile: float = 0.1, margin_quantile: float = 0.999,
                   draws: int = 10, components: int = 32, shrinkage: float = 0.1,
                   tiles: datasets.TileSet | None = None, source: str = "") -> ViewCheckParams:
    """The frame from the first model's features on one half of the genuine items, written into
    every flavour; each flavour's floors from its own descriptors of the other half. ``tiles``
    (said by ``source``): these items' genuine ones instead of ``data`` or synthetic ones."""
    import onnx

    first = read_spec(models[0])
    if tiles is not None:
        ts = tiles.subset(np.flatnonzero(tiles.labels == 0))
        source = f"{len(ts)} genuine items of {source or 'the given items'}"
    elif data:
        ts = datasets.folder_tiles(datasets.folder_items(Path(data)), first.view_names,
                                   first.tile_size, required=())
        ts = ts.subset(np.flatnonzero(ts.labels == 0))
        source = f"{len(ts)} genuine items of {data}"
    else:
        ts = datasets.synthetic_cached(datasets.VIEW_CHECK_SEED_BASE, items, first.view_names,
                                       first.tile_size, cache, counterfeit=False)
        source = f"{items} genuine synthetic items (seeds {datasets.VIEW_CHECK_SEED_BASE:,}+)"
    first_proto = onnx.load(str(models[0]))
    if VIEW_FEATURES not in {o.name for o in first_proto.graph.output}:
        raise ModelContractError(f"{models[0].name} has no {VIEW_FEATURES} output: the view check "
                                 f"is built on the view gate's features; fit the gate first")
    frame_part = ts.subset(np.arange(0, len(ts), 2))
    floor_part = ts.subset(np.arange(1, len(ts), 2))
    features = cell_outputs(first_proto.SerializeToString(), first, frame_part,
                            VIEW_FEATURES)
    complete = ~np.isnan(features[:, :, 0]).any(axis=1)
    frame = fit_frame(features[complete], frame_part.groups[complete], components=components,
                      shrinkage=shrinkage)
    params: ViewCheckParams | None = None
    for path in models:
        spec = read_spec(path)
        proto = onnx.load(str(path))
        add_descriptors(proto, spec, frame)
        descriptors = cell_outputs(proto.SerializeToString(), spec, floor_part, VIEW_DESCRIPTORS)
        params = fit_floors(
            spec, descriptors, floor_part.groups, features_id=frame.id, components=components,
            quantile=quantile, loose_quantile=loose_quantile, margin_quantile=margin_quantile,
            draws=draws, source=(
                f"{source}: the frame (within-product scatter, {components} directions, "
                f"shrinkage {shrinkage}) on {int(complete.sum())} of them with {models[0].name}'s "
                f"features; floors on the other {len(floor_part)}, {draws} random reference sets "
                f"of n items per product for each count"))
        set_prop(proto, "view_check", params)
        onnx.checker.check_model(proto)
        save_atomic(proto, path)
        log.info("wrote the view check into %s", path)
    if params is None:
        raise ValueError("no models given")
    return params
