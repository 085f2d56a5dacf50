"""Splits: by item or product, seeded, stable as a folder grows, never empty on a small folder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from authentiq.modelling import splits
from authentiq.modelling.datasets import LabelledItem

pytestmark = pytest.mark.db_independent  # the PostgreSQL pass leaves it out


def items(n: int, counterfeit_every: int = 2, products: int = 4) -> list[LabelledItem]:
    return [LabelledItem(Path(f"item-{i}"), f"item-{i}", int(i % counterfeit_every == 0),
                         f"Brand {i % products}", "M") for i in range(n)]


def legacy_split(item: str) -> str:
    """The split training used before seeds (a hash of the item's name)."""
    h = int.from_bytes(hashlib.sha256(item.encode()).digest()[:8], "big") / 2**64
    return "test" if h < 0.15 else "val" if h < 0.3 else "train"


def test_seed_zero_keeps_the_old_split_and_other_seeds_move_it() -> None:
    many = items(400)
    zero = splits.compute(many, splits.SplitPlan()).assignment
    assert zero == {it.name: legacy_split(it.name) for it in many}
    assert splits.compute(many, splits.SplitPlan(seed=1)).assignment != zero
    counts = splits.compute(many, splits.SplitPlan()).counts(many)
    share = sum(counts["test"].values()) / len(many)
    assert 0.1 < share < 0.2


def test_adding_items_never_moves_the_others() -> None:
    plan = splits.SplitPlan(seed=3)
    before = splits.compute(items(300), plan).assignment
    after = splits.compute(items(400), plan).assignment
    assert {k: after[k] for k in before} == before


def test_a_small_folder_gets_both_classes_in_every_split() -> None:
    for n in (6, 8, 10, 13):
        small = items(n)
        split = splits.compute(small, splits.SplitPlan())
        assert splits.problems(small, split) == [], n
        counts = split.counts(small)
        assert all(counts[s][c] >= 1 for s in splits.NAMES for c in ("authentic", "counterfeit"))


def test_a_small_folder_keeps_training_items_whatever_the_seed() -> None:
    # thresholding alone put all 3 items of a class in validation and test for about 1 seed in
    # 40 (a report id is random, so the exported review folders failed `dataset check` by chance)
    small = items(6)
    for seed in range(400):
        split = splits.compute(small, splits.SplitPlan(seed=seed))
        assert splits.problems(small, split) == [], seed


def test_too_few_items_of_a_class_say_what_is_missing() -> None:
    few = items(9, counterfeit_every=5)  # 2 counterfeit items: 0 and 5
    split = splits.compute(few, splits.SplitPlan())
    [problem] = splits.problems(few, split)
    assert problem.startswith("the validation and test splits have no counterfeit item (7 authentic, "
                              "2 counterfeit in all; by item, seed 0, validation 15%, test 15%)")
    assert "at least 3 of each class" in problem


def test_by_product_keeps_every_product_in_one_split() -> None:
    many = items(60, products=6)
    split = splits.compute(many, splits.SplitPlan(by_product=True))
    for brand in {it.brand for it in many}:
        assert len({split.assignment[it.name] for it in many if it.brand == brand}) == 1
    assert {split.assignment[it.name] for it in many} == set(splits.NAMES)


def test_written_splits_read_back(tmp_path: Path) -> None:
    some = items(20)
    split = splits.compute(some, splits.SplitPlan(seed=5))
    path = split.write(tmp_path / splits.SPLITS_FILE, some)
    data = json.loads(path.read_text())
    assert data["plan"]["seed"] == 5 and data["counts"] == split.counts(some)
    pinned, errors, warnings = splits.splits_for(tmp_path, some[:-1], splits.SplitPlan())
    assert pinned.assignment == split.assignment and errors == []
    assert warnings == ["splits.json: 1 item(s) assigned but not in the folder: item-19"]
    (tmp_path / splits.SPLITS_FILE).write_text("{not json")
    _, errors, _ = splits.splits_for(tmp_path, some, splits.SplitPlan())
    assert errors[0].startswith("splits.json: unreadable (")
