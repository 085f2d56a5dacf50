"""How far the classifier's probabilities can be trusted: temperature scaling, ECE, risk–coverage.

* :func:`fit_temperature` finds the one temperature ``T`` that minimises the negative log
  likelihood of ``softmax(logits / T)`` on held-out items (Guo et al. 2017, "On Calibration of
  Modern Neural Networks"); :func:`temperature_p` applies it.
* :func:`expected_calibration_error` is the standard top-label ECE: the confidence of the
  *predicted* class, ``max(p, 1 - p)``, binned on ``[0.5, 1]``; :func:`reliability_bins` gives the
  same bins and :func:`reliability_diagram` draws them.
* :func:`risk_coverage` answers "if we only decide the most confident share of items, how accurate
  are those decisions?"; :func:`risk_coverage_table` prints it as markdown.

numpy only; matplotlib is imported when a diagram is drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from authentiq.contract.model_spec import softmax_fake

T_MIN, T_MAX = 0.05, 20.0
_GOLDEN = (math.sqrt(5) - 1) / 2
DEFAULT_COVERAGES = (1.0, 0.99, 0.98, 0.95, 0.9, 0.85, 0.8, 0.7, 0.5)


@dataclass(frozen=True)
class ReliabilityBin:
    lower: float
    upper: float
    count: int
    confidence: float  # mean confidence of the predicted class in the bin
    accuracy: float  # share of the bin's predictions that are right


@dataclass(frozen=True)
class CoveragePoint:
    coverage: float  # share of all items decided (decided / N)
    decided: int
    accuracy: float  # accuracy on the decided items
    threshold: float  # lowest confidence among the decided items


# --- temperature scaling -------------------------------------------------------------------


def _margins(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] != 2:
        raise ValueError(f"logits must be [N, 2] (authentic, counterfeit), got shape {logits.shape}")
    if not np.isfinite(logits).all():
        raise ValueError("logits must be finite")
    margins: np.ndarray = logits[:, 1] - logits[:, 0]
    return margins


def _nll(margins: np.ndarray, signs: np.ndarray, log_t: float) -> float:
    """Mean NLL of softmax(logits / T): softplus(-sign · margin / T), stable for any margin."""
    return float(np.logaddexp(0.0, -signs * margins / math.exp(log_t)).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature in ``[T_MIN, T_MAX]`` minimising the NLL of ``softmax(logits / T)``.

    The NLL is convex in ``1 / T`` (a one-weight logistic regression on the logit margin), hence
    unimodal in ``log T``, so a golden-section search on ``log T`` finds the minimum without
    derivatives and gives the same answer on every run. Separable items push ``T`` to ``T_MIN``.
    """
    margins = _margins(logits)
    labels = np.asarray(labels)
    if labels.shape != margins.shape:
        raise ValueError(f"labels must be [N] to match logits, got {labels.shape} for {margins.shape}")
    if len(margins) == 0:
        raise ValueError("cannot fit a temperature on no items")
    signs = np.where(labels.astype(bool), 1.0, -1.0)
    lo, hi = math.log(T_MIN), math.log(T_MAX)
    a, b = hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo)
    fa, fb = _nll(margins, signs, a), _nll(margins, signs, b)
    while hi - lo > 1e-7:
        if fa <= fb:  # minimum in [lo, b]
            hi, b, fb = b, a, fa
            a = hi - _GOLDEN * (hi - lo)
            fa = _nll(margins, signs, a)
        else:  # minimum in [a, hi]
            lo, a, fa = a, b, fb
            b = lo + _GOLDEN * (hi - lo)
            fb = _nll(margins, signs, b)
    return math.exp((lo + hi) / 2)


def temperature_p(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Calibrated p(counterfeit) ``[N]`` (float64) from ``softmax(logits / temperature)``."""
    if not temperature > 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be a positive finite number, got {temperature}")
    _margins(logits)  # shape and finiteness
    return softmax_fake(np.asarray(logits, dtype=np.float64) / temperature)


# --- calibration error ---------------------------------------------------------------------


def _checked(labels: np.ndarray, p_counterfeit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels)
    p = np.asarray(p_counterfeit, dtype=np.float64)
    if y.ndim != 1 or y.shape != p.shape:
        raise ValueError(f"labels and p_counterfeit must be [N] of one length, got {y.shape}, {p.shape}")
    if len(p) == 0:
        raise ValueError("no items")
    if not (np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()):
        raise ValueError("p_counterfeit must be probabilities in [0, 1]")
    return y.astype(bool), p


def _top_label(labels: np.ndarray, p_counterfeit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(confidence of the predicted class, whether that prediction is right)."""
    y, p = _checked(labels, p_counterfeit)
    return np.maximum(p, 1 - p), (p >= 0.5) == y


def reliability_bins(labels: np.ndarray, p_counterfeit: np.ndarray, bins: int = 15) -> list[ReliabilityBin]:
    """Equal-width bins of top-label confidence on ``[0.5, 1]`` (the last bin closed); empty ones left out."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    confidence, correct = _top_label(labels, p_counterfeit)
    edges = np.linspace(0.5, 1.0, bins + 1)
    index = np.searchsorted(edges[1:-1], confidence, side="right")
    out = []
    for b in range(bins):
        in_bin = index == b
        if in_bin.any():
            out.append(ReliabilityBin(float(edges[b]), float(edges[b + 1]), int(in_bin.sum()),
                                      float(confidence[in_bin].mean()), float(correct[in_bin].mean())))
    return out


def _ece(found: list[ReliabilityBin]) -> float:
    total = sum(b.count for b in found)
    return sum(b.count * abs(b.accuracy - b.confidence) for b in found) / total


def expected_calibration_error(labels: np.ndarray, p_counterfeit: np.ndarray, bins: int = 15) -> float:
    """Top-label ECE: the count-weighted mean of |accuracy − confidence| over the reliability bins."""
    return _ece(reliability_bins(labels, p_counterfeit, bins))


def reliability_diagram(labels: np.ndarray, p_counterfeit: np.ndarray, path: Path, *,
                        title: str = "", bins: int = 15) -> Path:
    """A PNG (900×700 px): accuracy per bin against confidence over the bins' counts; returns ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    found = reliability_bins(labels, p_counterfeit, bins)
    ece = _ece(found)
    lowers = [b.lower for b in found]
    widths = [b.upper - b.lower for b in found]

    fig = Figure(figsize=(9, 7), dpi=100)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.bar(lowers, [b.accuracy for b in found], width=widths, align="edge", color="#4c72b0",
            edgecolor="white", alpha=0.85, label="accuracy in bin")
    top.plot([b.confidence for b in found], [b.accuracy for b in found], "o", color="#1f2d4d",
             markersize=5, label="(mean confidence, accuracy)")
    top.plot([0.5, 1.0], [0.5, 1.0], "--", color="#b42318", linewidth=1.5, label="perfect calibration")
    top.set_xlim(0.5, 1.0)
    top.set_ylim(0.0, 1.02)
    top.set_ylabel("accuracy of the predicted class")
    top.grid(alpha=0.3)
    top.legend(loc="upper left", fontsize=9)
    heading = f"ECE {ece:.4f} · {sum(b.count for b in found)} items · {bins} bins"
    top.set_title(f"{title}\n{heading}" if title else heading, fontsize=12)

    bottom.bar(lowers, [b.count for b in found], width=widths, align="edge", color="#8c8c8c",
               edgecolor="white")
    bottom.set_xlabel("confidence of the predicted class, max(p, 1 − p)")
    bottom.set_yscale("log")  # confident bins often hold most items; log keeps the others visible
    bottom.set_ylim(bottom=0.5)
    bottom.set_ylabel("items (log scale)")
    bottom.grid(alpha=0.3, axis="y")
    fig.tight_layout()

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


# --- risk-coverage -------------------------------------------------------------------------


def risk_coverage(labels: np.ndarray, p_counterfeit: np.ndarray, decided_mask: np.ndarray | None = None,
                  coverages: Sequence[float] = DEFAULT_COVERAGES) -> list[CoveragePoint]:
    """Accuracy when only the most confident items are decided, for each target coverage.

    Coverage is a share of *all* N items. Candidates are the items of ``decided_mask`` (all items
    if None), most confident first (ties in input order). A target asking for more items than there
    are candidates is cut to all candidates, so ``coverage`` reports the share actually decided
    (``floor(target · N)`` items at most); targets that come to the same number of items yield one
    point, and targets that decide no item none.
    """
    confidence, correct = _top_label(labels, p_counterfeit)
    n = len(confidence)
    if decided_mask is None:
        candidates = np.arange(n)
    else:
        mask = np.asarray(decided_mask, dtype=bool)
        if mask.shape != confidence.shape:
            raise ValueError(f"decided_mask must be [N], got {mask.shape} for {confidence.shape}")
        candidates = np.flatnonzero(mask)
    order = candidates[np.argsort(-confidence[candidates], kind="stable")]
    points: list[CoveragePoint] = []
    for target in coverages:
        if not 0 <= target <= 1:
            raise ValueError(f"coverages must lie in [0, 1], got {target}")
        k = min(math.floor(target * n + 1e-9), len(order))
        if k == 0 or any(point.decided == k for point in points):
            continue
        kept = order[:k]
        points.append(CoveragePoint(k / n, k, float(correct[kept].mean()), float(confidence[kept[-1]])))
    return points


def risk_coverage_table(points: list[CoveragePoint]) -> str:
    """A markdown table, one row per point."""
    rows = ["| coverage | decided | accuracy on decided | confidence ≥ |", "|---:|---:|---:|---:|"]
    rows += [f"| {p.coverage:.1%} | {p.decided} | {p.accuracy:.2%} | {p.threshold:.4f} |" for p in points]
    return "\n".join(rows)
