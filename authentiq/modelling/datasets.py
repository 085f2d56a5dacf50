"""Items as tiles, from the synthetic generator or from a folder of real photos.

Folder layout for real photos (documented in docs/your-own-model.md)::

    root/labels.csv                 item,label[,brand,model]   label: authentic | counterfeit
    root/<item>/<view>.jpg          one file per view (jpg, jpeg, png, webp); missing optional
                                    views are allowed
or, without a CSV, the label taken from the path::

    root/authentic/<item>/<view>.jpg
    root/counterfeit/<item>/<view>.jpg

``labels.csv`` is read by :func:`authentiq.contract.layout.read_labels` (spreadsheet exports,
header aliases); :func:`scan_items` is the one reader that ``authentiq dataset check`` and
training share. Every photo goes through :func:`authentiq.pipeline.preprocess.decode_view`, the
server's own path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from authentiq.contract.layout import LABELS_FILE, LabelsFile, read_labels, view_files
from authentiq.errors import AuthentiqError, DatasetError
from authentiq.pipeline.preprocess import decode_view

J = TypeVar("J")
R = TypeVar("R")
LABELS = ("authentic", "counterfeit")
SHOWN_ERRORS = 5  # a failing loader quotes this many problems, then points at `dataset check`
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
            decoded = decode_view(path.read_bytes(), tile_size=tile_size, view=view)
        except AuthentiqError as exc:
            raise DatasetError(f"{path}: {exc.detail}; `authentiq dataset check` lists every "
                               f"problem of the folder") from exc
        except OSError as exc:
            raise DatasetError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
        if min(decoded.width, decoded.height) < tile_size:  # the same rule as `dataset check`
            raise DatasetError(f"{path}: {decoded.width}×{decoded.height} px, smaller than the "
                               f"model's {tile_size} px tiles; `authentiq dataset check` lists "
                               f"every problem of the folder")
        tiles[i], present[i] = decoded.tile, True
    return tiles, present


@dataclass(frozen=True)
class LabelledItem:
    """One item of a folder dataset: its folder, label (1 = counterfeit) and product."""

    folder: Path
    name: str  # as labels.csv names it (a folder path relative to the root), else the folder's name
    label: int
    brand: str = ""
    model: str = ""
    where: str = ""  # "labels.csv:7", or the label folder it was found in

    @property
    def note(self) -> str:
        return "/".join(x for x in (self.brand, self.model) if x)


@dataclass
class FolderScan:
    """What :func:`scan_items` found: the items, how labels.csv was read, and every problem."""

    root: Path
    items: list[LabelledItem]
    labels: LabelsFile | None  # None: the authentic/ and counterfeit/ layout
    errors: list[str]
    warnings: list[str]


def scan_items(root: Path) -> FolderScan:
    """Every item under ``root`` (see the module's doc) and every problem, none raised except a
    folder or labels.csv that cannot be read at all."""
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    csv_path = root / LABELS_FILE
    if csv_path.is_file():
        labels = read_labels(csv_path, required=("item", "label"))
        scan = FolderScan(root, [], labels, list(labels.errors), list(labels.warnings))
        for row in labels.rows:
            folder = root / row.item
            if not folder.is_dir():
                scan.errors.append(f"{csv_path.name}:{row.line}: no folder {row.item}/ for item "
                                   f"{row.item!r}" + (" (a file of that name)" if folder.exists() else ""))
                continue
            scan.items.append(LabelledItem(folder, row.item, LABELS.index(row.label or ""),
                                           row.brand, row.model, f"{csv_path.name}:{row.line}"))
        scan.errors.sort(key=_line_of)  # the reader's and the folders' problems, in file order
    else:
        scan = FolderScan(root, [], None, [], [])
        seen: dict[str, str] = {}
        for index, label in enumerate(LABELS):
            base = root / label
            for p in sorted(base.iterdir()) if base.is_dir() else []:
                if not p.is_dir() or p.name.startswith("."):
                    continue
                if p.name in seen:
                    scan.errors.append(f"{label}/{p.name}: item {p.name!r} is also in {seen[p.name]}/")
                    continue
                seen[p.name] = label
                scan.items.append(LabelledItem(p, p.name, index, where=f"{label}/"))
    if not scan.items and not scan.errors:
        scan.errors.append(f"{root}: no items found; expected {LABELS_FILE} or authentic/ and "
                           f"counterfeit/ folders")
    return scan


def _line_of(message: str) -> int:
    """The line a "labels.csv:<line>: ..." message names (0 for any other message)."""
    head = message.split(":", 2)
    return int(head[1]) if len(head) > 2 and head[0] == LABELS_FILE and head[1].isdigit() else 0


def refuse(problems: Sequence[str], root: Path, what: str = "the dataset") -> None:
    """Raise one readable :class:`DatasetError` quoting the first problems, if there are any."""
    if not problems:
        return
    more = len(problems) - SHOWN_ERRORS
    raise DatasetError(
        f"{root}: {what} has {len(problems)} problem(s):\n  " + "\n  ".join(problems[:SHOWN_ERRORS])
        + (f"\n  ... and {more} more" if more > 0 else "")
        + f"\nrun `authentiq dataset check {root}` for the full report")


def folder_items(root: Path) -> list[LabelledItem]:
    """Every item under ``root``; any problem with labels.csv or the item folders is refused."""
    scan = scan_items(root)
    refuse(scan.errors, root)
    return scan.items


def folder_products(items: Iterable[LabelledItem]) -> tuple[tuple[str, str], ...]:
    """The (brand, model) pairs the items name, each once (case-insensitively), sorted."""
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for item in items:
        if item.brand and item.model:
            found.setdefault((item.brand.casefold(), item.model.casefold()), (item.brand, item.model))
    return tuple(found[k] for k in sorted(found))


def folder_tiles(items: list[LabelledItem], views: tuple[str, ...], tile_size: int,
                 required: Iterable[str], workers: int | None = None) -> TileSet:
    results = _map(_folder_item, [(it.folder, views, tile_size) for it in items], workers)
    present = np.stack([r[1] for r in results])
    for view in required:
        i = views.index(view)
        lacking = [str(items[k].folder) for k in np.flatnonzero(~present[:, i])[:3]]
        if lacking:
            raise DatasetError(f"required view {view!r} missing in {', '.join(lacking)}")
    labels = np.asarray([it.label for it in items], dtype=np.int64)
    notes = [it.note for it in items]
    products = sorted(set(notes))
    # Without per-view defect labels only an authentic item's views are known to be genuine.
    clean = present & (labels == 0)[:, None]
    return TileSet(np.stack([r[0] for r in results]), present, labels,
                   [it.name for it in items], views, notes,
                   np.asarray([products.index(n) for n in notes], dtype=np.int64), clean)


def same_products(*sets: TileSet) -> None:
    """Number the products of several folder sets alike (``groups``, by brand/model, ignoring
    case), so that items of one set compare with references of another."""
    names = sorted({n.casefold() for ts in sets for n in ts.notes})
    for ts in sets:
        ts.groups = np.asarray([names.index(n.casefold()) for n in ts.notes], dtype=np.int64)


def _map(fn: Callable[[J], R], jobs: list[J], workers: int | None) -> list[R]:
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(jobs) < 8:
        return [fn(j) for j in jobs]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(fn, jobs, chunksize=max(1, len(jobs) // (workers * 8))))
