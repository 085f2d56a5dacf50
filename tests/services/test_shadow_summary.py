"""The shadow's figures from outcomes written out by hand: agreement, the change matrix, per
product, reviewed cases, refusals."""

from __future__ import annotations

from authentiq.services.shadow_summary import Outcome, summarise


def o(n: int, served: str, candidate: str | None, reviewed: str | None = None,
      product: str = "Riva", error: str | None = None) -> Outcome:
    return Outcome(f"r{n}", "Castellan", product, served, candidate, reviewed, 0.5, error)


def test_summary_counts_agreement_changes_and_reviewed_accuracy() -> None:
    outcomes = [
        o(1, "authentic", "authentic", reviewed="authentic"),
        o(2, "authentic", "inconclusive", reviewed="authentic"),
        o(3, "counterfeit", "counterfeit", reviewed="authentic"),  # both wrong
        o(4, "inconclusive", "counterfeit", reviewed="counterfeit", product="Lumen"),
        o(5, "counterfeit", "counterfeit", product="Lumen"),
        o(6, "authentic", None, error="Unsupported product"),
        o(7, "authentic", None, error="Unsupported product"),
    ]
    s = summarise(outcomes, "abc (m@2)", since="2026-11-24")
    assert (s.scored, s.agree, s.agreement) == (5, 3, 0.6)
    assert s.not_scored == {"Unsupported product": 2}
    assert s.matrix["authentic"] == {"authentic": 1, "counterfeit": 0, "inconclusive": 1}
    assert s.matrix["inconclusive"]["counterfeit"] == 1 and s.matrix["counterfeit"]["counterfeit"] == 2
    assert sum(sum(row.values()) for row in s.matrix.values()) == s.scored
    assert list(s.products) == ["Castellan / Lumen", "Castellan / Riva"]
    lumen, riva = s.products["Castellan / Lumen"], s.products["Castellan / Riva"]
    assert (lumen.scored, lumen.agree, lumen.changes) == (2, 1, {"inconclusive → counterfeit": 1})
    assert (riva.scored, riva.agree, riva.changes) == (3, 2, {"authentic → inconclusive": 1})
    r = s.reviewed
    assert (r.cases, r.served_correct, r.candidate_correct) == (4, 2, 2)
    assert (r.served_inconclusive, r.candidate_inconclusive) == (1, 1)
    assert [c.report_id for c in s.changed] == ["r2", "r4"]
    as_json = s.as_dict()
    assert as_json["since"] == "2026-11-24" and as_json["reviewed"]["candidate_accuracy"] == 0.5
    assert as_json["changed"][1] == {"report_id": "r4", "product": "Castellan / Lumen",
                                     "served": "inconclusive", "candidate": "counterfeit",
                                     "p_counterfeit": 0.5, "reviewed": "counterfeit"}


def test_nothing_to_compare_gives_no_rates() -> None:
    s = summarise([o(1, "authentic", None, error="photos no longer stored")], "abc (m@2)")
    assert (s.scored, s.agreement, s.reviewed.cases, s.reviewed.candidate_accuracy) == (0, None, 0, None)
    assert s.as_dict()["agreement"] is None and s.products == {}
