"""The training loop behind ``authentiq train``: data → network → checkpoint → ONNX."""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from authentiq.contract.model_spec import ModelSpec, Thresholds, ViewSpec, softmax_fake
from authentiq.errors import DatasetError
from authentiq.modelling import datasets, splits
from authentiq.modelling.evaluation import choose_band, evaluate, roc_auc
from authentiq.modelling.progress import SILENT, Progress
from authentiq.modelling.synthetic.catalog import CATALOG, VIEWS
from authentiq.modelling.training import epochs, require_torch

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    data: str = "synthetic"  # "synthetic" or a folder in the documented layout
    train_items: int = 12000  # synthetic only
    val_items: int = 1500  # synthetic only
    val_share: float = 0.15  # folder only
    test_share: float = 0.15  # folder only
    by_product: bool = False  # folder only: split whole products (authentiq.modelling.splits)
    views: tuple[str, ...] = VIEWS
    optional_views: tuple[str, ...] = ("interior",)
    grid: tuple[int, int] = (2, 3)
    tile_size: int = 128
    width: int = 32
    embedding_size: int = 128
    epochs: int = 160
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.05
    drop_optional: float = 0.15  # share of training items whose optional views are blanked
    recombine: float = 0.5  # chance that a genuine view is swapped for another genuine item's
    shift: int = 6  # per-tile random translation in pixels (augmentation)
    seed: int = 0
    device: str = "auto"
    workers: int | None = None
    model_name: str = "authentiq-default"
    model_version: str = "0.1.0"
    data_card: str = field(default="")
    cache: str | None = None  # folder keeping decoded tiles between runs (synthetic only)


def _spec(cfg: TrainConfig, mean: np.ndarray, std: np.ndarray, thresholds: Thresholds,
          products: tuple[tuple[str, str], ...]) -> ModelSpec:
    synthetic = cfg.data == "synthetic"
    card = cfg.data_card or (
        "Procedurally generated photos of fictional brands (authentiq.modelling.synthetic); a demonstration "
        "model, not fit to authenticate real goods." if synthetic else f"Photos from {cfg.data}")
    return ModelSpec(
        views=tuple(ViewSpec(name=v, required=v not in cfg.optional_views) for v in cfg.views),
        grid=cfg.grid, tile_size=cfg.tile_size,
        mean=tuple(float(x) for x in mean), std=tuple(float(x) for x in std),  # type: ignore[arg-type]
        classes=("authentic", "counterfeit"), embedding_size=cfg.embedding_size,
        model_name=cfg.model_name, model_version=cfg.model_version, precision="fp32",
        thresholds=thresholds,
        products=products,
        data_card=card,
    )


@dataclass
class TrainingData:
    train: datasets.TileSet
    val: datasets.TileSet
    products: tuple[tuple[str, str], ...]  # what the model will declare
    splits: dict[str, Any] | None  # the folder's split as recorded (splits.json); None: synthetic


def load_data(cfg: TrainConfig) -> TrainingData:
    """Training and validation items; a folder's test items are split off and left undecoded."""
    if cfg.data == "synthetic":
        base = cfg.seed * 100_000
        train = _cached(cfg, "train", range(datasets.TRAIN_SEED_BASE + base,
                                            datasets.TRAIN_SEED_BASE + base + cfg.train_items))
        val = _cached(cfg, "val", range(datasets.VAL_SEED_BASE + base,
                                        datasets.VAL_SEED_BASE + base + cfg.val_items))
        return TrainingData(train, val, tuple((s.brand, s.model) for s in CATALOG), None)
    root = Path(cfg.data)
    items = datasets.folder_items(root)
    plan = splits.SplitPlan(cfg.val_share, cfg.test_share, cfg.seed, cfg.by_product)
    split, errors, _ = splits.splits_for(root, items, plan)
    datasets.refuse(errors or splits.problems(items, split), root, "its split")
    kept = [it for it in items if split.assignment[it.name] != "test"]
    required = [v for v in cfg.views if v not in cfg.optional_views]
    tiles = datasets.folder_tiles(kept, cfg.views, cfg.tile_size, required, cfg.workers)
    names = split.of(kept)
    return TrainingData(tiles.subset(np.flatnonzero(names == "train")),
                        tiles.subset(np.flatnonzero(names == "val")),
                        datasets.folder_products(items), split.as_dict(items))


def _cached(cfg: TrainConfig, part: str, seeds: range) -> datasets.TileSet:
    path = None
    if cfg.cache:
        path = Path(cfg.cache) / f"{part}-{seeds.start}-{seeds.stop}-{cfg.tile_size}.npz"
        if path.is_file():
            return datasets.TileSet.load(path)
    tiles = datasets.synthetic_tiles(seeds, cfg.views, cfg.tile_size, cfg.workers)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tiles.save(path)
    return tiles


class Mosaic:
    """uint8 tiles [B, V, T, T, 3] on the device → normalised mosaics [B, 3, H, W] (torch)."""

    def __init__(self, spec: ModelSpec, device: Any) -> None:
        torch = require_torch()
        self.torch = torch
        self.rows, self.cols = spec.grid
        self.mean = torch.tensor(spec.mean, device=device).view(1, 3, 1, 1, 1, 1) * 255
        self.std = torch.tensor(spec.std, device=device).view(1, 3, 1, 1, 1, 1) * 255

    def __call__(self, tiles: Any, present: Any) -> Any:
        b, v, t, _, _ = tiles.shape
        cells = self.rows * self.cols
        if v < cells:
            tiles = self.torch.cat([tiles, tiles.new_zeros((b, cells - v, t, t, 3))], dim=1)
            present = self.torch.cat([present, present.new_zeros((b, cells - v))], dim=1)
        x = tiles.view(b, self.rows, self.cols, t, t, 3).permute(0, 5, 1, 3, 2, 4).float()
        x = (x.reshape(b, 3, self.rows, t, self.cols, t) - self.mean) / self.std
        mask = present.view(b, 1, self.rows, 1, self.cols, 1).to(x.dtype)
        return (x * mask).reshape(b, 3, self.rows * t, self.cols * t)


class Recombiner:
    """Swap known-genuine views for the same view of another genuine item of the same product.

    The label is unchanged (a counterfeit keeps its defective views), so every epoch shows new
    combinations: the network cannot memorise items and must judge each view on its own cues.
    """

    def __init__(self, ts: datasets.TileSet, device: Any) -> None:
        torch = require_torch()
        self.torch = torch
        n_groups = int(ts.groups.max()) + 1 if len(ts) else 0
        donors = [np.flatnonzero((ts.groups == g) & (ts.labels == 0)) for g in range(n_groups)]
        width = max((len(d) for d in donors), default=0)
        table = np.zeros((n_groups, max(width, 1)), dtype=np.int64)
        for g, d in enumerate(donors):
            table[g, :len(d)] = d
        self.table = torch.from_numpy(table).to(device)
        self.counts = torch.tensor([len(d) for d in donors], device=device)
        self.groups = torch.from_numpy(ts.groups).to(device)
        self.clean = torch.from_numpy(ts.clean & ts.present).to(device)

    def __call__(self, tiles: Any, idx: Any, rate: float) -> Any:
        batch = tiles[idx]
        if rate <= 0 or self.table.numel() == 0:
            return batch
        torch = self.torch
        b, v = batch.shape[:2]
        g = self.groups[idx]
        counts = self.counts[g].unsqueeze(1).expand(b, v)
        pick = (torch.rand(b, v, device=batch.device) * counts).long().clamp(max=self.table.shape[1] - 1)
        donor = self.table[g.unsqueeze(1).expand(b, v), pick]
        swap = self.clean[idx] & (torch.rand(b, v, device=batch.device) < rate) & (counts > 0)
        donor_ok = self.clean[donor, torch.arange(v, device=batch.device).expand(b, v)]
        swap &= donor_ok
        views = torch.arange(v, device=batch.device).expand(b, v)
        swapped = tiles[donor, views]
        return torch.where(swap[:, :, None, None, None], swapped, batch)


def augment(tiles: Any, shift: int) -> Any:
    """Label-preserving photo jitter per tile: translation, brightness/contrast, sensor noise.

    Hue is left alone on purpose: colour is a genuine cue (``colour_shift`` and ``lining``).
    """
    torch = require_torch()
    b, v, t = tiles.shape[:3]
    dev = tiles.device
    x = tiles.float()
    if shift > 0:
        off = torch.randint(-shift, shift + 1, (2, b, v, 1), device=dev)
        base = torch.arange(t, device=dev).view(1, 1, t)
        rows = (base + off[0]).clamp(0, t - 1).view(b, v, t, 1)
        cols = (base + off[1]).clamp(0, t - 1).view(b, v, 1, t)
        bi = torch.arange(b, device=dev).view(b, 1, 1, 1)
        vi = torch.arange(v, device=dev).view(1, v, 1, 1)
        x = x[bi, vi, rows, cols]
    mean = x.mean(dim=(2, 3, 4), keepdim=True)
    contrast = torch.empty(b, v, 1, 1, 1, device=dev).uniform_(0.9, 1.1)
    bright = torch.empty(b, v, 1, 1, 1, device=dev).uniform_(0.92, 1.08)
    x = (x - mean) * contrast + mean * bright
    x = x + torch.randn_like(x) * 2.0
    return x.clamp(0, 255)


def per_defect(ts: datasets.TileSet, p_fake: np.ndarray) -> dict[str, float]:
    """Recall per defect kind (items containing it) and specificity on authentic items."""
    hits: dict[str, list[bool]] = {"authentic": []}
    for note, label, p in zip(ts.notes, ts.labels, p_fake, strict=True):
        if label == 0:
            hits["authentic"].append(bool(p < 0.5))
        for d in note.split(";") if label == 1 and note else []:
            hits.setdefault(d, []).append(bool(p >= 0.5))
    return {k: round(float(np.mean(v)), 4) for k, v in sorted(hits.items()) if v}


def train(cfg: TrainConfig, out_dir: Path, progress: Progress = SILENT,
          data: TrainingData | None = None) -> dict[str, Any]:
    """Train, choose the inconclusive band on validation items, save checkpoint + log.

    After every epoch the model, optimiser, schedule and random states go to
    ``out_dir/last_epoch.pt`` with the configuration's fingerprint; a later call with the same
    configuration resumes from there (``progress`` says so). ``data``: already loaded items."""
    torch = require_torch()
    from authentiq.modelling.training.net import AuthentiqNet

    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu")
                          if cfg.device == "auto" else cfg.device)
    t0 = time.perf_counter()
    if data is None:
        data = load_data(cfg)
    train_set, val_set = data.train, data.val
    t_data = time.perf_counter() - t0
    log.info("data: %d train / %d val items in %.1f s", len(train_set), len(val_set), t_data)
    if not len(train_set) or not len(val_set):  # refused here, not after the first epoch
        raise DatasetError(f"nothing to {'train' if not len(train_set) else 'validate'} on: "
                           f"{len(train_set)} training and {len(val_set)} validation items")
    if data.splits is not None:
        (out_dir / splits.SPLITS_FILE).write_text(json.dumps(data.splits, indent=1,
                                                             ensure_ascii=False) + "\n")
    pixels = train_set.tiles[train_set.present].reshape(-1, 3)[:: 97].astype(np.float64) / 255
    mean, std = pixels.mean(axis=0), pixels.std(axis=0)
    spec = _spec(cfg, mean, std, Thresholds(), data.products)
    mosaic = Mosaic(spec, device)
    model = AuthentiqNet(cfg.width, cfg.embedding_size).to(device)
    # channels_last speeds up GPU convolutions; on some CPUs (AMD EPYC, torch 2.13 CPU build) its
    # backward pass aborts with heap corruption, so the CPU keeps the default layout.
    layout = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    model = model.to(memory_format=layout)  # type: ignore[call-overload]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train_set) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.epochs * steps_per_epoch,
                                                pct_start=0.15)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    tiles = torch.from_numpy(train_set.tiles).to(device)
    present = torch.from_numpy(train_set.present).to(device)
    labels = torch.from_numpy(train_set.labels).to(device)
    optional_idx = [cfg.views.index(v) for v in cfg.optional_views if v in cfg.views]
    recombiner = Recombiner(train_set, device)
    use_amp = device.type == "cuda"
    history: list[dict[str, float]] = []
    last_epoch = out_dir / epochs.EPOCH_CHECKPOINT
    fingerprint = epochs.fingerprint(_jsonable(asdict(cfg)), train_set, val_set)
    first = epochs.resume(last_epoch, fingerprint, model, opt, sched, rng, history, progress,
                          cfg.epochs)
    with progress.task("training", cfg.epochs, "epoch") as bar:
        bar.advance(first)
        for epoch in range(first, cfg.epochs):
            model.train()
            order = torch.from_numpy(rng.permutation(len(train_set))).to(device)
            total, n = 0.0, 0
            for start in range(0, len(order), cfg.batch_size):
                idx = order[start:start + cfg.batch_size]
                pres = present[idx].clone()
                if optional_idx and cfg.drop_optional > 0:
                    drop = torch.rand(len(idx), device=device) < cfg.drop_optional
                    for i in optional_idx:
                        pres[drop, i] = False
                batch_tiles = augment(recombiner(tiles, idx, cfg.recombine), cfg.shift)
                x = mosaic(batch_tiles, pres).contiguous(memory_format=layout)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                    logits, _, _ = model(x)
                    loss = loss_fn(logits.float(), labels[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach()) * len(idx)
                n += len(idx)
            p_val = predict(model, mosaic, val_set, device, cfg.batch_size)
            acc = float(((p_val >= 0.5) == val_set.labels.astype(bool)).mean())
            auc = roc_auc(val_set.labels, p_val)
            history.append({"epoch": epoch + 1, "loss": total / n, "val_accuracy": acc,
                            "val_auc": auc, "seconds": time.perf_counter() - t0})
            log.info("epoch %d/%d loss %.4f val acc %.4f", epoch + 1, cfg.epochs, total / n, acc)
            epochs.save(last_epoch, fingerprint, epoch + 1, model, opt, sched, rng, history)
            progress.note(f"  epoch {epoch + 1}/{cfg.epochs}: loss {total / n:.4f}, validation "
                          f"accuracy {acc:.2%}, AUC {auc:.4f}")
            bar.advance(1, loss=total / n, val_acc=acc)
    p_val = predict(model, mosaic, val_set, device, cfg.batch_size)
    lo, hi = choose_band(val_set.labels, p_val)
    spec = _spec(cfg, mean, std, Thresholds(authentic_below=lo, counterfeit_above=hi),
                 data.products)
    val_metrics = evaluate(val_set.labels, p_val, lo, hi)
    summary = {"config": _jsonable(asdict(cfg)), "history": history,
               "validation": val_metrics.as_dict(), "data_seconds": t_data,
               "validation_per_defect": per_defect(val_set, p_val),
               "train_seconds": time.perf_counter() - t0 - t_data, "device": str(device),
               "products": [list(p) for p in data.products],
               "splits": None if data.splits is None else
               {k: data.splits[k] for k in ("source", "plan", "counts")},
               "torch": torch.__version__}
    model_cpu = model.to("cpu").float()
    torch.save({"state_dict": model_cpu.state_dict(), "spec": spec.to_props(),
                "width": cfg.width, "embedding_size": cfg.embedding_size, "summary": summary},
               out_dir / "checkpoint.pt")
    (out_dir / "train_log.json").write_text(json.dumps(summary, indent=2))
    return summary


def predict(model: Any, mosaic: Mosaic, ts: datasets.TileSet, device: Any, batch: int) -> np.ndarray:
    torch = require_torch()
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(ts), batch):
            t = torch.from_numpy(ts.tiles[start:start + batch]).to(device)
            p = torch.from_numpy(ts.present[start:start + batch]).to(device)
            logits, _, _ = model(mosaic(t, p).contiguous(memory_format=torch.channels_last))
            out.append(logits.float().cpu().numpy())
    return softmax_fake(np.concatenate(out))


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
