"""Fit the model's embedding head for reference search (``authentiq fit-embedding``).

The classifier is trained for one question, genuine or not; the reference comparison needs an
embedding in which genuine items of one model sit together, other models sit elsewhere, and
counterfeits sit away from the genuine items they imitate. This fits only the float head
``embedding = normalise(W · pooled + b)`` on the frozen backbone's pooled features, with a cosine
softmax (NormFace) over (brand/model × genuine/counterfeit) classes, and writes ``W, b`` into
every flavour of the model (the head is float in all of them, so the classifier's logits and the
INT8 calibration are unchanged). Items come from a seed range the backbone never saw
(:data:`authentiq.modelling.datasets.EMBEDDING_SEED_BASE`).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from authentiq.errors import ModelContractError
from authentiq.modelling import datasets
from authentiq.modelling.training import require_torch
from authentiq.pipeline.stitch import build_input

log = logging.getLogger(__name__)
EMBEDDING_OUTPUT = "embedding"


def _head(graph: object) -> tuple[object, object]:
    """The Gemm whose output is normalised into ``embedding``, and that normalising node."""
    nodes = list(graph.node)  # type: ignore[attr-defined]
    producer = {o: n for n in nodes for o in n.output}
    norm = producer.get(EMBEDDING_OUTPUT)
    gemm = producer.get(norm.input[0]) if norm is not None else None
    if gemm is None or gemm.op_type != "Gemm":
        raise ModelContractError("the model's embedding does not come from a Gemm head; "
                                 "fit-embedding supports the default architecture only")
    return gemm, norm


def pooled_features(model_path: Path, ts: datasets.TileSet, batch: int = 64) -> np.ndarray:
    """The pooled backbone features [N, C] the embedding head reads, for every item."""
    import onnx
    import onnxruntime as ort

    from authentiq.contract.model_spec import read_spec

    spec = read_spec(model_path)
    proto = onnx.load(str(model_path))
    gemm, _ = _head(proto.graph)
    pooled = gemm.input[0]  # type: ignore[attr-defined]
    proto.graph.output.append(onnx.helper.make_empty_tensor_value_info(pooled))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "with-pooled.onnx"
        onnx.save(proto, str(path))
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = []
    for start in range(0, len(ts), batch):
        x = np.stack([
            build_input(spec, ts.tiles_of(i))
            for i in range(start, min(start + batch, len(ts)))])
        out.append(session.run([pooled], {"views": x})[0])
    return np.concatenate(out).astype(np.float32)


def fit_head(features: np.ndarray, classes: np.ndarray, dim: int, *, epochs: int = 300,
             scale: float = 16.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cosine-softmax fit; returns ``(W [dim, C], b [dim])`` for ``normalise(W·x + b)``."""
    torch = require_torch()
    torch.manual_seed(seed)
    x = torch.from_numpy(features)
    y = torch.from_numpy(classes.astype(np.int64))
    mean, std = x.mean(0), x.std(0) + 1e-6
    head = torch.nn.Linear(x.shape[1], dim)
    protos = torch.nn.Parameter(torch.randn(int(classes.max()) + 1, dim))
    opt = torch.optim.AdamW([*head.parameters(), protos], lr=3e-3, weight_decay=1e-4)
    for _ in range(epochs):
        z = torch.nn.functional.normalize(head((x - mean) / std), dim=1)
        logits = scale * z @ torch.nn.functional.normalize(protos, dim=1).T
        loss = torch.nn.functional.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    log.info("embedding head: final loss %.4f", float(loss.detach()))
    # Fold the feature standardisation into the head: W·((x - m)/s) + b = (W/s)·x + (b - W·m/s).
    with torch.no_grad():
        w = head.weight / std
        b = head.bias - w @ mean
    return w.numpy().astype(np.float32), b.numpy().astype(np.float32)


def write_head(model_path: Path, weight: np.ndarray, bias: np.ndarray, version: str,
               out: Path | None = None) -> Path:
    """Replace the head's weights (Gemm ``transB=1`` or not) and the model version, in place."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(model_path))
    gemm, _ = _head(proto.graph)
    trans_b = any(a.name == "transB" and a.i == 1 for a in gemm.attribute)  # type: ignore[attr-defined]
    names = {gemm.input[1]: weight if trans_b else weight.T, gemm.input[2]: bias}  # type: ignore[attr-defined]
    for init in proto.graph.initializer:
        if init.name in names:
            new = np.ascontiguousarray(names.pop(init.name), dtype=np.float32)
            if tuple(init.dims) != new.shape:
                raise ModelContractError(f"{model_path}: head tensor {init.name} is {tuple(init.dims)}, "
                                         f"the fitted one {new.shape}")
            init.CopyFrom(numpy_helper.from_array(new, init.name))
    if names:
        raise ModelContractError(f"{model_path}: head initialisers {sorted(names)} not found")
    for prop in proto.metadata_props:
        if prop.key == "authentiq.model_version":
            prop.value = version
    onnx.checker.check_model(proto)
    target = out or model_path
    onnx.save(proto, str(target))
    return target


def fit_embedding(models: Sequence[Path], *, items: int = 3000, version: str,
                  cache: Path | None = None, tiles: datasets.TileSet | None = None) -> np.ndarray:
    """Fit on the first model's features and write the head into every model; returns the
    per-class counts used. ``tiles``: these items (e.g. a folder's training items, classes by
    product and label) instead of synthetic ones."""
    from authentiq.contract.model_spec import read_spec

    spec = read_spec(models[0])
    seeds = range(datasets.EMBEDDING_SEED_BASE, datasets.EMBEDDING_SEED_BASE + items)
    if tiles is not None:
        feats = pooled_features(models[0], tiles)
        classes = tiles.groups * 2 + tiles.labels
    elif cache is not None and cache.is_file():
        with np.load(cache) as z:
            feats, classes = z["features"], z["classes"]
    else:
        ts = datasets.synthetic_tiles(seeds, spec.view_names, spec.tile_size)
        feats = pooled_features(models[0], ts)
        classes = ts.groups * 2 + ts.labels
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, features=feats, classes=classes)
    weight, bias = fit_head(feats, classes, spec.embedding_size)
    for path in models:
        write_head(path, weight, bias, version)
        log.info("wrote the embedding head and version %s into %s", version, path)
    return np.bincount(classes)
