"""Verdict fusion: classifier score + reference comparison + per-view quality → verdict with reasons.

Order of the rules, each stated in the reasons with the numbers behind it:

1. A required view that failed the quality check → inconclusive: the model did not see what it
   needs, whatever the scores say.
2. With genuine references of the claimed product and a model that carries fusion parameters,
   the classifier's probability and the mean similarity to the closest references combine into
   one calibrated probability (``FusionParams``), compared with the fused band. Without either,
   the classifier's own band decides, and the reasons say so — never silently.
3. An item whose closest genuine reference is less similar than ``min_similarity`` is never
   called authentic; one that matches another product's references better than the claimed
   product's by ``mismatch_margin`` is reported as a model mismatch and is not called authentic.

Thresholds come from the model (``ModelSpec.thresholds`` / ``ModelSpec.fusion``) unless the
product carries overrides in the database (``PUT /v1/products/{brand}/{model}``). Attention
shares come from the counterfeit-class CAM: an explanation of where the model looked, not proof
of where a flaw is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from authentiq.evaluation import softmax_fake
from authentiq.model_spec import ModelSpec
from authentiq.reference_index import Evidence
from authentiq.stitch import cell_of

AUTOMATED_NOTICE = (
    "This verdict was produced by automated means (an image classifier and a comparison with "
    "enrolled genuine references); it can be reviewed and overridden by a human auditor. "
    "Heatmaps show where the model looked, not proof of a flaw."
)


class ProductThresholds(BaseModel):
    """Per-product overrides; a missing value takes the model's default."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    authentic_below: float | None = Field(None, ge=0, le=1, description="fused band, lower edge")
    counterfeit_above: float | None = Field(None, ge=0, le=1, description="fused band, upper edge")
    classifier_authentic_below: float | None = Field(
        None, ge=0, le=1, description="classifier-alone band (no references), lower edge")
    classifier_counterfeit_above: float | None = Field(None, ge=0, le=1)
    min_similarity: float | None = Field(None, ge=-1, le=1)
    mismatch_margin: float | None = Field(None, ge=0, le=2)

    @model_validator(mode="after")
    def _ordered(self) -> ProductThresholds:
        for lo, hi in (("authentic_below", "counterfeit_above"),
                       ("classifier_authentic_below", "classifier_counterfeit_above")):
            a, b = getattr(self, lo), getattr(self, hi)
            if a is not None and b is not None and a > b:
                raise ValueError(f"{lo} must not exceed {hi}")
        return self


@dataclass(frozen=True)
class Verdict:
    verdict: str  # authentic | counterfeit | inconclusive
    p_counterfeit: float  # the probability the verdict rests on (fused when fusion applied)
    p_classifier: float
    confidence: float
    fused: bool
    thresholds: dict[str, Any]
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


def effective_thresholds(spec: ModelSpec, overrides: dict[str, float]) -> dict[str, Any]:
    """The thresholds that apply to one product: its overrides over the model's defaults."""
    o = ProductThresholds.model_validate(overrides or {})
    f = spec.fusion
    pick = {
        "classifier_authentic_below": (o.classifier_authentic_below, spec.thresholds.authentic_below),
        "classifier_counterfeit_above": (o.classifier_counterfeit_above,
                                         spec.thresholds.counterfeit_above),
        "authentic_below": (o.authentic_below, f.authentic_below if f else None),
        "counterfeit_above": (o.counterfeit_above, f.counterfeit_above if f else None),
        "min_similarity": (o.min_similarity, f.min_similarity if f else None),
        "mismatch_margin": (o.mismatch_margin, f.mismatch_margin if f else None),
    }
    out: dict[str, Any] = {k: (v if v is not None else d) for k, (v, d) in pick.items()}
    out["overridden"] = sorted(k for k, (v, _) in pick.items() if v is not None)
    return out


def fuse(spec: ModelSpec, p_classifier: float, mean_similarity: float) -> float:
    f = spec.fusion
    if f is None:
        raise ValueError("the model carries no fusion parameters")
    p = min(max(p_classifier, 1e-6), 1 - 1e-6)
    z = f.intercept + f.w_logit * math.log(p / (1 - p)) + f.w_similarity * mean_similarity
    return 1 / (1 + math.exp(-z))


def decide(spec: ModelSpec, logits: np.ndarray, cam: np.ndarray, unusable: dict[str, str],
           present: set[str], evidence: Evidence | None = None) -> Verdict:
    p_clf = float(softmax_fake(logits.reshape(1, -1))[0])
    attention = attention_by_view(spec, cam, present)
    t = effective_thresholds(spec, evidence.thresholds if evidence else {})
    reasons: list[dict[str, Any]] = []
    product = f"{evidence.brand}/{evidence.model}" if evidence else "the claimed product"
    has_refs = evidence is not None and evidence.claimed_count > 0 and evidence.mean_top_k is not None
    fused = has_refs and spec.fusion is not None
    p = fuse(spec, p_clf, evidence.mean_top_k) if fused and evidence and evidence.mean_top_k is not None \
        else p_clf
    lo, hi = ((t["authentic_below"], t["counterfeit_above"]) if fused
              else (t["classifier_authentic_below"], t["classifier_counterfeit_above"]))

    blocking = {v: r for v, r in unusable.items() if v in spec.required_views}
    reasons.append({"code": "classifier", "value": round(p_clf, 4), "detail": (
        f"The classifier's counterfeit probability is {p_clf:.3f}.")})
    if evidence is not None and evidence.claimed_count > 0 and evidence.best is not None:
        reasons.append({
            "code": "reference_similarity", "value": round(evidence.best, 4),
            "mean_top_k": round(evidence.mean_top_k or 0.0, 4), "references": evidence.claimed_count,
            "detail": (f"Closest genuine {product} reference: similarity {evidence.best:.3f}; mean of "
                       f"the closest {len(evidence.claimed)}: {evidence.mean_top_k:.3f} "
                       f"({evidence.claimed_count} enrolled).")})
    else:
        reasons.append({"code": "no_references", "detail": (
            f"No genuine references of {product} are enrolled for this model version; the verdict "
            "rests on the classifier alone.")})
        if evidence is not None and evidence.best_other is not None:
            m = evidence.best_other
            reasons.append({"code": "closest_other_product", "value": round(m.similarity, 4),
                            "detail": (f"The closest enrolled reference is a {m.brand}/{m.model} "
                                       f"(similarity {m.similarity:.3f}).")})
    if has_refs and not fused:
        reasons.append({"code": "fusion_unavailable", "detail": (
            "This model carries no fusion parameters; the reference similarity is reported but "
            "the classifier's band decides.")})

    if blocking:
        verdict = "inconclusive"
        for view, why in blocking.items():
            reasons.append({"code": "retake_required", "view": view,
                            "detail": f"The {view} photo is unusable ({why}); retake it."})
    else:
        what = "Combined counterfeit probability" if fused else "Counterfeit probability"
        if p >= hi:
            verdict, code = "counterfeit", "score_counterfeit"
            detail = f"{what} {p:.3f} is at or above {hi:.3f}."
        elif p < lo:
            verdict, code, detail = "authentic", "score_authentic", f"{what} {p:.3f} is below {lo:.3f}."
        else:
            verdict, code = "inconclusive", "score_uncertain"
            detail = (f"{what} {p:.3f} lies in the uncertain band [{lo:.3f}, {hi:.3f}); "
                      "a human review is advised.")
        reasons.append({"code": code, "value": round(p, 4), "detail": detail})
        verdict = _reference_rules(evidence, t, product, verdict, reasons) if has_refs else verdict

    # Where the classifier saw counterfeit evidence — only worth saying when it saw some.
    if verdict != "authentic" and attention and p_clf >= t["classifier_authentic_below"]:
        top = max(attention, key=lambda v: attention[v])
        reasons.append({"code": "attention", "view": top, "share": round(attention[top], 3),
                        "detail": (f"The model's counterfeit evidence is strongest in the {top} "
                                   f"view ({attention[top]:.0%} of it).")})
    for view, why in unusable.items():
        if view not in blocking:
            reasons.append({"code": "optional_view_skipped", "view": view,
                            "detail": f"The optional {view} photo was unusable ({why}) and ignored."})
    reasons.append({"code": "automated_decision", "detail": AUTOMATED_NOTICE})
    confidence = p if verdict == "counterfeit" else 1 - p if verdict == "authentic" else max(p, 1 - p)
    thresholds = {**t, "applied_band": [lo, hi]}
    return Verdict(verdict, p, p_clf, confidence, fused, thresholds, reasons, attention)


def _reference_rules(evidence: Evidence | None, t: dict[str, Any], product: str, verdict: str,
                     reasons: list[dict[str, Any]]) -> str:
    if evidence is None or evidence.best is None:
        return verdict
    floor, margin = t["min_similarity"], t["mismatch_margin"]
    if floor is not None and evidence.best < floor:
        reasons.append({"code": "below_min_similarity", "value": round(evidence.best, 4),
                        "threshold": floor, "detail": (
                            f"Closest genuine reference similarity {evidence.best:.3f} is below the "
                            f"{floor:.3f} threshold for {product}"
                            + ("; the item is not called authentic." if verdict == "authentic" else "."))})
        if verdict == "authentic":
            verdict = "inconclusive"
    other = evidence.best_other
    # A mismatch needs a genuine-looking match elsewhere: close to another product's references
    # (at least the floor) and closer than the claimed product's by the margin.
    if margin is not None and other is not None and other.similarity - evidence.best >= margin \
            and (floor is None or other.similarity >= floor):
        reasons.append({"code": "model_mismatch", "value": round(other.similarity, 4),
                        "brand": other.brand, "model": other.model, "detail": (
                            f"The item matches genuine {other.brand}/{other.model} references "
                            f"(similarity {other.similarity:.3f}) more closely than the claimed "
                            f"{product} ({evidence.best:.3f}); check the claimed model.")})
        if verdict == "authentic":
            verdict = "inconclusive"
    return verdict
