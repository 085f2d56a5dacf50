"""A genuine item submitted wrongly: its own photos in the wrong slots, or one photo repeated."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def mix_up(photos: Mapping[str, bytes], rng: np.random.Generator, views: tuple[str, ...], *,
           swap: bool) -> dict[str, bytes]:
    """``photos`` rearranged over ``views``: none in its own slot (``swap``), or one view's photo repeated."""
    order = _derangement(rng, views) if swap else _duplicates(rng, views)
    return {slot: photos[source] for slot, source in zip(views, order, strict=True)}


def _derangement(rng: np.random.Generator, views: tuple[str, ...]) -> list[str]:
    """A shuffle of ``views`` that leaves none in place (about e tries on average)."""
    while True:
        order = [views[int(i)] for i in rng.permutation(len(views))]
        if all(a != b for a, b in zip(order, views, strict=True)):
            return order


def _duplicates(rng: np.random.Generator, views: tuple[str, ...]) -> list[str]:
    """One view's photo in every slot, or in 2–3 slots with the others left correct."""
    source = views[int(rng.integers(0, len(views)))]
    if rng.random() < 0.5:
        return [source] * len(views)
    others = [v for v in views if v != source]
    extra = min(len(others), int(rng.integers(1, 3)))
    copied = {others[int(i)] for i in rng.choice(len(others), size=extra, replace=False)}
    return [source if v in copied else v for v in views]
