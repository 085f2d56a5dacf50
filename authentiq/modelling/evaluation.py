"""Item-level metrics and the choice of the inconclusive band (numpy only)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Metrics:
    items: int
    accuracy: float  # at p >= 0.5, every item decided
    roc_auc: float
    decided_accuracy: float  # with the inconclusive band on
    inconclusive_share: float
    authentic_below: float
    counterfeit_above: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mann–Whitney U statistic with ties counted half."""
    labels = np.asarray(labels).astype(bool)
    pos, neg = scores[labels], scores[~labels]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order), dtype=np.float64)
    allscores = np.concatenate([pos, neg])[order]
    # average ranks of ties
    i = 0
    while i < len(allscores):
        j = i
        while j + 1 < len(allscores) and allscores[j + 1] == allscores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    rank_pos = ranks[: len(pos)].sum()
    return float((rank_pos - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def band_metrics(labels: np.ndarray, p_fake: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """(accuracy on decided items, share inconclusive) for the band [lo, hi)."""
    decided = (p_fake < lo) | (p_fake >= hi)
    if not decided.any():
        return float("nan"), 1.0
    pred = p_fake[decided] >= hi
    acc = float((pred == labels[decided].astype(bool)).mean())
    return acc, float(1 - decided.mean())


def choose_band(labels: np.ndarray, p_fake: np.ndarray, target_accuracy: float = 0.995,
                max_inconclusive: float = 0.10) -> tuple[float, float]:
    """The narrowest band whose decided accuracy reaches ``target_accuracy`` on these items.

    Falls back to the band with the best decided accuracy within ``max_inconclusive``.
    """
    grid = np.unique(np.concatenate([[0.5], np.quantile(p_fake, np.linspace(0, 1, 101))]))
    best: tuple[float, float, float, float] | None = None  # (inconclusive, -acc, lo, hi)
    fallback: tuple[float, float, float, float] | None = None
    for lo in grid[grid <= 0.5]:
        for hi in grid[grid >= 0.5]:
            acc, share = band_metrics(labels, p_fake, float(lo), float(hi))
            if share > max_inconclusive or np.isnan(acc):
                continue
            key = (share, -acc, float(lo), float(hi))
            if acc >= target_accuracy and (best is None or key < best):
                best = key
            fkey = (-acc, share, float(lo), float(hi))
            if fallback is None or fkey < fallback:
                fallback = fkey
    if best is not None:
        return best[2], best[3]
    if fallback is not None:
        return fallback[2], fallback[3]
    return 0.5, 0.5


def evaluate(labels: np.ndarray, p_fake: np.ndarray, lo: float, hi: float) -> Metrics:
    acc = float(((p_fake >= 0.5) == labels.astype(bool)).mean())
    decided_acc, share = band_metrics(labels, p_fake, lo, hi)
    return Metrics(len(labels), acc, roc_auc(labels, p_fake), decided_acc, share, lo, hi)

