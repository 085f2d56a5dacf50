"""How a report reads: the headline (final verdict, who stands behind it), the automated figures,
retakes and reasons against the verdict, for schema v3 bodies and v2 bodies stored before."""

from __future__ import annotations

from typing import Any

import pytest

from authentiq.web.report_view import against, headline, retakes, when
from tests.conftest import report_body

pytestmark = pytest.mark.db_independent  # the PostgreSQL pass leaves it out

ANA = {"seq": 1, "created_at": "2026-11-22T11:00:00+00:00", "reviewer": "ana", "decision": "override",
       "previous_verdict": "authentic", "verdict": "counterfeit", "reason": "lining glued"}
BO = {"seq": 2, "created_at": "2026-11-23T09:30:00+00:00", "reviewer": "bo", "decision": "confirm",
      "previous_verdict": "counterfeit", "verdict": "counterfeit", "reason": "agreed"}


def reviewed(status: str, final: str, *reviews: dict[str, Any]) -> dict[str, Any]:
    return {"status": status, "final_verdict": final, "version": len(reviews), "reviews": list(reviews)}


INCONCLUSIVE_V2 = report_body(schema_version="2", verdict="inconclusive", confidence=0.955,
                              review=reviewed("unreviewed", "inconclusive"))
del INCONCLUSIVE_V2["retake"], INCONCLUSIVE_V2["fusion"]["p_classifier_calibrated"]


@pytest.mark.parametrize(("body", "decided_by", "automated"), [
    (report_body(), "automated verdict",
     "Confidence 0.970 · p(counterfeit) 0.030 (classifier and reference comparison combined) · "
     "classifier alone 0.050 (0.020 calibrated)"),
    (report_body(verdict="inconclusive", confidence=None,
                 review=reviewed("unreviewed", "inconclusive")), "automated verdict",
     "p(counterfeit) 0.030 (classifier and reference comparison combined) · "
     "classifier alone 0.050 (0.020 calibrated)"),
    (INCONCLUSIVE_V2, "automated verdict",  # v2 stored max(p, 1 - p) there: not shown
     "p(counterfeit) 0.030 (classifier and reference comparison combined) · classifier alone 0.050"),
    (report_body(review=reviewed("overridden", "counterfeit", ANA, BO)),
     "reviewer's verdict (overrides the automated verdict) · by ana · 2026-11-22 11:00 UTC",
     "Automated assessment, not the reviewer's: verdict authentic · confidence 0.970 · "
     "p(counterfeit) 0.030 (classifier and reference comparison combined) · "
     "classifier alone 0.050 (0.020 calibrated)"),
    (report_body(review=reviewed("confirmed", "authentic", BO | {"verdict": "authentic"})),
     "confirmed by bo · 2026-11-23 09:30 UTC",
     "Automated assessment, not the reviewer's: verdict authentic · confidence 0.970 · "
     "p(counterfeit) 0.030 (classifier and reference comparison combined) · "
     "classifier alone 0.050 (0.020 calibrated)"),
], ids=["unreviewed", "inconclusive-v3", "inconclusive-v2", "overridden", "confirmed"])
def test_headline(body: dict[str, Any], decided_by: str, automated: str) -> None:
    h = headline(body)
    assert h.verdict == body["review"]["final_verdict"]
    assert h.decided_by == decided_by
    assert h.automated() == automated


def test_an_override_of_an_inconclusive_verdict_has_no_automated_confidence() -> None:
    body = report_body(verdict="inconclusive", confidence=None,
                       review=reviewed("overridden", "counterfeit", ANA | {"previous_verdict": "inconclusive"}))
    h = headline(body)
    assert (h.verdict, h.automated_verdict, h.confidence) == ("counterfeit", "inconclusive", None)
    assert "confidence" not in h.automated()


def test_retakes_reasons_against_and_times() -> None:
    ask = {"view": "logo", "reason": "wrong_view", "message": "This photo looks like the overall view."}
    assert retakes(report_body(retake=[ask])) == [ask]
    assert retakes(INCONCLUSIVE_V2) == []
    assert against({"code": "classifier", "detail": "x", "stance": "against"})
    assert not against({"code": "classifier", "detail": "x", "stance": None})
    assert when("2026-11-22T12:00:00+01:00") == "2026-11-22 11:00 UTC" and when(None) == ""
