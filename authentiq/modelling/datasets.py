"""Items as tiles, from the synthetic generator or from a folder of real photos.

Folder layout for real photos (documented in README, "Train on your own photos")::

    root/labels.csv                 item,label[,brand,model]   label: authentic | counterfeit
    root/<item>/<view>.jpg          one file per view (jpg, jpeg, png, webp); missing optional
                                    views are allowed
or, without a CSV, the label taken from the path::

    root/authentic/<item>/<view>.jpg
    root/counterfeit/<item>/<view>.jpg

Every photo goes through :func:`authentiq.pipeline.preprocess.decode_view`, the server's own path.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from authentiq.contract.layout import view_files
from authentiq.errors import AuthentiqError, DatasetError
from authentiq.pipeline.preprocess import decode_view

J = TypeVar("J")
R = TypeVar("R")
LABELS = ("authentic", "counterfeit")
# Synthetic seed ranges. Held-out evaluation items come from a range training never touches.
TRAIN_SEED_BASE = 10_000_000
VAL_SEED_BASE = 20_000_000
CALIBRATION_SEED_BASE = 30_000_000
REFERENCE_SEED_BASE = 40_000_000  # genuine reference items (shipped set, fusion evaluation)
EMBEDDING_SEED_BASE = 50_000_000  # fitting the embedding head (backbone never saw these)
FUSION_SEED_BASE = 60_000_000  # choosing the fused verdict's thresholds
TRUST_SEED_BASE = 70_000_000  # fitting the view gate and the confidence temperature
VIEW_CHECK_SEED_BASE = 90_000_000  # genuine items fitting the per-view reference check's floors
HELD_OUT_SEED_BASE = 900_000_000


@dataclass
class TileSet:
    tiles: np.ndarray  # uint8 [N, V, T, T, 3]
    present: np.ndarray  # bool [N, V]
    labels: np.ndarray  # int64 [N], 1 = counterfeit
    items: list[str]
    views: tuple[str, ...]
    notes: list[str]  # defects (synthetic) or brand/model
    groups: np.ndarray  # int64 [N], product (brand/model) index
    clean: np.ndarray  # bool [N, V], view known to be genuine (all of an authentic item's)

    def __len__(self) -> int:
        return len(self.items)

    def tiles_of(self, i: int, views: Sequence[str] | None = None) -> dict[str, np.ndarray | None]:
        """Item ``i``'s tiles by view (None where absent), as the stitcher takes them; ``views``
        keeps only those (the others are left out, i.e. blank)."""
        keep = set(self.views if views is None else views)
        return {v: self.tiles[i, k] if self.present[i, k] else None
                for k, v in enumerate(self.views) if v in keep}

    def subset(self, idx: np.ndarray) -> TileSet:
        return TileSet(self.tiles[idx], self.present[idx], self.labels[idx],
                       [self.items[i] for i in idx], self.views, [self.notes[i] for i in idx],
                       self.groups[idx], self.clean[idx])

    def save(self, path: Path) -> None:
        np.savez(path, tiles=self.tiles, present=self.present, labels=self.labels,
                 items=np.asarray(self.items), views=np.asarray(self.views),
                 notes=np.asarray(self.notes), groups=self.groups, clean=self.clean)

    @classmethod
    def load(cls, path: Path) -> TileSet:
        with np.load(path) as z:
            return cls(z["tiles"], z["present"], z["labels"], z["items"].tolist(),
                       tuple(z["views"].tolist()), z["notes"].tolist(), z["groups"], z["clean"])


def _synthetic_item(args: tuple[int, tuple[str, ...], int, bool | None]
                    ) -> tuple[np.ndarray, int, str, int, np.ndarray]:
    from authentiq.modelling.synthetic import CATALOG, find_spec, make_item

    seed, views, tile_size, counterfeit = args
    item = make_item(seed, views=views, counterfeit=counterfeit)
    tiles = np.stack([decode_view(item.views[v], tile_size=tile_size).tile for v in views])
    group = CATALOG.index(find_spec(item.brand, item.model))
    clean = np.asarray([v not in item.defect_views for v in views])
    return tiles, int(item.label == "counterfeit"), ";".join(item.defects), group, clean


def synthetic_tiles(seeds: Sequence[int], views: tuple[str, ...], tile_size: int,
                    workers: int | None = None, counterfeit: bool | None = None) -> TileSet:
    """Synthetic items as tiles; ``counterfeit=False`` makes every item genuine (references)."""
    jobs = [(s, views, tile_size, counterfeit) for s in seeds]
    results = _map(_synthetic_item, jobs, workers)
    return TileSet(
        tiles=np.stack([r[0] for r in results]),
        present=np.ones((len(seeds), len(views)), dtype=bool),
        labels=np.asarray([r[1] for r in results], dtype=np.int64),
        items=[f"synthetic-{s}" for s in seeds],
        views=views,
        notes=[r[2] for r in results],
        groups=np.asarray([r[3] for r in results], dtype=np.int64),
        clean=np.stack([r[4] for r in results]),
    )


def synthetic_cached(first_seed: int, items: int, views: tuple[str, ...], tile_size: int,
                     cache: Path | None, counterfeit: bool | None = None) -> TileSet:
    """``items`` synthetic items from ``first_seed``, kept in ``cache`` (an .npz) when given;
    ``counterfeit=False``: genuine items only."""
    if cache is not None and cache.is_file():
        ts = TileSet.load(cache)
        if len(ts) >= items and ts.views == views and ts.tiles.shape[2] == tile_size and (
                counterfeit is None or bool(ts.labels.any()) == counterfeit):
            return ts.subset(np.arange(items))
    ts = synthetic_tiles(range(first_seed, first_seed + items), views, tile_size,
                         counterfeit=counterfeit)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        ts.save(cache)
    return ts



def _folder_item(args: tuple[Path, tuple[str, ...], int]) -> tuple[np.ndarray, np.ndarray]:
    folder, views, tile_size = args
    tiles = np.zeros((len(views), tile_size, tile_size, 3), dtype=np.uint8)
    present = np.zeros(len(views), dtype=bool)
    files = view_files(folder)
    for i, view in enumerate(views):
        path = files.get(view)
        if path is None:
            continue
        try:
            tiles[i] = decode_view(path.read_bytes(), tile_size=tile_size, view=view).tile
        except AuthentiqError as exc:
            raise DatasetError(f"{path}: {exc.detail}") from exc
        present[i] = True
    return tiles, present


def folder_items(root: Path) -> list[tuple[Path, int, str]]:
    """(item folder, label, note) for every item under ``root``; see the module docstring."""
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    csv_path = root / "labels.csv"
    found: list[tuple[Path, int, str]] = []
    if csv_path.is_file():
        with csv_path.open(newline="") as fh:
            for n, row in enumerate(csv.DictReader(fh), start=2):
                label = (row.get("label") or "").strip().lower()
                if label not in LABELS:
                    raise DatasetError(f"{csv_path}:{n}: label {label!r} is not one of {LABELS}")
                folder = root / (row.get("item") or "").strip()
                if not folder.is_dir():
                    raise DatasetError(f"{csv_path}:{n}: no folder {folder}")
                note = "/".join(x for x in (row.get("brand"), row.get("model")) if x)
                found.append((folder, LABELS.index(label), note))
    else:
        for index, label in enumerate(LABELS):
            base = root / label
            if base.is_dir():
                found += [(p, index, "") for p in sorted(base.iterdir()) if p.is_dir()]
    if not found:
        raise DatasetError(
            f"{root}: no items found; expected labels.csv or authentic/ and counterfeit/ folders"
        )
    return found


def folder_tiles(items: list[tuple[Path, int, str]], views: tuple[str, ...], tile_size: int,
                 required: Iterable[str], workers: int | None = None) -> TileSet:
    results = _map(_folder_item, [(p, views, tile_size) for p, _, _ in items], workers)
    present = np.stack([r[1] for r in results])
    for view in required:
        i = views.index(view)
        lacking = [str(items[k][0]) for k in np.flatnonzero(~present[:, i])[:3]]
        if lacking:
            raise DatasetError(f"required view {view!r} missing in {', '.join(lacking)}")
    labels = np.asarray([lab for _, lab, _ in items], dtype=np.int64)
    notes = [n for _, _, n in items]
    products = sorted(set(notes))
    # Without per-view defect labels only an authentic item's views are known to be genuine.
    clean = present & (labels == 0)[:, None]
    return TileSet(np.stack([r[0] for r in results]), present, labels,
                   [p.name for p, _, _ in items], views, notes,
                   np.asarray([products.index(n) for n in notes], dtype=np.int64), clean)


def split_of(item: str, val_share: float, test_share: float) -> str:
    """Item-level split, stable across runs and machines (hash of the item name)."""
    h = int.from_bytes(hashlib.sha256(item.encode()).digest()[:8], "big") / 2**64
    return "test" if h < test_share else "val" if h < test_share + val_share else "train"


def _map(fn: Callable[[J], R], jobs: list[J], workers: int | None) -> list[R]:
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(jobs) < 8:
        return [fn(j) for j in jobs]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(fn, jobs, chunksize=max(1, len(jobs) // (workers * 8))))
