"""Temperature scaling, ECE and risk–coverage on synthetic items whose true calibration is known."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from authentiq.modelling.reliability import (
    T_MIN,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
    reliability_diagram,
    risk_coverage,
    risk_coverage_table,
    temperature_p,
)

pytestmark = pytest.mark.db_independent  # the PostgreSQL pass leaves it out


def _calibrated(n: int = 20_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """True logit margins z ~ N(0, 3) and labels drawn from sigmoid(z): sigmoid(z) is calibrated."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 3.0, n)
    labels = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.int64)
    return z, labels


def _logits(margin: np.ndarray) -> np.ndarray:
    return np.stack([np.zeros_like(margin), margin], axis=1)


def test_fit_temperature_recovers_the_scale() -> None:
    z, labels = _calibrated()
    t = fit_temperature(_logits(2.5 * z), labels)
    assert t == pytest.approx(2.5, rel=0.10)
    assert fit_temperature(_logits(2.5 * z), labels) == t  # deterministic
    assert fit_temperature(_logits(z), labels) == pytest.approx(1.0, rel=0.10)
    assert fit_temperature(_logits(0.5 * z), labels) == pytest.approx(0.5, rel=0.10)  # under-confident


def test_fit_temperature_on_separable_items_hits_the_lower_bound() -> None:
    logits = np.array([[1e4, -1e4], [-1e4, 1e4], [-3.0, 3.0]])
    t = fit_temperature(logits, np.array([0, 1, 1]))
    assert t == pytest.approx(T_MIN, rel=1e-3)


def test_fit_temperature_refuses_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        fit_temperature(np.zeros((4, 3)), np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="labels"):
        fit_temperature(np.zeros((4, 2)), np.zeros(3, dtype=int))


def test_temperature_p_is_stable_for_huge_logits() -> None:
    logits = np.array([[1e4, -1e4], [-1e4, 1e4], [0.0, 0.0], [5.0, 7.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        p = temperature_p(logits, T_MIN)
    assert p.dtype == np.float64 and np.isfinite(p).all()
    np.testing.assert_allclose(p[:3], [0.0, 1.0, 0.5])
    assert temperature_p(logits, 2.0)[3] == pytest.approx(1 / (1 + np.exp(-1.0)))
    with pytest.raises(ValueError, match="temperature"):
        temperature_p(logits, 0.0)


def test_ece_hand_computed() -> None:
    # confidences .95 right, .75 right, .65 wrong, .65 right, .85 wrong; bins of 0.1 on [0.5, 1]
    labels = np.array([1, 0, 1, 1, 0])
    p = np.array([0.95, 0.25, 0.35, 0.65, 0.85])
    expected = (abs(1 - 0.95) + abs(1 - 0.75) + 2 * abs(0.5 - 0.65) + abs(0 - 0.85)) / 5
    assert expected_calibration_error(labels, p, bins=5) == pytest.approx(expected)
    assert expected == pytest.approx(0.29)
    found = reliability_bins(labels, p, bins=5)
    assert [(b.lower, b.count) for b in found] == [(0.6, 2), (0.7, 1), (0.8, 1), (0.9, 1)]
    assert found[0].accuracy == 0.5 and found[0].confidence == pytest.approx(0.65)


def test_bins_take_the_end_points() -> None:
    labels = np.array([0, 1, 1, 0])
    p = np.array([0.5, 0.5, 1.0, 0.0])  # confidence 0.5 in the first bin, 1.0 in the last
    found = reliability_bins(labels, p, bins=15)
    assert [b.count for b in found] == [2, 2]
    assert found[0].lower == 0.5 and found[-1].upper == 1.0
    assert found[0].accuracy == 0.5 and found[-1].accuracy == 1.0


def test_ece_calibrated_small_overconfident_large_then_fixed() -> None:
    z, labels = _calibrated()
    assert expected_calibration_error(labels, 1 / (1 + np.exp(-z))) < 0.02
    overconfident = _logits(4.0 * z)
    p_raw = temperature_p(overconfident, 1.0)
    raw = expected_calibration_error(labels, p_raw)
    assert raw > 0.1
    scaled = expected_calibration_error(labels, temperature_p(overconfident, fit_temperature(overconfident, labels)))
    assert scaled < 0.02 and scaled < raw / 5


def test_risk_coverage_accuracy_rises_as_coverage_falls() -> None:
    z, labels = _calibrated()
    p = 1 / (1 + np.exp(-z))
    points = risk_coverage(labels, p)
    assert [pt.coverage for pt in points] == [1.0, 0.99, 0.98, 0.95, 0.9, 0.85, 0.8, 0.7, 0.5]
    assert points[0].decided == len(labels)
    assert points[0].accuracy == pytest.approx(float(((p >= 0.5) == labels).mean()))
    accuracies = [pt.accuracy for pt in points]
    assert all(b >= a for a, b in pairwise(accuracies))
    assert accuracies[-1] > accuracies[0] + 0.05
    confidence = np.maximum(p, 1 - p)
    for pt in points:
        assert pt.threshold == pytest.approx(np.sort(confidence)[::-1][pt.decided - 1])
    table = risk_coverage_table(points).splitlines()
    assert len(table) == 2 + len(points)
    assert table[0] == "| coverage | decided | accuracy on decided | confidence ≥ |"
    assert table[2].startswith("| 100.0% | 20000 |")


def test_risk_coverage_within_a_decided_mask() -> None:
    z, labels = _calibrated(n=1000)
    p = 1 / (1 + np.exp(-z))
    confidence = np.maximum(p, 1 - p)
    decided = confidence >= np.quantile(confidence, 0.1)  # the band leaves the 10% least sure
    points = risk_coverage(labels, p, decided_mask=decided)
    # 100%, 99%, 98%, 95% and 90% can only decide the 900 decided items: one point
    assert [pt.decided for pt in points] == [900, 850, 800, 700, 500]
    assert points[0].coverage == 0.9
    assert points[0].threshold == pytest.approx(confidence[decided].min())
    assert points[0].accuracy == pytest.approx(float(((p >= 0.5) == labels)[decided].mean()))


def test_reliability_diagram_writes_a_png(tmp_path: Path) -> None:
    z, labels = _calibrated(n=5000)
    p = temperature_p(_logits(3.0 * z), 1.0)
    out = reliability_diagram(labels, p, tmp_path / "plots" / "reliability.png", title="over-confident")
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.size == (900, 700)
        assert len(np.unique(np.asarray(image.convert("L")))) > 10  # something was drawn
