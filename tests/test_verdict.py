from __future__ import annotations

import numpy as np

from authentiq.verdict import attention_by_view, decide
from tests.conftest import tiny_spec

SPEC = tiny_spec(thresholds={"authentic_below": 0.2, "counterfeit_above": 0.8})
CAM = np.zeros((2, 4, 8), np.float32)
CAM[1, :, 4:] = 1.0  # all counterfeit evidence in the right tile ("back")


def logits_for(p: float) -> np.ndarray:
    return np.array([0.0, np.log(p / (1 - p))], np.float32)


def test_bands() -> None:
    both = {"front", "back"}
    assert decide(SPEC, logits_for(0.1), CAM, {}, both).verdict == "authentic"
    assert decide(SPEC, logits_for(0.5), CAM, {}, both).verdict == "inconclusive"
    assert decide(SPEC, logits_for(0.9), CAM, {}, both).verdict == "counterfeit"


def test_attention_and_reasons() -> None:
    assert attention_by_view(SPEC, CAM, {"front", "back"}) == {"front": 0.0, "back": 1.0}
    v = decide(SPEC, logits_for(0.95), CAM, {}, {"front", "back"})
    top = next(r for r in v.reasons if r["code"] == "attention")
    assert top["view"] == "back"
    assert v.reasons[-1]["code"] == "automated_decision"


def test_unusable_required_view_forces_inconclusive() -> None:
    v = decide(SPEC, logits_for(0.01), CAM, {"front": "blurred"}, {"back"})
    assert v.verdict == "inconclusive"
    assert v.reasons[0] == {"code": "retake_required", "view": "front",
                            "detail": "The front photo is unusable (blurred); retake it."}


def test_unusable_optional_view_is_noted_not_blocking() -> None:
    v = decide(SPEC, logits_for(0.01), CAM, {"back": "glare"}, {"front"})
    assert v.verdict == "authentic"
    assert any(r["code"] == "optional_view_skipped" for r in v.reasons)
