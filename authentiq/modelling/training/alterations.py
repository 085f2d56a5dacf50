"""The view gate's second question: was this photo altered after it was taken? (``fit-gate``)

The gate's distances (:mod:`authentiq.modelling.training.gate`) compare per-cell *means* of features with
each view's distribution. Means forget where things are, so a mirrored, upside-down or turned
photo, or one ruined by compression, upscaling or stretching, sits as close to its view as an
untouched one (measured: docs/performance.md, "Altered photos"). Those photos flipped genuine
items to counterfeit in an attack run.

This head is *outlier exposure*: a small convolutional network over the backbone's stage-2 block
output (√, as the gate's features), trained on photos as taken (negatives) and the same photos
altered (positives): mirrored, flipped, turned 90/180/270°, re-saved at JPEG quality 1–5,
upscaled from 16–48 px, stretched 3–7×. The photos are synthetic items' (``fit-gate``) or a
folder's training items' (``authentiq train --data``). For every cell it gives two logits per view
(altered in *orientation*, *degraded*); the graph appends the cell's own view's two logits to
``view_scores`` as two extra columns. Thresholds are a high quantile of the logits of untouched
held-out photos (:class:`~authentiq.contract.model_spec.GateParams` ``alteration_thresholds``).

PyTorch (the ``[train]`` extra) trains it; serving runs three ONNX convolutions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from authentiq.contract.layout import view_files
from authentiq.contract.model_spec import ModelSpec
from authentiq.errors import ModelContractError
from authentiq.modelling import datasets
from authentiq.modelling.training.graph import PREFIX, strip_gate
from authentiq.pipeline.stitch import build_input, cell_of

log = logging.getLogger(__name__)
LAYER = "/stages/stages.2/Relu_1_output_0"
KINDS = ("orientation", "degradation")
ORIENTATION = ("mirrored", "flipped", "turned_90", "turned_180", "turned_270")
DEGRADATION = ("jpeg", "upscaled", "stretched")
ALTERATIONS = ORIENTATION + DEGRADATION
ALTERATION_SEED_BASE = 80_000_000
HIDDEN = 32


@dataclass(frozen=True)
class HeadWeights:
    """Conv(C→h, 3×3) · ReLU · Conv(h→h, 3×3, stride 2) · ReLU · Conv(h→2V, cell/2, stride cell/2);
    output channel ``2v + k`` is view v's logit for kind k."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    w3: np.ndarray
    b3: np.ndarray


def _altered_item(args: tuple[int | Path, tuple[str, ...], int, int]) -> np.ndarray | None:
    """[1 + len(ALTERATIONS), V, T, T, 3]: one item's tiles as taken, then under each alteration.
    The item is a synthetic seed, or a folder of photos (None where a view is missing)."""
    from PIL import Image

    from authentiq.modelling.synthetic.distractors.alterations import ORIENTATIONS, degrade
    from authentiq.pipeline.preprocess import decode_view

    source, views, tile, seed = args
    photos = _photos(source, views)
    if photos is None:
        return None
    rng = np.random.default_rng([seed, 1])
    out = np.zeros((1 + len(ALTERATIONS), len(views), tile, tile, 3), np.uint8)
    for k, view in enumerate(views):
        upright = decode_view(photos[view], tile_size=tile).tile
        out[0, k] = upright
        for j, how in enumerate(ORIENTATION, 1):  # the centre square commutes with these
            out[j, k] = np.asarray(Image.fromarray(upright).transpose(ORIENTATIONS[how]))
        for j, how in enumerate(DEGRADATION, 1 + len(ORIENTATION)):
            out[j, k] = decode_view(degrade(photos[view], how, rng), tile_size=tile,
                                    max_pixels=64_000_000).tile
    return out


def _photos(source: int | Path, views: tuple[str, ...]) -> dict[str, bytes] | None:
    """A synthetic item's photos by view, or those of an item folder if it has every view."""
    if isinstance(source, Path):
        files = view_files(source)
        if any(v not in files for v in views):
            return None
        return {v: files[v].read_bytes() for v in views}
    from authentiq.modelling.synthetic import make_item

    return dict(make_item(source, views=views).views)


def with_layer(path: Path) -> bytes:
    """The model at ``path`` without any gate, with the stage-2 block output exposed."""
    import onnx


    proto = onnx.load(str(path))
    strip_gate(proto.graph)
    proto.graph.output.append(onnx.helper.make_empty_tensor_value_info(LAYER))
    return bytes(proto.SerializeToString())


def layer_maps(session: Any, x: np.ndarray, batch: int = 64) -> np.ndarray:
    """The stage-2 block output for mosaics ``x``, float16 (what the head reads)."""
    return np.concatenate([session.run([LAYER], {"views": x[s:s + batch]})[0].astype(np.float16)
                           for s in range(0, len(x), batch)])


def training_maps(model: bytes, spec: ModelSpec, items: int | Sequence[Path], *,
                  mosaics: int = 3, chunk: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """(maps [M, C, H, W], kinds [M, V]) for ``items``: that many synthetic items (seeds
    ALTERATION_SEED_BASE+), or these item folders (those with every view): each item's mosaic
    as taken, and ``mosaics`` more with every cell altered at random (kind 1.. = ALTERATIONS
    index + 1)."""
    import onnxruntime as ort

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    views = spec.view_names
    rng = np.random.default_rng(ALTERATION_SEED_BASE)
    sources: list[int | Path] = (list(range(ALTERATION_SEED_BASE, ALTERATION_SEED_BASE + items))
                                 if isinstance(items, int) else list(items))
    maps, kinds = [], []
    for start in range(0, len(sources), chunk):
        jobs = [(src, views, spec.tile_size, ALTERATION_SEED_BASE + start + i)
                for i, src in enumerate(sources[start:start + chunk])]
        tiles = [t for t in datasets._map(_altered_item, jobs, None) if t is not None]
        xs, ks = [], []
        for t in tiles:
            for m in range(1 + mosaics):
                k = np.zeros(len(views), int) if m == 0 else rng.integers(1, len(ALTERATIONS) + 1,
                                                                          size=len(views))
                xs.append(build_input(spec, {v: t[k[i], i] for i, v in enumerate(views)}))
                ks.append(k)
        if xs:
            maps.append(layer_maps(session, np.stack(xs)))
            kinds.append(np.stack(ks))
        log.info("alteration examples: %d of %d items", min(start + chunk, len(sources)),
                 len(sources))
    if not maps:
        raise ModelContractError("the alteration head needs items with every view; none has them")
    return np.concatenate(maps), np.concatenate(kinds)


def own_cells(spec: ModelSpec) -> list[int]:
    cols = spec.grid[1]
    return [r * cols + c for r, c in (cell_of(spec, v) for v in spec.view_names)]


def train_head(spec: ModelSpec, maps: np.ndarray, kinds: np.ndarray, *, epochs: int = 12,
               seed: int = 0) -> HeadWeights:
    """Fit the head on (maps, kinds) from :func:`training_maps`."""
    from authentiq.modelling.training import require_torch

    torch = require_torch()
    torch.manual_seed(seed)
    views = len(spec.view_names)
    channels, height, width = maps.shape[1:]
    cell = (height // spec.grid[0] // 2, width // spec.grid[1] // 2)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(channels, HIDDEN, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(HIDDEN, HIDDEN, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(HIDDEN, 2 * views, cell, stride=cell))
    x = torch.from_numpy(np.sqrt(np.maximum(maps.astype(np.float32), 0)))
    k = torch.from_numpy(kinds)
    targets = torch.stack([(k >= 1) & (k <= len(ORIENTATION)), k > len(ORIENTATION)], -1).float()
    weight = torch.where(k == 0, 3.0, 1.0)[..., None]  # false alarms cost retakes of real items
    cells, index = torch.tensor(own_cells(spec)), torch.arange(views)
    opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=1e-3)
    for epoch in range(epochs):
        order, total = torch.randperm(len(x)), 0.0
        for s in range(0, len(order), 64):
            b = order[s:s + 64]
            logits = own_logits(net(x[b]), views)[:, cells, index]  # [b, V, 2]
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(
                logits, targets[b], reduction="none") * weight[b]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(b)
        log.info("alteration head epoch %d: loss %.4f", epoch + 1, total / len(x))
    c1, c2, c3 = (m for m in net if isinstance(m, torch.nn.Conv2d))
    return HeadWeights(*(t.detach().numpy().astype(np.float32) for t in
                         (c1.weight, c1.bias, c2.weight, c2.bias, c3.weight, c3.bias)))


def own_logits(out: Any, views: int) -> Any:
    """Head output [B, 2V, R, C] → [B, cells, V, 2] (torch or numpy)."""
    b = out.shape[0]
    flat = out.reshape(b, 2 * views, -1)
    flat = flat.transpose(1, 2) if hasattr(flat, "detach") else flat.transpose(0, 2, 1)
    return flat.reshape(b, -1, views, 2)


def add_head(proto: Any, spec: ModelSpec, head: HeadWeights, scores: str, out: str) -> None:
    """``out [B, cells, V + 2]``: ``scores [B, cells, V]`` with each cell's own view's two
    alteration logits appended. The network is :class:`HeadWeights`' three convolutions."""
    from onnx import TensorProto, helper, numpy_helper


    graph, p, n = proto.graph, PREFIX + "alter/", helper.make_node
    views = len(spec.view_names)
    cells = spec.grid[0] * spec.grid[1]
    for name in ("w1", "b1", "w2", "b2", "w3", "b3"):
        graph.initializer.append(numpy_helper.from_array(getattr(head, name), p + name))
    # one-hot [cells, 2V, 2] picking each cell's own view's two channels
    pick = np.zeros((cells, 2 * views, 2), np.float32)
    for v, c in enumerate(own_cells(spec)):
        pick[c, 2 * v, 0] = pick[c, 2 * v + 1, 1] = 1.0
    graph.initializer.append(numpy_helper.from_array(pick, p + "pick"))
    graph.initializer.append(helper.make_tensor(p + "flat", TensorProto.INT64, [3], [0, 2 * views, cells]))
    kernel = [int(d) for d in head.w3.shape[2:]]
    graph.node.extend([
        n("Relu", [LAYER], [p + "pos"], name=p + "Relu0"),
        n("Sqrt", [p + "pos"], [p + "x"], name=p + "Sqrt"),
        n("Conv", [p + "x", p + "w1", p + "b1"], [p + "c1"], name=p + "Conv1", pads=[1, 1, 1, 1]),
        n("Relu", [p + "c1"], [p + "r1"], name=p + "Relu1"),
        n("Conv", [p + "r1", p + "w2", p + "b2"], [p + "c2"], name=p + "Conv2", pads=[1, 1, 1, 1],
          strides=[2, 2]),
        n("Relu", [p + "c2"], [p + "r2"], name=p + "Relu2"),
        n("Conv", [p + "r2", p + "w3", p + "b3"], [p + "c3"], name=p + "Conv3", kernel_shape=kernel,
          strides=kernel),
        n("Reshape", [p + "c3", p + "flat"], [p + "bkc"], name=p + "Reshape"),  # [B, 2V, cells]
        n("Einsum", [p + "bkc", p + "pick"], [p + "own"], name=p + "Pick", equation="bkc,ckj->bcj"),
        n("Concat", [scores, p + "own"], [out], name=p + "Concat", axis=2),
    ])


def logits(model: bytes, spec: ModelSpec, ts: datasets.TileSet, *, alone: bool = False,
           batch: int = 64) -> np.ndarray:
    """[N, V, 2]: each view's alteration logits from a model with the head (``view_scores``'
    last two columns), in full mosaics or (``alone``) one photo per mosaic."""
    import onnxruntime as ort

    from authentiq.contract.model_spec import VIEW_SCORES

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    cells = own_cells(spec)

    def run(select: Sequence[str]) -> np.ndarray:
        out = [session.run([VIEW_SCORES], {"views": np.stack([
            build_input(spec, ts.tiles_of(i, select)) for i in range(s, min(s + batch, len(ts)))])})[0]
            for s in range(0, len(ts), batch)]
        return np.concatenate(out)[:, :, -2:]

    if not alone:
        return run(spec.view_names)[:, cells]
    return np.stack([run([v])[:, cells[k]] for k, v in enumerate(spec.view_names)], axis=1)
