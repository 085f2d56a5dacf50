"""Training for real on a tiny configuration: data → network → ONNX that the service serves."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch", reason="needs the [train] extra")

from authentiq.contract.model_spec import read_spec  # noqa: E402
from authentiq.errors import DatasetError  # noqa: E402
from authentiq.inference.backends.onnxruntime import OnnxRuntimeBackend  # noqa: E402
from authentiq.modelling import datasets  # noqa: E402
from authentiq.modelling.synthetic import write_dataset  # noqa: E402
from authentiq.modelling.training.export import export_onnx, load_checkpoint  # noqa: E402
from authentiq.modelling.training.train import Mosaic, Recombiner, TrainConfig, train  # noqa: E402
from authentiq.pipeline.stitch import build_input  # noqa: E402
from tests.conftest import copy_dataset, tiny_spec  # noqa: E402

pytestmark = [pytest.mark.train, pytest.mark.db_independent]


def test_torch_mosaic_matches_the_server_stitching() -> None:
    spec = tiny_spec(grid=(2, 2), views=[{"name": n} for n in ("a", "b", "c")])
    rng = np.random.default_rng(0)
    tiles = rng.integers(0, 255, (2, 3, 32, 32, 3), dtype=np.uint8)
    present = np.array([[True, False, True], [True, True, True]])
    got = Mosaic(spec, "cpu")(torch.from_numpy(tiles), torch.from_numpy(present)).numpy()
    for i in range(2):
        want = build_input(spec, {v: tiles[i, k] if present[i, k] else None
                                  for k, v in enumerate(("a", "b", "c"))})
        np.testing.assert_allclose(got[i], want, atol=1e-5)


def test_recombiner_only_swaps_clean_views_within_a_product() -> None:
    n, v = 6, 2
    tiles = np.arange(n * v, dtype=np.uint8).reshape(n, v, 1, 1, 1).repeat(4, 2).repeat(4, 3).repeat(3, 4)
    ts = datasets.TileSet(tiles, np.ones((n, v), bool), np.array([0, 0, 0, 1, 1, 1]),
                          [str(i) for i in range(n)], ("a", "b"), [""] * n,
                          np.array([0, 0, 1, 0, 1, 1]), np.array([[1, 1]] * 3 + [[0, 1]] * 3, bool))
    rec = Recombiner(ts, "cpu")
    out = rec(torch.from_numpy(tiles), torch.arange(n), rate=1.0).numpy()[:, :, 0, 0, 0]
    donors = {0: {0, 1}, 1: {2}}  # genuine items per product
    for i in range(n):
        for k in range(v):
            src = int(out[i, k]) // v
            if not ts.clean[i, k]:
                assert src == i, "a defective view was replaced"
            else:
                assert src in donors[int(ts.groups[i])] | {i}


def test_folder_dataset_and_errors(tmp_path: Path) -> None:
    write_dataset(tmp_path / "d", range(4), short_side=256)
    items = datasets.folder_items(tmp_path / "d")
    ts = datasets.folder_tiles(items, ("overall", "logo"), 32, required=("overall",), workers=1)
    assert ts.tiles.shape == (4, 2, 32, 32, 3) and ts.present.all()
    with pytest.raises(DatasetError, match="no items found"):
        datasets.folder_items(tmp_path)
    with pytest.raises(DatasetError, match="required view 'sole'"):
        datasets.folder_tiles(items, ("overall", "sole"), 32, required=("sole",), workers=1)
    Image.new("RGB", (40, 30)).save(tmp_path / "d" / "item-0000001" / "logo.jpg")
    with pytest.raises(DatasetError, match=r"item-0000001/logo.jpg: 40×30 px, smaller than the "
                                           r"model's 32 px tiles"):
        datasets.folder_tiles(items, ("overall", "logo"), 32, required=(), workers=1)
    (tmp_path / "d" / "labels.csv").write_text("item;class\nitem-0000000;genuine\nitem-0000001;fake\n"
                                               "nowhere;fake\nitem-0000002;unsure\n")
    assert [(it.name, it.label) for it in datasets.scan_items(tmp_path / "d").items] == \
        [("item-0000000", 0), ("item-0000001", 1)]
    with pytest.raises(DatasetError, match=r"the dataset has 2 problem\(s\):\n  labels.csv:4: no "
                                           r"folder nowhere/.*\n  labels.csv:5: label 'unsure'.*"
                                           r"\nrun `authentiq dataset check "):
        datasets.folder_items(tmp_path / "d")


def test_a_folder_too_small_for_its_split_is_refused_before_training(small_dataset: Path,
                                                                    tmp_path: Path) -> None:
    folder = copy_dataset(small_dataset, tmp_path / "photos")
    with (folder / "labels.csv").open() as fh:
        lines = fh.read().splitlines()
    keep = [line for line in lines if ",counterfeit," not in line] + \
        [line for line in lines if ",counterfeit," in line][:2]
    (folder / "labels.csv").write_text("\n".join(keep) + "\n")
    cfg = TrainConfig(data=str(folder), epochs=1, batch_size=8, width=8, workers=1)
    with pytest.raises(DatasetError, match=r"its split has 1 problem\(s\):\n  the validation and "
                                           r"test splits have no counterfeit item"):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


@pytest.mark.slow
def test_a_small_folder_trains_records_its_split_and_declares_its_products(
        small_dataset: Path, tmp_path: Path) -> None:
    """12 items: the hash alone left validation empty (training crashed after epoch 1); the split
    now holds both classes everywhere, is written beside the model, and the model names the
    dataset's products (so `enroll` accepts them)."""
    cfg = TrainConfig(data=str(small_dataset), epochs=1, batch_size=8, width=8, workers=1)
    summary = train(cfg, tmp_path / "run")
    recorded = json.loads((tmp_path / "run" / "splits.json").read_text())
    counts = recorded["counts"]
    assert all(counts[s]["authentic"] and counts[s]["counterfeit"] for s in ("train", "val", "test"))
    assert summary["validation"]["items"] == sum(counts["val"].values())
    assert summary["splits"]["counts"] == counts and recorded["plan"]["seed"] == 0
    assert len(recorded["items"]) == 12
    model, spec, _ = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    with (small_dataset / "labels.csv").open() as fh:
        products = {(r["brand"], r["model"]) for r in csv.DictReader(fh)}
    assert set(spec.products) == products and len(products) == 6
    path = export_onnx(model, spec, tmp_path / "run" / "model.onnx")
    assert set(read_spec(path).products) == products


@pytest.mark.slow
def test_tiny_training_run_exports_a_servable_model(tmp_path: Path) -> None:
    cfg = TrainConfig(train_items=24, val_items=8, epochs=1, batch_size=8, width=8, workers=2)
    summary = train(cfg, tmp_path / "run")
    assert len(summary["history"]) == 1 and summary["validation"]["items"] == 8
    model, spec, _ = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    path = export_onnx(model, spec, tmp_path / "run" / "model.onnx")
    assert read_spec(path).view_names == cfg.views
    backend = OnnxRuntimeBackend(path)
    h, w = backend.spec.input_hw
    out = backend.run(np.zeros((3, 3, h, w), np.float32))
    assert out.logits.shape == (3, 2) and out.cam.shape == (3, 2, h // 16, w // 16)
    np.testing.assert_allclose(np.linalg.norm(out.embedding, axis=1), 1.0, atol=1e-5)
    # the exported graph computes the same logits as PyTorch
    x = np.random.default_rng(0).normal(0, 1, (2, 3, h, w)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(backend.run(x).logits, ref, atol=1e-4)
