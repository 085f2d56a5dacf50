"""Train / validation / test splits of a folder dataset: by item (or by product), seeded, recorded.

Each item (or product, with ``by_product``) gets a number in [0, 1) from a seeded SHA-256 of its
name; below ``test_share`` it is a test item, below ``test_share + val_share`` a validation item,
else a training item. An item's split depends only on its own name and the seed, so adding items
to a folder never moves the others (seed 0 gives the split training always used). A small folder
where the numbers leave a split (training, validation or test) without an item of one class is
split by rank for that class instead: the lowest numbers to test, the next to validation, at least
one each while the class has three items, and the rest to training.

``authentiq dataset check DIR --write-splits`` pins the split in ``DIR/splits.json``; whenever that
file exists, the check and training use it as it is. Training always records the split it used
in its output folder (``splits.json``), so the test items evaluated later are the ones the model
never saw.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from authentiq.modelling.datasets import LABELS, LabelledItem

SPLITS_FILE = "splits.json"
FORMAT = "authentiq-splits/1"
NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class SplitPlan:
    val_share: float = 0.15
    test_share: float = 0.15
    seed: int = 0
    by_product: bool = False

    def describe(self) -> str:
        return (f"by {'product' if self.by_product else 'item'}, seed {self.seed}, "
                f"validation {self.val_share:.0%}, test {self.test_share:.0%}")


@dataclass
class Splits:
    plan: SplitPlan | None  # None: pinned by hand, without a plan
    assignment: dict[str, str]  # item name → train | val | test
    source: str  # "computed", or the pinned file

    def of(self, items: Sequence[LabelledItem]) -> np.ndarray:
        return np.asarray([self.assignment[it.name] for it in items])

    def counts(self, items: Sequence[LabelledItem]) -> dict[str, dict[str, int]]:
        out = {s: dict.fromkeys(LABELS, 0) for s in NAMES}
        for it in items:
            out[self.assignment[it.name]][LABELS[it.label]] += 1
        return out

    def as_dict(self, items: Sequence[LabelledItem]) -> dict[str, Any]:
        return {"format": FORMAT, "source": self.source,
                "plan": asdict(self.plan) if self.plan else None,
                "counts": self.counts(items),
                "items": {it.name: self.assignment[it.name] for it in items}}

    def write(self, path: Path, items: Sequence[LabelledItem]) -> Path:
        path.write_text(json.dumps(self.as_dict(items), indent=1, ensure_ascii=False) + "\n")
        return path


def unit_number(key: str, seed: int) -> float:
    """A stable number in [0, 1) for ``key``; seed 0 keeps the hash training always used."""
    text = key if seed == 0 else f"{seed}:{key}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64


def product_of(item: LabelledItem) -> str:
    return f"{item.brand.casefold()}/{item.model.casefold()}" if item.brand or item.model \
        else f"item:{item.name}"


def compute(items: Sequence[LabelledItem], plan: SplitPlan) -> Splits:
    """Split ``items`` per ``plan`` (see the module's doc)."""
    if plan.by_product:
        units: dict[str, list[LabelledItem]] = {}
        for it in items:
            units.setdefault(product_of(it), []).append(it)
        by_unit = _assign(list(units), plan)
        return Splits(plan, {it.name: by_unit[u] for u, members in units.items() for it in members},
                      "computed")
    assignment: dict[str, str] = {}
    for label in range(len(LABELS)):
        names = [it.name for it in items if it.label == label]
        assignment.update(_assign(names, plan))
    return Splits(plan, assignment, "computed")


def _assign(keys: list[str], plan: SplitPlan) -> dict[str, str]:
    """Threshold each key's number; by rank where that leaves a split empty (see above)."""
    numbers = {k: unit_number(k, plan.seed) for k in keys}
    out = {k: "test" if u < plan.test_share else "val" if u < plan.test_share + plan.val_share
           else "train" for k, u in numbers.items()}
    if len(keys) >= 3 and set(out.values()) != {"train", "val", "test"}:
        ranked = sorted(keys, key=lambda k: numbers[k])
        n_test = max(1, round(plan.test_share * len(keys)))
        n_val = max(1, round(plan.val_share * len(keys)))
        while n_test + n_val > len(keys) - 1:  # training keeps at least one
            n_val, n_test = (n_val - 1, n_test) if n_val >= n_test else (n_val, n_test - 1)
        out = {k: "test" if i < n_test else "val" if i < n_test + n_val else "train"
               for i, k in enumerate(ranked)}
    return out


def read_pinned(path: Path, items: Sequence[LabelledItem]) -> tuple[Splits, list[str], list[str]]:
    """A pinned ``splits.json``; (splits, errors, warnings) — every item must be assigned."""
    errors: list[str] = []
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
        raw = data["items"]
        if not isinstance(raw, dict):
            raise TypeError("items is not an object")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return Splits(None, {}, str(path)), [
            f"{path.name}: unreadable ({exc}); expected {{\"items\": {{\"<item>\": \"train|val|test\", "
            f"...}}}}; delete it, or rewrite it with `authentiq dataset check --write-splits`"], []
    assignment = {str(k): str(v) for k, v in raw.items()}
    wrong = sorted(k for k, v in assignment.items() if v not in NAMES)
    if wrong:
        errors.append(f"{path.name}: {_few(wrong)} assigned to something other than "
                      f"train, val or test")
    names = {it.name for it in items}
    unassigned = sorted(names - set(assignment))
    if unassigned:
        errors.append(f"{path.name}: {len(unassigned)} item(s) not assigned to a split: "
                      f"{_few(unassigned)}; add them, or delete {path.name} to split afresh")
    gone = sorted(set(assignment) - names)
    warnings = [f"{path.name}: {len(gone)} item(s) assigned but not in the folder: {_few(gone)}"] \
        if gone else []
    plan = None
    if isinstance(data.get("plan"), dict):
        try:
            plan = SplitPlan(**data["plan"])
        except TypeError:
            plan = None
    return Splits(plan, assignment, str(path)), errors, warnings


def splits_for(root: Path, items: Sequence[LabelledItem], plan: SplitPlan, *,
               pinned: bool = True) -> tuple[Splits, list[str], list[str]]:
    """The pinned split (``root/splits.json``) if there is one (and ``pinned``), else ``plan``'s."""
    path = root / SPLITS_FILE
    if pinned and path.is_file():
        return read_pinned(path, items)
    return compute(items, plan), [], []


def problems(items: Sequence[LabelledItem], splits: Splits) -> list[str]:
    """What training cannot work with: a split without an item of a class (one message a class)."""
    counts = splits.counts(items)
    what = {"train": "training", "val": "validation", "test": "test"}
    have = {label: sum(it.label == i for it in items) for i, label in enumerate(LABELS)}
    how = splits.plan.describe() if splits.plan else f"pinned in {splits.source}"
    out = []
    for label in LABELS:
        lacking = [what[s] for s in NAMES if counts[s][label] == 0]
        if lacking:
            out.append(
                f"the {_and(lacking)} split{'s have' if len(lacking) > 1 else ' has'} no "
                f"{label} item ({', '.join(f'{n} {k}' for k, n in have.items())} in all; {how}): "
                f"each split needs both classes — add items (at least 3 of each class"
                f"{', in 3 products' if splits.plan and splits.plan.by_product else ''})")
    return out


def _and(words: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _few(names: Sequence[str], shown: int = 5) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
