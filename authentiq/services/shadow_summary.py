"""What a shadow evaluation found: the candidate's verdicts against the served ones.

One :class:`Outcome` per inspection (re-scored from its stored photos, or scored live beside the
served model); :func:`summarise` counts agreement overall and per product, the verdict-change
matrix, and — on the inspections a person reviewed — how often each model's verdict equals the
reviewer's final verdict. Pure: no model, no database.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

VERDICTS = ("authentic", "counterfeit", "inconclusive")


@dataclass(frozen=True)
class Outcome:
    """One inspection: the served verdict, the candidate's (None: not scored, ``error``
    says why) and the reviewer's final verdict (None: not reviewed)."""

    report_id: str
    brand: str
    model: str
    served: str
    candidate: str | None
    reviewed: str | None = None
    p_counterfeit: float | None = None
    error: str | None = None

    @property
    def product(self) -> str:
        return f"{self.brand} / {self.model}"


@dataclass(frozen=True)
class ProductFigures:
    scored: int
    agree: int
    changes: dict[str, int]  # "served → candidate": count, disagreements only

    @property
    def agreement(self) -> float | None:
        return self.agree / self.scored if self.scored else None


@dataclass(frozen=True)
class ReviewedFigures:
    """On the reviewed inspections the candidate scored: each model's verdict against the
    reviewer's final one. ``*_inconclusive``: left to a person (never counted correct unless
    the reviewer's final verdict is inconclusive too)."""

    cases: int
    served_correct: int
    candidate_correct: int
    served_inconclusive: int
    candidate_inconclusive: int

    @property
    def served_accuracy(self) -> float | None:
        return self.served_correct / self.cases if self.cases else None

    @property
    def candidate_accuracy(self) -> float | None:
        return self.candidate_correct / self.cases if self.cases else None


@dataclass(frozen=True)
class Summary:
    candidate: str  # model id and name@version
    scored: int
    agree: int
    not_scored: dict[str, int]  # why an inspection was not scored → count (not in the figures)
    matrix: dict[str, dict[str, int]]  # served → candidate → count
    products: dict[str, ProductFigures]
    reviewed: ReviewedFigures
    changed: list[Outcome] = field(default_factory=list)  # the inspections whose verdict changes
    extra: dict[str, Any] = field(default_factory=dict)  # what was scored: window, tenant ...

    @property
    def agreement(self) -> float | None:
        return self.agree / self.scored if self.scored else None

    def as_dict(self) -> dict[str, Any]:
        r = self.reviewed
        return {
            **self.extra, "candidate": self.candidate, "scored": self.scored,
            "agree": self.agree, "agreement": _round(self.agreement),
            "not_scored": dict(self.not_scored), "matrix": self.matrix,
            "products": {name: {"scored": p.scored, "agree": p.agree,
                                "agreement": _round(p.agreement), "changes": p.changes}
                         for name, p in self.products.items()},
            "reviewed": {"cases": r.cases, "served_correct": r.served_correct,
                         "candidate_correct": r.candidate_correct,
                         "served_accuracy": _round(r.served_accuracy),
                         "candidate_accuracy": _round(r.candidate_accuracy),
                         "served_inconclusive": r.served_inconclusive,
                         "candidate_inconclusive": r.candidate_inconclusive},
            "changed": [{"report_id": o.report_id, "product": o.product, "served": o.served,
                         "candidate": o.candidate, "p_counterfeit": o.p_counterfeit,
                         "reviewed": o.reviewed} for o in self.changed],
        }


def summarise(outcomes: list[Outcome], candidate: str, **extra: Any) -> Summary:
    scored = [o for o in outcomes if o.candidate is not None]
    not_scored = Counter(o.error or "not scored" for o in outcomes if o.candidate is None)
    matrix = {s: {c: 0 for c in VERDICTS} for s in VERDICTS}
    per_product: dict[str, list[Outcome]] = {}
    for o in scored:
        row = matrix.setdefault(o.served, {c: 0 for c in VERDICTS})
        row[str(o.candidate)] = row.get(str(o.candidate), 0) + 1
        per_product.setdefault(o.product, []).append(o)
    products = {}
    for name in sorted(per_product):
        items = per_product[name]
        changes = Counter(f"{o.served} → {o.candidate}" for o in items if o.served != o.candidate)
        products[name] = ProductFigures(len(items), sum(o.served == o.candidate for o in items),
                                        dict(sorted(changes.items())))
    reviewed = [o for o in scored if o.reviewed is not None]
    figures = ReviewedFigures(
        len(reviewed), sum(o.served == o.reviewed for o in reviewed),
        sum(o.candidate == o.reviewed for o in reviewed),
        sum(o.served == "inconclusive" for o in reviewed),
        sum(o.candidate == "inconclusive" for o in reviewed))
    return Summary(candidate, len(scored), sum(o.served == o.candidate for o in scored),
                   dict(not_scored), matrix, products, figures,
                   [o for o in scored if o.served != o.candidate], dict(extra))


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)
