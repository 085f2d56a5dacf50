from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from authentiq.contract.model_spec import FusionParams
from authentiq.pipeline.reference_index import Evidence, Match, ViewEvidence
from authentiq.pipeline.verdict import (
    ProductThresholds,
    attention_by_view,
    decide,
    effective_thresholds,
    fuse,
)
from authentiq.pipeline.view_gate import ViewCheck
from authentiq.pipeline.view_references import ViewMatch
from tests.conftest import tiny_spec

pytestmark = pytest.mark.db_independent  # the PostgreSQL pass leaves it out

SPEC = tiny_spec(thresholds={"authentic_below": 0.2, "counterfeit_above": 0.8})
FUSION = FusionParams(intercept=7.0, w_logit=1.0, w_similarity=-10.0, k=3, authentic_below=0.1,
                      counterfeit_above=0.9, min_similarity=0.7, mismatch_margin=0.05)
FUSED = tiny_spec(thresholds={"authentic_below": 0.2, "counterfeit_above": 0.8}, fusion=FUSION)
CAM = np.zeros((2, 4, 8), np.float32)
CAM[1, :, 4:] = 1.0  # all counterfeit evidence in the right tile ("back")
BOTH = {"front", "back"}


def logits_for(p: float) -> np.ndarray:
    return np.array([0.0, np.log(p / (1 - p))], np.float32)


def evidence(claimed: list[float], others: list[tuple[str, float]] = (), overrides: dict[str, float] | None = None,
             views: ViewEvidence | None = None) -> Evidence:
    return Evidence("tiny@0.0.1", "Verlaine", "Amande", 3, len(claimed),
                    [Match(f"r{i}", "Verlaine", "Amande", s) for i, s in enumerate(claimed)],
                    [Match(f"o{i}", "Castellan", m, s) for i, (m, s) in enumerate(others)],
                    overrides or {}, views or ViewEvidence("checked"))


def codes(v: object) -> list[str]:
    return [r["code"] for r in v.reasons]  # type: ignore[attr-defined]


def test_bands_without_references_say_so() -> None:
    clear = decide(SPEC, logits_for(0.1), CAM, {}, BOTH)
    assert clear.verdict == "inconclusive" and clear.confidence is None  # no authentic without refs
    assert "authentic_needs_references" in codes(clear)
    allowed = decide(SPEC, logits_for(0.1), CAM, {}, BOTH,
                     evidence([], overrides={"allow_classifier_only": True}))
    assert allowed.verdict == "authentic" and allowed.confidence == pytest.approx(0.9)
    assert decide(SPEC, logits_for(0.5), CAM, {}, BOTH).verdict == "inconclusive"
    v = decide(FUSED, logits_for(0.9), CAM, {}, BOTH, evidence([]))
    assert v.verdict == "counterfeit" and not v.fused and v.confidence == pytest.approx(0.9)
    assert "no_references" in codes(v) and v.thresholds["applied_band"] == [0.2, 0.8]


def test_attention_and_reasons() -> None:
    assert attention_by_view(SPEC, CAM, BOTH) == {"front": 0.0, "back": 1.0}
    v = decide(SPEC, logits_for(0.95), CAM, {}, BOTH)
    top = next(r for r in v.reasons if r["code"] == "attention")
    assert top["view"] == "back"
    assert v.reasons[-1]["code"] == "automated_decision"


def test_unusable_required_view_forces_inconclusive() -> None:
    v = decide(SPEC, logits_for(0.01), CAM, {"front": "blurred"}, {"back"})
    assert v.verdict == "inconclusive" and v.confidence is None
    retake = next(r for r in v.reasons if r["code"] == "retake_required")
    assert retake["view"] == "front" and retake["detail"].startswith(
        "The front photo is unusable (blurred); retake it.")
    assert v.retake == [{"view": "front", "reason": "blurred", "message": retake["detail"]}]


def test_unusable_optional_view_is_noted_not_blocking() -> None:
    v = decide(SPEC, logits_for(0.01), CAM, {"back": "glare"}, {"front"},
               evidence([], overrides={"allow_classifier_only": True}))
    assert v.verdict == "authentic" and not v.retake
    assert "optional_view_skipped" in codes(v)


def test_fusion_combines_classifier_and_similarity() -> None:
    # The classifier alone is uncertain (0.5); close genuine references pull it to authentic,
    # distant ones to counterfeit.
    close = decide(FUSED, logits_for(0.5), CAM, {}, BOTH, evidence([0.99, 0.98, 0.97]))
    far = decide(FUSED, logits_for(0.5), CAM, {}, BOTH, evidence([0.2, 0.1, 0.1]))
    assert close.fused and close.verdict == "authentic" and close.p_classifier == pytest.approx(0.5)
    assert close.p_counterfeit == pytest.approx(fuse(FUSED, 0.5, 0.98), abs=1e-6)
    assert close.p_counterfeit < 0.1
    assert far.verdict == "counterfeit" and far.p_counterfeit > 0.9
    sim = next(r for r in far.reasons if r["code"] == "reference_similarity")
    assert sim["value"] == 0.2 and sim["references"] == 3
    assert "below_min_similarity" in codes(far)
    assert fuse(FUSED, 0.5, 0.98) < fuse(FUSED, 0.9, 0.98)  # monotone in the classifier


def test_similarity_floor_keeps_an_item_from_authentic() -> None:
    # Classifier very sure it is genuine, fused score authentic, but nothing genuine looks like it.
    v = decide(FUSED, logits_for(0.0001), CAM, {}, BOTH, evidence([0.65, 0.6, 0.6]))
    assert v.verdict == "inconclusive"
    floor = next(r for r in v.reasons if r["code"] == "below_min_similarity")
    assert "0.650 is below the 0.700 threshold for Verlaine/Amande" in floor["detail"]


def test_model_mismatch_is_a_finding() -> None:
    v = decide(FUSED, logits_for(0.0001), CAM, {}, BOTH,
               evidence([0.80, 0.79, 0.78], others=[("Riva", 0.97)]))
    assert v.verdict == "inconclusive"
    mismatch = next(r for r in v.reasons if r["code"] == "model_mismatch")
    assert mismatch["model"] == "Riva" and "Castellan/Riva" in mismatch["detail"]
    # Within the margin: no finding.
    ok = decide(FUSED, logits_for(0.0001), CAM, {}, BOTH, evidence([0.95, 0.9, 0.9], others=[("Riva", 0.97)]))
    assert ok.verdict == "authentic" and "model_mismatch" not in codes(ok)
    # Nothing genuine-looking elsewhere either (below the floor): not a mismatch, just far from all.
    far = decide(FUSED, logits_for(0.9), CAM, {}, BOTH, evidence([0.1, 0.1, 0.1], others=[("Riva", 0.5)]))
    assert "model_mismatch" not in codes(far) and "below_min_similarity" in codes(far)


def test_product_overrides_replace_model_defaults() -> None:
    ev = evidence([0.65, 0.6, 0.6], overrides={"min_similarity": 0.5, "authentic_below": 0.3})
    v = decide(FUSED, logits_for(0.0001), CAM, {}, BOTH, ev)
    assert v.verdict == "authentic"
    assert v.thresholds["min_similarity"] == 0.5 and v.thresholds["overridden"] == [
        "authentic_below", "min_similarity"]
    t = effective_thresholds(SPEC, {})
    assert t["min_similarity"] is None and t["classifier_authentic_below"] == 0.2
    with pytest.raises(ValidationError):
        ProductThresholds(authentic_below=0.9, counterfeit_above=0.1)
    with pytest.raises(ValidationError):
        ProductThresholds.model_validate({"min_similarty": 0.5})  # typo: refused, not ignored


def test_model_without_fusion_reports_similarity_but_classifier_decides() -> None:
    v = decide(SPEC, logits_for(0.5), CAM, {}, BOTH, evidence([0.99, 0.99, 0.99]))
    assert not v.fused and v.verdict == "inconclusive" and "fusion_unavailable" in codes(v)


def check(view: str, finding: str | None = None, other: str | None = None) -> ViewCheck:
    return ViewCheck(view, 0.5 if finding is None else 3.0, other or view, finding, other)


@pytest.mark.parametrize("finding", ["not_a_product", "wrong_view", "duplicate_view"])
def test_gate_finding_is_never_decided(finding: str) -> None:
    gate = {"front": check("front"), "back": check("back", finding, "front")}
    sure_fake = decide(FUSED, logits_for(0.999), CAM, {}, BOTH, evidence([0.1, 0.1, 0.1]), gate)
    assert sure_fake.verdict == "inconclusive" and sure_fake.confidence is None
    assert sure_fake.retake[0]["view"] == "back" and sure_fake.retake[0]["reason"] == finding
    assert finding in codes(sure_fake)
    assert sure_fake.review, "high counterfeit evidence behind a retake goes to a person"
    sure_real = decide(FUSED, logits_for(0.001), CAM, {}, BOTH, evidence([0.99, 0.99, 0.99]), gate)
    assert sure_real.verdict == "inconclusive" and not sure_real.review


@pytest.mark.parametrize(("p", "similarity", "expected"), [
    (0.001, 0.99, []),  # a clear authentic: nothing to look at
    (0.999, 0.1, []),  # a strong counterfeit with the gate on
    (0.97, 0.75, ["the counterfeit evidence is not strong"]),  # a weak counterfeit (fused ≈ 0.95)
    (0.5, 0.85, ["the evidence lies in the uncertain band"]),
])
def test_review_queue_reasons(p: float, similarity: float, expected: list[str]) -> None:
    gate = {"front": check("front"), "back": check("back")}
    v = decide(FUSED, logits_for(p), CAM, {}, BOTH, evidence([similarity] * 3), gate)
    assert [why.split(" (")[0] for why in v.review] == expected, (v.verdict, v.p_counterfeit, v.review)
    assert ("review_advised" in codes(v)) is bool(expected)


def test_model_without_gate_says_so() -> None:
    v = decide(FUSED, logits_for(0.999), CAM, {}, BOTH, evidence([0.1, 0.1, 0.1]))
    assert v.verdict == "counterfeit" and "gate_unavailable" in codes(v) and v.review


def test_flat_attention_names_no_view() -> None:
    flat = np.ones((2, 4, 8), np.float32)
    v = decide(SPEC, logits_for(0.95), flat, {}, BOTH)
    assert v.verdict == "counterfeit" and "attention" not in codes(v)
    zero = decide(SPEC, logits_for(0.95), np.zeros((2, 4, 8), np.float32), {}, BOTH)
    assert "attention" not in codes(zero)


def test_reason_against_the_verdict_is_marked() -> None:
    # close references pull an item the classifier leaned against (0.6) to authentic
    v = decide(FUSED, logits_for(0.6), CAM, {}, BOTH, evidence([0.99, 0.99, 0.99]))
    assert v.verdict == "authentic"
    clf = next(r for r in v.reasons if r["code"] == "classifier")
    assert clf["stance"] == "against" and "argues against the verdict" in clf["detail"]
    assert all("stance" not in r for r in v.reasons if r["code"] != "classifier")


def test_mismatch_is_checked_without_claimed_references() -> None:
    v = decide(FUSED, logits_for(0.01), CAM, {}, BOTH, evidence([], [("Riva", 0.95)]))
    assert v.verdict == "inconclusive" and "model_mismatch" in codes(v) and v.review
    unlike = decide(FUSED, logits_for(0.01), CAM, {}, BOTH, evidence([], [("Riva", 0.3)]))
    assert "model_mismatch" not in codes(unlike)


def test_confidence_is_the_calibrated_probability_of_the_verdict() -> None:
    hot = tiny_spec(thresholds={"authentic_below": 0.2, "counterfeit_above": 0.8},
                    calibration={"temperature": 2.0})
    v = decide(hot, logits_for(0.9), CAM, {}, BOTH)
    assert v.verdict == "counterfeit" and v.p_classifier == pytest.approx(0.9)
    assert v.confidence == pytest.approx(1 / (1 + 9 ** -0.5)) == v.p_counterfeit  # logit halved


def test_unusable_optional_view_is_asked_for_when_the_item_is_undecided() -> None:
    v = decide(SPEC, logits_for(0.5), CAM, {"back": "glare"}, {"front"})
    assert v.verdict == "inconclusive"
    assert v.retake == [{"view": "back", "reason": "glare", "message": (
        "The optional back photo is unusable (glare); retake it or leave it out. "
        "Tilt the item or the camera to avoid reflections.")}]


def view_evidence(*unlike: str, other: str | None = None) -> ViewEvidence:
    matches = [ViewMatch("front", 0.9, "r0", 0.4), ViewMatch("back", 0.9, "r1", 0.4)]
    return ViewEvidence("checked", [
        ViewMatch(m.view, 0.1, m.reference_id, 0.4, "unlike_references", other,
                  0.8 if other else None) if m.view in unlike else m for m in matches])


def test_a_photo_unlike_the_references_is_never_authentic() -> None:
    """Everything else says authentic; one photo unlike the claimed product's references makes
    it inconclusive, asks for that photo again and sends the item to a person."""
    gate = {"front": check("front"), "back": check("back")}
    clean = decide(FUSED, logits_for(0.001), CAM, {}, BOTH,
                   evidence([0.99] * 3, views=view_evidence()), gate)
    assert clean.verdict == "authentic" and "unlike_references" not in codes(clean)
    v = decide(FUSED, logits_for(0.001), CAM, {}, BOTH,
               evidence([0.99] * 3, views=view_evidence("back")), gate)
    assert v.verdict == "inconclusive" and v.confidence is None
    reason = next(r for r in v.reasons if r["code"] == "unlike_references")
    assert reason["view"] == "back" and reason["value"] == 0.1 and reason["threshold"] == 0.4
    assert "below the view's floor 0.400" in reason["detail"]
    assert "not called authentic" in reason["detail"]
    assert v.retake == [{"view": "back", "reason": "unlike_references", "message": (
        "This photo does not look like the back of the genuine Verlaine/Amande references. If it "
        "is a photo of this item, a reviewer will compare it; if not, photograph this item's back "
        "and upload it again.")}]
    assert v.review == ["the back photo is unlike the genuine references"]
    closer = decide(FUSED, logits_for(0.001), CAM, {}, BOTH,
                    evidence([0.99] * 3, views=view_evidence("back", other="Castellan/Riva")), gate)
    detail = next(r for r in closer.reasons if r["code"] == "unlike_references")["detail"]
    assert detail.startswith("The back photo looks more like the back of genuine Castellan/Riva "
                             "references (similarity 0.800)")


def test_a_counterfeit_stands_with_its_unlike_view_among_the_reasons() -> None:
    """A counterfeit's flawed view is unlike the genuine references too: the verdict stands, the
    view is named, and nothing is to be retaken."""
    gate = {"front": check("front"), "back": check("back")}
    v = decide(FUSED, logits_for(0.999), CAM, {}, BOTH,
               evidence([0.1] * 3, views=view_evidence("front")), gate)
    assert v.verdict == "counterfeit" and not v.retake and not v.review
    assert next(r for r in v.reasons if r["code"] == "unlike_references")["view"] == "front"
    # a view the gate already refused is asked for once, for the gate's reason
    refused = {"front": check("front", "not_a_product"), "back": check("back")}
    both = decide(FUSED, logits_for(0.001), CAM, {}, BOTH,
                  evidence([0.99] * 3, views=view_evidence("front")), refused)
    assert [r["reason"] for r in both.retake] == ["not_a_product"]
    assert "unlike_references" not in codes(both)


@pytest.mark.parametrize(("views", "says"), [
    (ViewEvidence("not_filled", lacking=2), "2 of its 3 references have no per-view "
                                            "descriptors from this model's check yet"),
    (ViewEvidence("unavailable"), "This model carries no per-view reference check"),
])
def test_a_skipped_view_check_is_said(views: ViewEvidence, says: str) -> None:
    v = decide(FUSED, logits_for(0.001), CAM, {}, BOTH, evidence([0.99] * 3, views=views),
               {"front": check("front"), "back": check("back")})
    assert v.verdict == "authentic"  # the whole-item evidence still decides
    skipped = next(r for r in v.reasons if r["code"] == "view_check_skipped")
    assert says in skipped["detail"]
    assert "view_check_skipped" not in codes(decide(
        FUSED, logits_for(0.001), CAM, {}, BOTH, evidence([0.99] * 3)))  # checked: nothing to say
    none = decide(FUSED, logits_for(0.001), CAM, {}, BOTH,
                  evidence([], views=ViewEvidence("no_references")))
    no_refs = next(r for r in none.reasons if r["code"] == "no_references")["detail"]
    assert no_refs.endswith("nor could each photo be compared with the same view of genuine "
                            "references.")
