"""The per-view reference check's frame: fitted in numpy, computed in the graph (real ONNX
Runtime on the shipped model), and what it is for — products it never saw told apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from authentiq.contract.model_spec import VIEW_DESCRIPTORS, VIEW_FEATURES, read_spec
from authentiq.errors import ModelContractError
from authentiq.modelling.training.view_check import Frame, add_descriptors, fit_frame
from authentiq.pipeline.stitch import cell_of
from authentiq.settings import DEFAULT_MODEL
from tests.conftest import ENGINES

pytestmark = pytest.mark.db_independent  # the PostgreSQL pass leaves it out

D = 12


def photos(rng: np.random.Generator, product: np.ndarray, n: int) -> np.ndarray:
    """``n`` genuine photos' raw features (one view) of a product: its own pattern plus a lot of
    variation along axes 1..3 that every product's photos share (pose, light)."""
    x = np.tile(product, (n, 1)) + rng.normal(0, 0.05, (n, D))
    x[:, 1:4] += rng.normal(0, 2.0, (n, 3))
    return np.maximum(x, 0) ** 2  # raw features; the frame square-roots them


def nearest(refs: np.ndarray, query: np.ndarray) -> float:
    r = refs / np.linalg.norm(refs, axis=1, keepdims=True)
    return float(np.max(r @ (query / np.linalg.norm(query))))


def test_the_frame_tells_apart_products_it_never_saw() -> None:
    """Fitted on products a and b, it separates c from d — which differ along an axis a and b
    never used — because it learnt how photos of one product vary, not which products exist."""
    rng = np.random.default_rng(0)
    base = np.full(D, 4.0)
    a, b = base.copy(), base.copy()
    a[0] += 1.5
    c, d = base.copy(), base.copy()
    c[6] += 1.5
    fit = np.concatenate([photos(rng, a, 100), photos(rng, b, 100)])[:, None, :]  # [N, 1 view, D]
    frame = fit_frame(fit, np.repeat(["a", "b"], 100), components=4)
    c_refs, d_refs = photos(rng, c, 5), photos(rng, d, 5)
    queries = photos(rng, c, 40)

    def separated(describe: bool) -> bool:
        def f(x: np.ndarray) -> np.ndarray:
            return frame.describe(x[:, None, :])[:, 0] if describe else np.sqrt(x) - np.sqrt(fit[:, 0]).mean(0)
        own = [nearest(f(c_refs), q) for q in f(queries)]
        foreign = [nearest(f(d_refs), q) for q in f(queries)]
        return min(own) > max(foreign)

    assert separated(describe=True)
    assert not separated(describe=False)  # the raw features drown the difference in pose


def test_the_graph_computes_what_the_frame_says(tmp_path: Path) -> None:
    """``view_descriptors`` from ONNX Runtime equal the numpy frame, every other output is
    untouched, and a refit replaces the old descriptors."""
    rng = np.random.default_rng(1)
    spec = read_spec(DEFAULT_MODEL)
    frame = fit_frame(rng.gamma(2.0, 1.0, (60, 6, 256)), np.repeat(["p", "q", "r"], 20),
                      components=8)
    proto = onnx.load(str(DEFAULT_MODEL))
    add_descriptors(proto, spec, frame)
    add_descriptors(proto, spec, frame)  # a refit: replaced, not added twice
    assert [o.name for o in proto.graph.output].count(VIEW_DESCRIPTORS) == 1
    onnx.checker.check_model(proto)
    h, w = spec.input_hw
    x = rng.normal(size=(3, 3, h, w)).astype(np.float32)
    names = ["logits", "embedding", "cam", "view_scores", VIEW_FEATURES]
    before = ort.InferenceSession(str(DEFAULT_MODEL), providers=["CPUExecutionProvider"]).run(names, {"views": x})
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    after = session.run([*names, VIEW_DESCRIPTORS], {"views": x})
    for name, old, new in zip(names, before, after, strict=False):
        assert np.array_equal(old, new), name
    cells = [cell_of(spec, v)[0] * spec.grid[1] + cell_of(spec, v)[1] for v in spec.view_names]
    np.testing.assert_allclose(after[-1][:, cells], frame.describe(after[-2][:, cells]),
                               rtol=1e-4, atol=1e-4)


def test_descriptors_need_the_gates_features(tiny_model: Path) -> None:
    proto = onnx.load(str(tiny_model))
    frame = Frame(np.zeros((2, 4), np.float32), np.zeros((2, 4, 1), np.float32),
                  np.zeros((2, 1), np.float32), np.ones(2, np.float32))
    with pytest.raises(ModelContractError, match="fit-gate"):
        add_descriptors(proto, read_spec(tiny_model), frame)


@pytest.mark.parametrize("flavour", ["fp32", "int8-cpu", "int8-trt"])
def test_shipped_models_carry_the_check(flavour: str) -> None:
    path = ENGINES / f"authentiq-default.{flavour}.onnx"
    check = read_spec(path).view_check
    assert check is not None and check.counts == (1, 2, 3, 5, 10, 20)
    assert check.features_id == read_spec(DEFAULT_MODEL).view_check.features_id  # type: ignore[union-attr]
    outputs = [o.name for o in onnx.load(str(path), load_external_data=False).graph.output]
    assert VIEW_DESCRIPTORS in outputs
    for view, floors in check.floors.items():
        assert len(floors) == len(check.counts), view


def test_refitting_the_gate_removes_the_check_built_on_its_features() -> None:
    """The descriptors are computed from the gate's features: a gate refit strips them and their
    floors, so a model never carries a check fitted on features it no longer computes."""
    from authentiq.modelling.training.graph import CHECK_PREFIX, strip_gate, strip_view_check

    proto = onnx.load(str(DEFAULT_MODEL))
    strip_gate(proto.graph)
    strip_view_check(proto.graph, proto)
    assert VIEW_DESCRIPTORS not in {o.name for o in proto.graph.output}
    assert not any(n.name.startswith(CHECK_PREFIX) for n in proto.graph.node)
    assert not any(i.name.startswith(CHECK_PREFIX) for i in proto.graph.initializer)
    assert "authentiq.view_check" not in {p.key for p in proto.metadata_props}
    assert "authentiq.fusion" in {p.key for p in proto.metadata_props}  # the rest stays


@pytest.mark.slow
def test_fit_view_check_writes_a_working_check(tmp_path: Path) -> None:
    """A refit on a few items replaces the shipped check in a copy: the descriptors come out of
    the graph once, the floors cover the counts the items allow, and a genuine item's views are
    like its own product's references."""
    import shutil

    from authentiq.modelling.training.view_check import fit_view_check
    from authentiq.pipeline.view_references import ViewReferences, check

    model = tmp_path / "m.onnx"
    shutil.copy(DEFAULT_MODEL, model)
    for _ in range(2):  # idempotent graph surgery
        params = fit_view_check([model], items=72, cache=tmp_path / "items.npz", draws=2)
    spec = read_spec(model)
    assert spec.view_check == params and params.counts[0] == 1 and set(params.floors) == set(spec.view_names)
    assert params.features_id != read_spec(DEFAULT_MODEL).view_check.features_id  # type: ignore[union-attr]
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()].count(VIEW_DESCRIPTORS) == 1
    from authentiq.modelling import datasets
    from authentiq.pipeline.stitch import build_input

    ts = datasets.TileSet.load(tmp_path / "items.npz")
    x = np.stack([build_input(spec, ts.tiles_of(i)) for i in range(len(ts))])
    out = session.run([VIEW_DESCRIPTORS], {"views": x})[0]
    cells = [cell_of(spec, v)[0] * spec.grid[1] + cell_of(spec, v)[1] for v in spec.view_names]
    refs = ViewReferences()
    for i in range(1, len(ts)):
        refs.put(str(i), str(ts.groups[i]), {v: out[i, c] for v, c in zip(spec.view_names, cells, strict=True)})
    found = check(params, refs, str(ts.groups[0]),
                  {v: out[0, c] for v, c in zip(spec.view_names, cells, strict=True)})
    assert len(found) == 6 and all(m.finding is None for m in found), found
