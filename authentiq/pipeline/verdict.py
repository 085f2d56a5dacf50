"""Verdict fusion: classifier score + reference comparison + per-view checks → verdict with reasons.

Order of the rules, each stated in the reasons with the numbers behind it:

1. A required view that failed the quality check, or any photo the view gate refuses
   (``not_a_product``, ``wrong_view``, ``duplicate_view``, ``misoriented_view``,
   ``degraded_view``: :mod:`authentiq.pipeline.view_gate`) →
   inconclusive with a retake request naming the view: the model did not see what it needs,
   whatever the scores say.
2. With genuine references of the claimed product and a model that carries fusion parameters,
   the classifier's probability and the mean similarity to the closest references combine into
   one calibrated probability (``FusionParams``), compared with the fused band. Without either,
   the classifier's own band decides, and the reasons say so — never silently.
3. No "authentic" without evidence: an item is called authentic only when genuine references of
   the claimed product are enrolled and the closest is at least ``min_similarity`` alike —
   unless the product allows classifier-only verdicts (``allow_classifier_only``). An item that
   matches another product's references (at least the floor, and better than the claimed
   product's by ``mismatch_margin``) is reported as a model mismatch and is not called
   authentic; this comparison runs whether or not the claimed product has references.
4. Each usable photo is also compared with the same view of the claimed product's references
   (:mod:`authentiq.pipeline.view_references`). A photo unlike them (``unlike_references``) is
   evidence *against authenticity*, not for a counterfeit: the item is never called authentic
   then (inconclusive, a retake request naming the view, and the review queue), while a
   counterfeit verdict stands with the view named among its reasons — a counterfeit's flawed
   view is unlike the genuine references too (about half of held-out counterfeits have one), so
   making every such item inconclusive would abstain on most counterfeits. When the check could
   not run (no references, references enrolled before their per-view features were kept, a model
   without it), the reasons say so.

``confidence`` is the calibrated probability of the stated verdict: the fused probability (a
logistic regression fitted on held-out items) or, without references, the classifier's
temperature-scaled probability (``ModelSpec.calibration``). An inconclusive verdict has none.
Reasons that argue against the stated verdict carry ``"stance": "against"``.

Thresholds come from the model (``ModelSpec.thresholds`` / ``ModelSpec.fusion``) unless the
product carries overrides in the database (``PUT /v1/products/{brand}/{model}``). Attention
shares come from the counterfeit-class CAM: an explanation of where the model looked, not proof
of where a flaw is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from authentiq.contract.model_spec import ModelSpec, softmax_fake
from authentiq.contract.report import ReasonCode
from authentiq.pipeline.quality import RETAKE_HINTS
from authentiq.pipeline.reference_index import Evidence
from authentiq.pipeline.stitch import cell_of
from authentiq.pipeline.view_gate import FINDINGS, ViewCheck
from authentiq.pipeline.view_references import FINDING as UNLIKE
from authentiq.pipeline.view_references import MESSAGE as UNLIKE_MESSAGE
from authentiq.pipeline.view_references import ViewMatch

AUTOMATED_NOTICE = (
    "This verdict was produced by automated means (an image classifier and a comparison with "
    "enrolled genuine references); it can be reviewed and overridden by a human auditor. "
    "Heatmaps show where the model looked, not proof of a flaw."
)
# A counterfeit verdict whose confidence is below this goes to the review queue as weak evidence.
REVIEW_WEAK_COUNTERFEIT = 0.99
# Attention is flat (no view stands out) when the top view's share is below this multiple of an
# even share; then no reason names a view.
ATTENTION_CONTRAST = 1.5


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
    allow_classifier_only: bool | None = Field(
        None, description="true: an item of this product may be called authentic on the "
                          "classifier alone while no genuine references are enrolled (default false)")

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
    p_counterfeit: float  # calibrated probability the verdict rests on (fused when fusion applied)
    p_classifier: float  # the classifier's own softmax
    p_classifier_calibrated: float  # ... after the model's temperature
    confidence: float | None  # calibrated probability of the stated verdict; None if inconclusive
    fused: bool
    thresholds: dict[str, Any]
    reasons: list[dict[str, Any]]
    attention: dict[str, float]  # view → share of positive counterfeit evidence
    retake: list[dict[str, str]] = field(default_factory=list)  # {view, reason, message}
    review: list[str] = field(default_factory=list)  # why a person should look; empty: no need


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


def calibrated(spec: ModelSpec, p: float) -> float:
    """The classifier's probability after the model's temperature (unchanged without one)."""
    if spec.calibration is None:
        return p
    q = min(max(p, 1e-12), 1 - 1e-12)
    z = math.log(q / (1 - q)) / spec.calibration.temperature
    return 0.0 if z < -700 else 1 / (1 + math.exp(-z))


def effective_thresholds(spec: ModelSpec, overrides: dict[str, Any]) -> dict[str, Any]:
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
        "allow_classifier_only": (o.allow_classifier_only, False),
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
           present: set[str], evidence: Evidence | None = None,
           gate: dict[str, ViewCheck] | None = None) -> Verdict:
    """``gate``: the view gate's checks of the present photos; None: the model has no gate."""
    p_clf = float(softmax_fake(logits.reshape(1, -1))[0])
    p_cal = calibrated(spec, p_clf)
    attention = attention_by_view(spec, cam, present)
    t = effective_thresholds(spec, evidence.thresholds if evidence else {})
    reasons: list[dict[str, Any]] = []
    product = f"{evidence.brand}/{evidence.model}" if evidence else "the claimed product"
    has_refs = evidence is not None and evidence.claimed_count > 0 and evidence.mean_top_k is not None
    fused = has_refs and spec.fusion is not None
    p = fuse(spec, p_clf, evidence.mean_top_k) if fused and evidence and evidence.mean_top_k is not None \
        else p_cal
    lo, hi = ((t["authentic_below"], t["counterfeit_above"]) if fused
              else (t["classifier_authentic_below"], t["classifier_counterfeit_above"]))
    raw_band = not fused  # the classifier's band is set on its uncalibrated probability

    retake = _retakes(spec, unusable, gate)
    blocking = {r["view"] for r in retake}
    unlike = [m for m in evidence.views.unlike if m.view not in blocking] if evidence else []
    reasons.append({"code": ReasonCode.CLASSIFIER, "value": round(p_clf, 4), "detail": (
        f"The classifier's counterfeit probability is {p_clf:.3f}"
        + (f" ({p_cal:.3f} calibrated)." if spec.calibration is not None else "."))})
    _evidence_reasons(evidence, has_refs, fused, product, reasons)
    if gate is None:
        reasons.append({"code": ReasonCode.GATE_UNAVAILABLE, "detail": (
            "This model carries no view gate, so whether each photo shows the view it should, "
            "of an item like those the model knows, was not checked.")})

    if blocking:
        verdict = "inconclusive"
        for r in retake:
            code = ReasonCode(r["reason"]) if r["reason"] in FINDINGS else ReasonCode.RETAKE_REQUIRED
            reasons.append({"code": code, "view": r["view"], "detail": r["message"]})
    else:
        what = "Combined counterfeit probability" if fused else "Counterfeit probability"
        score = p_clf if raw_band else p
        shown = f"{p:.3f}" if not raw_band or spec.calibration is None else \
            f"{p_clf:.3f} (uncalibrated)"
        if score >= hi:
            verdict, code, detail = "counterfeit", ReasonCode.SCORE_COUNTERFEIT, \
                f"{what} {shown} is at or above {hi:.3f}."
        elif score < lo:
            verdict, code, detail = "authentic", ReasonCode.SCORE_AUTHENTIC, \
                f"{what} {shown} is below {lo:.3f}."
        else:
            verdict, code = "inconclusive", ReasonCode.SCORE_UNCERTAIN
            detail = (f"{what} {shown} lies in the uncertain band [{lo:.3f}, {hi:.3f}); "
                      "a human review is advised.")
        reasons.append({"code": code, "value": round(p, 4), "detail": detail})
        verdict = _reference_rules(evidence, t, product, verdict, reasons)
        if verdict == "authentic" and not has_refs and not t["allow_classifier_only"]:
            verdict = "inconclusive"
            reasons.append({"code": ReasonCode.AUTHENTIC_NEEDS_REFERENCES, "detail": (
                f"The classifier alone would call this item authentic, but no genuine {product} "
                "references are enrolled to support it; the service does not call an item "
                "authentic without them. Enrol genuine references of this product to decide such "
                "items.")})
    demoted = bool(unlike) and verdict == "authentic"
    if demoted:  # the photos do not all look like the genuine references
        verdict = "inconclusive"
    _unlike_reasons(unlike, product, verdict, demoted, reasons, retake)

    _attention_reason(verdict, attention, p_clf, t, reasons)
    for view, why in unusable.items():
        if view not in blocking:
            reasons.append({"code": ReasonCode.OPTIONAL_VIEW_SKIPPED, "view": view,
                            "detail": f"The optional {view} photo was unusable ({why}) and ignored."})
            if verdict == "inconclusive":  # a better photo of it may be what decides the item
                retake.append({"view": view, "reason": why, "message": (
                    f"The optional {view} photo is unusable ({why}); retake it or leave it out. "
                    f"{RETAKE_HINTS.get(why, '')}").strip()})
    review = _review(verdict, p, hi, bool(blocking), gate is None, reasons)
    if unlike and verdict != "counterfeit":
        review.append(f"the {', '.join(m.view for m in unlike)} photo"
                      f"{'s are' if len(unlike) > 1 else ' is'} unlike the genuine references")
    if review:
        reasons.append({"code": ReasonCode.REVIEW_ADVISED, "detail": "Sent to the review queue: "
                        + "; ".join(review) + "."})
    reasons.append({"code": ReasonCode.AUTOMATED_DECISION, "detail": AUTOMATED_NOTICE})
    _mark_against(verdict, p_clf, t, evidence, reasons)
    confidence = p if verdict == "counterfeit" else 1 - p if verdict == "authentic" else None
    thresholds = {**t, "applied_band": [lo, hi],
                  "band_applies_to": "p_classifier" if raw_band else "p_fused"}
    return Verdict(verdict, p, p_clf, p_cal, confidence, fused, thresholds, reasons, attention,
                   retake, review)


def _retakes(spec: ModelSpec, unusable: dict[str, str], gate: dict[str, ViewCheck] | None
             ) -> list[dict[str, str]]:
    """Views to photograph again: unusable required photos, then gate findings, model order."""
    out = []
    for view in spec.view_names:
        if view in unusable and view in spec.required_views:
            why = unusable[view]
            out.append({"view": view, "reason": why, "message": (
                f"The {view} photo is unusable ({why}); retake it. {RETAKE_HINTS.get(why, '')}"
            ).strip()})
        elif gate is not None and view in gate and gate[view].finding is not None:
            check = gate[view]
            out.append({"view": view, "reason": str(check.finding), "message": str(check.message)})
    return out


def _evidence_reasons(evidence: Evidence | None, has_refs: bool, fused: bool, product: str,
                      reasons: list[dict[str, Any]]) -> None:
    if evidence is not None and has_refs and evidence.best is not None:
        reasons.append({
            "code": ReasonCode.REFERENCE_SIMILARITY, "value": round(evidence.best, 4),
            "mean_top_k": round(evidence.mean_top_k or 0.0, 4), "references": evidence.claimed_count,
            "detail": (f"Closest genuine {product} reference: similarity {evidence.best:.3f}; mean of "
                       f"the closest {len(evidence.claimed)}: {evidence.mean_top_k:.3f} "
                       f"({evidence.claimed_count} enrolled).")})
        _view_check_skipped(evidence, product, reasons)
    else:
        reasons.append({"code": ReasonCode.NO_REFERENCES, "detail": (
            f"No genuine references of {product} are enrolled for this model version; the "
            "classifier alone scores the item, and it is not called authentic on that alone"
            + ("; nor could each photo be compared with the same view of genuine references."
               if evidence is not None and evidence.views.status == "no_references" else "."))})
        if evidence is not None and evidence.best_other is not None:
            m = evidence.best_other
            reasons.append({"code": ReasonCode.CLOSEST_OTHER_PRODUCT, "value": round(m.similarity, 4),
                            "detail": (f"The closest enrolled reference is a {m.brand}/{m.model} "
                                       f"(similarity {m.similarity:.3f}).")})
    if has_refs and not fused:
        reasons.append({"code": ReasonCode.FUSION_UNAVAILABLE, "detail": (
            "This model carries no fusion parameters; the reference similarity is reported but "
            "the classifier's band decides.")})


def _view_check_skipped(evidence: Evidence, product: str, reasons: list[dict[str, Any]]) -> None:
    """Say why the photos were not compared view by view with the references, when they were
    not: never pass silently as if checked."""
    views = evidence.views
    if views.status == "not_filled":
        reasons.append({"code": ReasonCode.VIEW_CHECK_SKIPPED, "value": views.lacking, "detail": (
            f"The photos were not compared view by view with the genuine {product} references: "
            f"{views.lacking} of its {evidence.claimed_count} references have no per-view "
            "descriptors from this model's check yet (enrolled before they were kept, or by "
            "another fit of the check); run `authentiq re-embed` to add them.")})
    elif views.status == "unavailable":
        reasons.append({"code": ReasonCode.VIEW_CHECK_SKIPPED, "detail": (
            "This model carries no per-view reference check, so the photos were not compared "
            f"view by view with the genuine {product} references.")})


def _unlike_reasons(unlike: list[ViewMatch], product: str, verdict: str, demoted: bool,
                    reasons: list[dict[str, Any]], retake: list[dict[str, str]]) -> None:
    """A reason per photo unlike the references; a retake request unless the item is decided
    counterfeit (then the photo is part of the evidence, not a photo to replace)."""
    for m in unlike:
        if m.other_product is not None and m.other_similarity is not None:
            why = (f"The {m.view} photo looks more like the {m.view} of genuine "
                   f"{m.other_product} references (similarity {m.other_similarity:.3f}) than "
                   f"like any genuine {product} reference ({m.similarity:.3f}).")
        else:
            why = (f"The {m.view} photo is unlike the {m.view} of every genuine {product} "
                   f"reference (closest similarity {m.similarity:.3f}, below the view's floor "
                   f"{m.floor:.3f}).")
        if demoted:
            why += " The item is not called authentic with it."
        reasons.append({"code": ReasonCode.UNLIKE_REFERENCES, "view": m.view,
                        "value": m.similarity, "threshold": m.floor, "detail": why})
        if verdict != "counterfeit":
            retake.append({"view": m.view, "reason": UNLIKE,
                           "message": UNLIKE_MESSAGE.format(view=m.view, product=product)})


def _attention_reason(verdict: str, attention: dict[str, float], p_clf: float, t: dict[str, Any],
                      reasons: list[dict[str, Any]]) -> None:
    """Where the classifier saw counterfeit evidence — only when it saw some, somewhere."""
    if verdict == "authentic" or not attention or p_clf < t["classifier_authentic_below"]:
        return
    top = max(attention, key=lambda v: attention[v])
    share = attention[top]
    if share <= 0 or share < ATTENTION_CONTRAST / len(attention):
        return  # flat or no positive evidence: naming a view would say nothing true
    reasons.append({"code": ReasonCode.ATTENTION, "view": top, "share": round(share, 3),
                    "detail": (f"The model's counterfeit evidence is strongest in the {top} "
                               f"view ({share:.0%} of it).")})


def _review(verdict: str, p: float, counterfeit_above: float, retake: bool, no_gate: bool,
            reasons: list[dict[str, Any]]) -> list[str]:
    """Why a person should look; an item that must be retaken goes to the queue only when its
    counterfeit evidence would have called it counterfeit (``counterfeit_above``)."""
    codes = {r["code"] for r in reasons}
    why = []
    if verdict == "counterfeit" and p < REVIEW_WEAK_COUNTERFEIT:
        why.append(f"the counterfeit evidence is not strong (probability {p:.3f})")
    if verdict == "counterfeit" and no_gate:
        why.append("counterfeit, and the photos were not checked by a view gate")
    if verdict == "inconclusive" and retake and p >= counterfeit_above:
        why.append(f"photos must be retaken, yet the counterfeit probability is {p:.3f}")
    if "model_mismatch" in codes:
        why.append("the item looks like another product than the one claimed")
    if "below_min_similarity" in codes and verdict != "counterfeit":
        why.append("the item is unlike the enrolled genuine references")
    if verdict == "inconclusive" and "score_uncertain" in codes:
        why.append("the evidence lies in the uncertain band")
    return why


def _mark_against(verdict: str, p_clf: float, t: dict[str, Any], evidence: Evidence | None,
                  reasons: list[dict[str, Any]]) -> None:
    """Tag the reasons whose numbers point the other way than the stated verdict."""
    if verdict not in ("authentic", "counterfeit"):
        return
    for r in reasons:
        against = False
        if r["code"] == ReasonCode.CLASSIFIER:
            against = (p_clf >= 0.5) != (verdict == "counterfeit")
        elif r["code"] == ReasonCode.REFERENCE_SIMILARITY and verdict == "counterfeit" \
                and evidence is not None:
            floor = t["min_similarity"]
            against = floor is not None and evidence.best is not None and evidence.best >= floor
        if against:
            r["stance"] = "against"
            r["detail"] += " This argues against the verdict; the combined evidence outweighs it."


def _reference_rules(evidence: Evidence | None, t: dict[str, Any], product: str, verdict: str,
                     reasons: list[dict[str, Any]]) -> str:
    if evidence is None:
        return verdict
    floor, margin = t["min_similarity"], t["mismatch_margin"]
    best = evidence.best
    if floor is not None and best is not None and best < floor:
        reasons.append({"code": ReasonCode.BELOW_MIN_SIMILARITY, "value": round(best, 4),
                        "threshold": floor, "detail": (
                            f"Closest genuine reference similarity {best:.3f} is below the "
                            f"{floor:.3f} threshold for {product}"
                            + ("; the item is not called authentic." if verdict == "authentic" else "."))})
        if verdict == "authentic":
            verdict = "inconclusive"
    other = evidence.best_other
    # A mismatch needs a genuine-looking match elsewhere: close to another product's references
    # (at least the floor) and closer than the claimed product's by the margin — or the claimed
    # product has no references at all to compare with.
    closer = best is None or (margin is not None and other is not None
                              and other.similarity - best >= margin)
    genuine_looking = other is not None and (
        other.similarity >= floor if floor is not None else best is not None)
    if other is not None and closer and genuine_looking:
        ours = f"({best:.3f})" if best is not None else "(no references enrolled)"
        reasons.append({"code": ReasonCode.MODEL_MISMATCH, "value": round(other.similarity, 4),
                        "brand": other.brand, "model": other.model, "detail": (
                            f"The item matches genuine {other.brand}/{other.model} references "
                            f"(similarity {other.similarity:.3f}) more closely than the claimed "
                            f"{product} {ours}; check the claimed model.")})
        if verdict == "authentic":
            verdict = "inconclusive"
    return verdict
