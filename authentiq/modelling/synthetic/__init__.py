"""Procedurally generated product photos of fictional luxury brands.

``make_item(seed)`` returns one item (its views as JPEG bytes, its label and what is wrong with it);
``write_dataset`` lays items out in the folder format ``authentiq train`` reads for real photos.
Everything is deterministic from the seed.
"""

from __future__ import annotations

import csv
import os
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from authentiq.modelling.synthetic.catalog import CATALOG, VIEWS, Spec, find_spec
from authentiq.modelling.synthetic.defects import DEFECTS, DEFECTS_BY_NAME, apply_defects, tolerate
from authentiq.modelling.synthetic.photo import photograph
from authentiq.modelling.synthetic.render import RENDERERS

__all__ = ["CATALOG", "DEFECTS", "VIEWS", "SyntheticItem", "make_item", "write_dataset"]

_BACKGROUNDS = [(235, 235, 232), (200, 196, 188), (60, 62, 66), (222, 214, 200), (150, 160, 170)]


@dataclass
class SyntheticItem:
    seed: int
    brand: str
    model: str
    label: str  # "authentic" | "counterfeit"
    defects: list[str]
    views: dict[str, bytes] = field(repr=False)

    @property
    def defect_views(self) -> set[str]:
        return {DEFECTS_BY_NAME[d].view for d in self.defects}


def make_item(
    seed: int,
    *,
    counterfeit: bool | None = None,
    defects: list[str] | None = None,
    spec: Spec | None = None,
    views: tuple[str, ...] = VIEWS,
) -> SyntheticItem:
    """One item. By default half are counterfeit with 1–3 random defects.

    ``defects`` forces exactly those defects (and so a counterfeit); ``counterfeit=False`` forces a
    genuine item.
    """
    rng = np.random.default_rng(seed)
    base = spec or CATALOG[int(rng.integers(0, len(CATALOG)))]
    if defects is None:
        is_fake = bool(rng.random() < 0.5) if counterfeit is None else counterfeit
        if is_fake:
            n = int(rng.choice([1, 2, 3], p=[0.45, 0.35, 0.20]))
            defects = sorted(rng.choice([d.name for d in DEFECTS], size=n, replace=False).tolist())
        else:
            defects = []
    unknown = [d for d in defects if d not in DEFECTS_BY_NAME]
    if unknown:
        raise ValueError(f"unknown defect kinds {unknown}; known: {sorted(DEFECTS_BY_NAME)}")
    item_spec = apply_defects(tolerate(base, rng), defects, rng)
    background = _BACKGROUNDS[int(rng.integers(0, len(_BACKGROUNDS)))]
    photos = {}
    for view in views:
        render = RENDERERS[view](item_spec, rng, background)
        photos[view] = photograph(render, view, rng, background)
    return SyntheticItem(
        seed=seed,
        brand=base.brand,
        model=base.model,
        label="counterfeit" if defects else "authentic",
        defects=list(defects),
        views=photos,
    )


def write_dataset(root: Path, seeds: range | list[int], *, short_side: int | None = None,
                  quality: int = 90, genuine: bool = False, balanced: bool = False,
                  clean: bool = False, workers: int | None = 1) -> Path:
    """Write items as ``root/<item>/<view>.jpg`` plus ``root/labels.csv``; returns the CSV path.

    ``short_side`` re-encodes each photo scaled down to that short side (to keep shipped sets
    small); ``None`` keeps the generator's JPEG bytes as they are. ``genuine`` makes every item
    genuine (a reference set); ``balanced`` cycles through the catalogue's products in order;
    ``clean`` skips items with a photo the service's quality check would refuse, taking further
    seeds until as many items as ``seeds`` holds are written. ``workers`` processes draw the items
    (``None``: one per CPU); the folder is the same whatever their number.
    """
    root.mkdir(parents=True, exist_ok=True)
    csv_path = root / "labels.csv"
    draw = partial(_draw, short_side=short_side, quality=quality, genuine=genuine, clean=clean)
    workers = workers or os.cpu_count() or 1
    batch = max(1, workers * 8)
    with csv_path.open("w", newline="") as fh, \
            (ProcessPoolExecutor(workers) if workers > 1 else nullcontext()) as pool:
        writer = csv.writer(fh)
        writer.writerow(["item", "label", "brand", "model", "defects"])
        mapper = pool.map if pool is not None else map
        written, seed = 0, seeds[0] if len(seeds) else 0
        while written < len(seeds):
            # Attempts drawn ahead on the assumption that each one is kept; a skipped one (clean)
            # moves the products of the attempts after it (balanced), so those are drawn again.
            n = min(batch, len(seeds) - written)
            firsts = range(seed, seed + n) if clean else seeds[written:written + n]
            specs = [(written + i) % len(CATALOG) if balanced else None for i in range(n)]
            for drawn_seed, drawn in zip(firsts, mapper(draw, firsts, specs), strict=True):
                seed = drawn_seed + 1
                if drawn is None:  # refused by the quality check: the next seed, same product,
                    if balanced:  # so the products of the attempts after it move on by one
                        break
                    continue
                name, row, photos = drawn
                folder = root / name
                folder.mkdir(exist_ok=True)
                for view, data in photos.items():
                    (folder / f"{view}.jpg").write_bytes(data)
                writer.writerow([name, *row])
                written += 1
    return csv_path


def _draw(seed: int, spec: int | None, *, short_side: int | None, quality: int, genuine: bool,
          clean: bool) -> tuple[str, list[str], dict[str, bytes]] | None:
    """One item of ``write_dataset``: its folder name, CSV row and photos (None: refused)."""
    item = make_item(seed, counterfeit=False if genuine else None,
                     spec=CATALOG[spec] if spec is not None else None)
    photos = {v: _rescale_jpeg(d, short_side, quality) if short_side is not None else d
              for v, d in item.views.items()}
    if clean and not passes_quality(photos):
        return None
    return (f"item-{item.seed:07d}", [item.label, item.brand, item.model, ";".join(item.defects)],
            photos)


def passes_quality(photos: dict[str, bytes]) -> bool:
    """Whether every photo passes the service's quality check at its default settings."""
    from authentiq.pipeline.preprocess import decode_view
    from authentiq.pipeline.quality import check
    from authentiq.settings import Settings

    thresholds = Settings().quality
    return all(check(decode_view(d, tile_size=128, view=v), thresholds).usable
               for v, d in photos.items())


def _rescale_jpeg(data: bytes, short_side: int, quality: int) -> bytes:
    import io

    from PIL import Image

    img: Image.Image = Image.open(io.BytesIO(data))
    k = short_side / min(img.size)
    img = img.resize((round(img.width * k), round(img.height * k)), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


__all__ += ["find_spec", "passes_quality"]
