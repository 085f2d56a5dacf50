"""The view gate: its decisions on known distances, duplicates, and the graph that computes the
distances (the shipped model's, and a refit of it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from authentiq.contract.model_spec import VIEW_FEATURES, VIEW_SCORES, GateParams, read_spec
from authentiq.errors import ModelContractError
from authentiq.modelling import datasets
from authentiq.modelling.synthetic import VIEWS, make_item
from authentiq.modelling.training.gate import ViewStats, fit_gate, fit_stats, layer_shapes, with_features
from authentiq.pipeline.stitch import build_input
from authentiq.pipeline.view_gate import assess, check_views, duplicates
from authentiq.settings import DEFAULT_MODEL
from tests.conftest import tiny_spec

pytestmark = pytest.mark.db_independent  # the PostgreSQL pass leaves it out

SPEC = read_spec(DEFAULT_MODEL)
GATE = GateParams(thresholds=dict.fromkeys(VIEWS, 10.0), single_photo_thresholds=dict.fromkeys(VIEWS, 20.0),
                  quantile=0.998)


def scores(own: dict[str, float], default: float = 100.0) -> np.ndarray:
    """[cells, views]: each view's photo at ``own[view]`` from its own view, far from others."""
    s = np.full((6, 6), default)
    for k, v in enumerate(VIEWS):
        s[k, k] = own.get(v, 5.0)
    return s


def test_in_distribution_photos_pass() -> None:
    checks = check_views(SPEC, GATE, scores({}), set(VIEWS))
    assert all(c.finding is None and c.looks_like == c.view and c.distance == 0.5
               for c in checks.values())


def test_far_from_every_view_is_not_a_product() -> None:
    c = check_views(SPEC, GATE, scores({"logo": 50.0}), set(VIEWS))["logo"]
    assert c.finding == "not_a_product" and c.distance == 5.0
    assert c.message and c.message.startswith("This photo does not look like the logo")


def test_like_another_view_is_a_wrong_view() -> None:
    s = scores({"label": 30.0})
    s[4, 1] = 8.0  # the label slot's photo is close to the logo distribution
    c = check_views(SPEC, GATE, s, set(VIEWS))["label"]
    assert (c.finding, c.other, c.looks_like) == ("wrong_view", "logo", "logo")
    assert "looks like the logo view, not the label" in str(c.message)
    s = scores({"label": 9.0})
    s[4, 1] = 2.0  # fits its slot, but another view far better (ratio 0.9 > 1.5 x 0.2)
    assert check_views(SPEC, GATE, s, set(VIEWS))["label"].finding == "wrong_view"


ALTERING = GATE.model_copy(update={
    "alteration_thresholds": dict.fromkeys(VIEWS, (1.0, 2.0)),
    "single_photo_alteration_thresholds": dict.fromkeys(VIEWS, (3.0, 4.0))})


def altered(orientation: dict[str, float], degradation: dict[str, float]) -> np.ndarray:
    """[cells, views + 2]: in-distribution distances, then each cell's alteration logits."""
    s = np.concatenate([scores({}), np.zeros((6, 2))], axis=1)
    for k, v in enumerate(VIEWS):
        s[k, 6:] = orientation.get(v, 0.0), degradation.get(v, 0.0)
    return s


def test_alteration_logits_over_their_thresholds_are_findings() -> None:
    s = altered({"label": 1.5, "logo": 5.0}, {"logo": 4.0, "hardware": 2.5})
    checks = check_views(SPEC, ALTERING, s, set(VIEWS))
    assert checks["label"].finding == "misoriented_view"
    assert checks["logo"].finding == "misoriented_view"  # 4.0 over its threshold beats 2.0
    assert checks["hardware"].finding == "degraded_view"
    assert {checks[v].finding for v in ("overall", "stitching", "interior")} == {None}
    assert "mirrored, upside down or turned" in str(checks["label"].message)
    assert "compressed, enlarged from a small image or stretched" in str(checks["hardware"].message)
    alone = check_views(SPEC, ALTERING, s, {"label", "hardware"}, single=True)
    assert {v: c.finding for v, c in alone.items()} == {"label": None, "hardware": None}
    # not_a_product and wrong_view are stronger statements than an alteration
    s[4, 4] = 50.0
    assert check_views(SPEC, ALTERING, s, set(VIEWS))["label"].finding == "not_a_product"
    # a model without the head ignores no columns it does not have
    assert check_views(SPEC, GATE, s[:, :6], set(VIEWS))["label"].finding == "not_a_product"


def test_single_photo_thresholds_apply_alone() -> None:
    s = scores({"overall": 15.0})
    assert check_views(SPEC, GATE, s, {"overall"})["overall"].finding == "not_a_product"
    assert check_views(SPEC, GATE, s, {"overall"}, single=True)["overall"].finding is None


def test_duplicates_same_photo_not_different_views() -> None:
    item = make_item(910_001_000, counterfeit=False)
    from authentiq.pipeline.preprocess import decode_view

    tiles = {v: decode_view(d, tile_size=128).tile for v, d in item.views.items()}
    assert duplicates(SPEC, GATE, tiles) == {}
    tiles["interior"] = tiles["logo"].copy()
    assert duplicates(SPEC, GATE, tiles) == {"interior": "logo"}
    grey = np.full((128, 128, 3), 128, np.uint8)
    assert duplicates(SPEC, GATE, {"overall": grey, "logo": grey + 1}) == {"logo": "overall"}
    found = assess(SPEC.model_copy(update={"gate": GATE}), scores({}), tiles)
    assert found is not None and found["interior"].finding == "duplicate_view"
    assert assess(SPEC.model_copy(update={"gate": None}), scores({}), tiles) is None


def test_shipped_model_scores_match_the_fitted_formula() -> None:
    """The graph's view_scores are the Mahalanobis distances ViewStats computes in numpy."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(DEFAULT_MODEL))
    init = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer
            if i.name.startswith("view_gate/")}
    stats = ViewStats(init["view_gate/mean"], init["view_gate/basis"], 1 / init["view_gate/inv_var"],
                      1 / init["view_gate/inv_residual"])
    item = make_item(910_001_100, counterfeit=False)
    from authentiq.pipeline.preprocess import decode_view

    x = build_input(SPEC, {v: decode_view(d, tile_size=128).tile for v, d in item.views.items()})[None]
    session = ort.InferenceSession(str(DEFAULT_MODEL), providers=["CPUExecutionProvider"])
    features, graph_scores = session.run([VIEW_FEATURES, VIEW_SCORES], {"views": x})
    assert graph_scores.shape == (1, 6, 8)  # distances to the six views, two alteration logits
    assert np.allclose(graph_scores[..., :6], stats.scores(features), rtol=1e-3)
    assert SPEC.gate is not None and SPEC.gate.alteration_thresholds is not None
    ratios = np.diag(graph_scores[0]) / np.asarray([SPEC.gate.thresholds[v] for v in VIEWS])
    assert (ratios < 1).all(), "a genuine item's photos are in distribution"
    checks = check_views(SPEC, SPEC.gate, graph_scores[0], set(VIEWS))
    assert {c.finding for c in checks.values()} == {None}, "nor altered"


def test_fit_stats_recovers_a_gaussian() -> None:
    rng = np.random.default_rng(0)
    features = rng.gamma(2.0, 1.0, (600, 2, 20)) ** 2  # √features ~ gamma
    stats = fit_stats(features, components=8)
    inside = stats.scores(features[:, 0])[:, 0]
    outside = stats.scores(features[:, 0] * 9)[:, 0]
    assert 10 < inside.mean() < 30  # ≈ the dimension (20), as a Mahalanobis distance should be
    assert np.median(outside) > 3 * np.quantile(inside, 0.99)


def test_gate_needs_the_default_architecture(tiny_model: Path) -> None:
    with pytest.raises(ModelContractError, match="block outputs"):
        layer_shapes(tiny_model)
    assert tiny_spec().gate is None


@pytest.mark.slow
@pytest.mark.train
def test_fit_gate_writes_a_working_gate(tmp_path: Path) -> None:
    """A refit on a few items replaces the shipped gate in a copy (idempotent graph surgery),
    alteration head included."""
    pytest.importorskip("torch")
    model = tmp_path / "m.onnx"
    shutil.copy(DEFAULT_MODEL, model)
    params = fit_gate([model], items=160, single_items=40, cache=tmp_path / "items.npz",
                      alteration_items=24, epochs=1)
    spec = read_spec(model)
    assert spec.gate == params and set(params.thresholds) == set(VIEWS)
    assert all(params.single_photo_thresholds[v] >= params.thresholds[v] for v in VIEWS)
    assert params.alteration_thresholds and params.single_photo_alteration_thresholds
    assert all(params.single_photo_alteration_thresholds[v][k] >= params.alteration_thresholds[v][k]
               for v in VIEWS for k in range(2))
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    outputs = [o.name for o in session.get_outputs()]
    assert outputs.count(VIEW_SCORES) == 1 and outputs.count(VIEW_FEATURES) == 1
    # the per-view check was built on the old features: removed, to be fitted again
    assert spec.view_check is None and "view_descriptors" not in outputs
    ts = datasets.TileSet.load(tmp_path / "items.npz")
    noise = np.random.default_rng(1).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    x = np.stack([build_input(spec, {v: ts.tiles[0, k] for k, v in enumerate(VIEWS)}),
                  build_input(spec, dict.fromkeys(VIEWS, noise))])
    s = session.run([VIEW_SCORES], {"views": x})[0]
    assert s.shape == (2, 6, 8)
    limits = np.asarray([params.thresholds[v] for v in VIEWS])
    assert (np.diag(s[1]) / limits > 1).all(), "noise is out of distribution in every slot"
    assert len(with_features(model)) > 0


def test_alteration_examples_come_from_a_folders_photos(small_dataset: Path, tmp_path: Path) -> None:
    """`train --data` teaches the alteration head with the folder's own photos: each item as
    taken (kind 0 in every view) and three mosaics of altered views; an item without every view
    is left out, and a folder where none has them is a readable error."""
    from authentiq.modelling.training import alterations

    layer = alterations.with_layer(DEFAULT_MODEL)
    items = datasets.folder_items(small_dataset)[:3]
    partial = tmp_path / "partial"
    shutil.copytree(items[0].folder, partial)
    next(partial.glob("label.*")).unlink()
    maps, kinds = alterations.training_maps(layer, SPEC, [it.folder for it in items] + [partial],
                                            mosaics=3)
    assert maps.shape[0] == kinds.shape[0] == 3 * 4 and kinds.shape[1] == len(VIEWS)
    assert (kinds[::4] == 0).all()  # each item's first mosaic: as taken
    altered = np.delete(kinds, np.s_[::4], axis=0)
    assert altered.min() >= 1 and altered.max() <= len(alterations.ALTERATIONS)
    taken = alterations.layer_maps(ort.InferenceSession(layer), build_input(SPEC, {
        v: datasets.folder_tiles(items[:1], VIEWS, SPEC.tile_size, ()).tiles[0, k]
        for k, v in enumerate(VIEWS)})[None])
    np.testing.assert_array_equal(maps[0], taken[0])  # the folder's photo, decoded as served
    with pytest.raises(ModelContractError, match="needs items with every view"):
        alterations.training_maps(layer, SPEC, [partial])
