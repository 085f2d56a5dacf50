"""Verdict fusion: model score + per-view quality → verdict with reasons.

The counterfeit probability is compared with the model's calibrated band
(``ModelSpec.thresholds``): below it → authentic, above → counterfeit, inside → inconclusive.
A required view that failed the quality check makes the verdict inconclusive whatever the score:
the model did not see what it needs. Attention shares come from the counterfeit-class CAM and
say where the model looked; they are an explanation, not proof of where a flaw is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from authentiq.evaluation import softmax_fake
from authentiq.model_spec import ModelSpec
from authentiq.stitch import cell_of

AUTOMATED_NOTICE = (
    "This verdict was produced by automated means (an image classifier); it can be reviewed and "
    "overridden by a human auditor. Heatmaps show where the model looked, not proof of a flaw."
)


@dataclass(frozen=True)
class Verdict:
    verdict: str  # authentic | counterfeit | inconclusive
    p_counterfeit: float
    reasons: list[dict[str, Any]]
    attention: dict[str, float]  # view → share of positive counterfeit evidence


def attention_by_view(spec: ModelSpec, cam: np.ndarray, present: set[str]) -> dict[str, float]:
    """Share of the positive counterfeit-class CAM that falls in each present view's tile."""
    fake = np.maximum(cam[1], 0.0)  # [h, w]
    rows, cols = spec.grid
    ch, cw = fake.shape[0] // rows, fake.shape[1] // cols
    mass = {}
    for view in spec.view_names:
        if view not in present:
            continue
        r, c = cell_of(spec, view)
        mass[view] = float(fake[r * ch:(r + 1) * ch, c * cw:(c + 1) * cw].sum())
    total = sum(mass.values())
    return {v: (m / total if total > 0 else 0.0) for v, m in mass.items()}


def decide(spec: ModelSpec, logits: np.ndarray, cam: np.ndarray, unusable: dict[str, str],
           present: set[str]) -> Verdict:
    p = float(softmax_fake(logits.reshape(1, -1))[0])
    t = spec.thresholds
    attention = attention_by_view(spec, cam, present)
    reasons: list[dict[str, Any]] = []
    blocking = {v: r for v, r in unusable.items() if v in spec.required_views}
    if blocking:
        verdict = "inconclusive"
        for view, why in blocking.items():
            reasons.append({"code": "retake_required", "view": view,
                            "detail": f"The {view} photo is unusable ({why}); retake it."})
    elif p >= t.counterfeit_above:
        verdict = "counterfeit"
        reasons.append({"code": "model_counterfeit", "detail": (
            f"Counterfeit probability {p:.3f} is at or above {t.counterfeit_above:.3f}.")})
    elif p < t.authentic_below:
        verdict = "authentic"
        reasons.append({"code": "model_authentic",
                        "detail": f"Counterfeit probability {p:.3f} is below {t.authentic_below:.3f}."})
    else:
        verdict = "inconclusive"
        reasons.append({"code": "model_uncertain",
                        "detail": (f"Counterfeit probability {p:.3f} lies in the uncertain band "
                                   f"[{t.authentic_below:.3f}, {t.counterfeit_above:.3f}); "
                                   "a human review is advised.")})
    if verdict != "authentic" and attention:
        top = max(attention, key=lambda v: attention[v])
        reasons.append({"code": "attention", "view": top, "share": round(attention[top], 3),
                        "detail": (f"The model's counterfeit evidence is strongest in the {top} "
                                   f"view ({attention[top]:.0%} of it).")})
    for view, why in unusable.items():
        if view not in blocking:
            reasons.append({"code": "optional_view_skipped", "view": view,
                            "detail": f"The optional {view} photo was unusable ({why}) and ignored."})
    reasons.append({"code": "automated_decision", "detail": AUTOMATED_NOTICE})
    return Verdict(verdict, p, reasons, attention)
