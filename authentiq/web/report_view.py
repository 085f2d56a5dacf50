"""How a stored report reads to a person: the auditor page, the PDF and ``authentiq inspect``.

The headline states the final verdict and who stands behind it: the automated verdict while
unreviewed, the same verdict "confirmed by" a reviewer, or the reviewer's own verdict after an
override. The automated figures (its verdict, confidence, p(counterfeit)) stay beside a reviewed
headline, labelled as automated, so they never read as the reviewer's. An inconclusive automated
verdict has no confidence: schema v3 stores null; the number a v2 body stored is hidden too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

AGAINST = "argues against the automated verdict"
OVERRIDES = "reviewer's verdict (overrides the automated verdict)"


def when(iso: str | None) -> str:
    """An ISO 8601 time as ``2026-11-22 10:00 UTC`` (empty for none)."""
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if iso else ""


@dataclass(frozen=True)
class Headline:
    verdict: str  # the final verdict: what the headline states
    status: str  # unreviewed | confirmed | overridden
    reviewer: str | None  # who set (override) or last confirmed the final verdict
    reviewed_at: str | None  # ISO time of that review
    automated_verdict: str
    confidence: float | None  # the automated verdict's; None when it is inconclusive
    p_counterfeit: float  # automated (fused or calibrated where the model says so)
    p_classifier: float
    p_classifier_calibrated: float | None  # v3 only
    fused: bool

    @property
    def reviewed(self) -> bool:
        return self.status != "unreviewed"

    @property
    def decided_by(self) -> str:
        """Who stands behind the headline, in words."""
        if self.status == "overridden":
            return f"{OVERRIDES} · by {self.reviewer or 'a reviewer'}" + self._on()
        if self.status == "confirmed":
            return f"confirmed by {self.reviewer or 'a reviewer'}" + self._on()
        return "automated verdict"

    def figures(self) -> str:
        """The automated numbers: confidence (none when inconclusive), p(counterfeit), classifier."""
        clf = f"classifier alone {self.p_classifier:.3f}"
        if self.p_classifier_calibrated is not None and \
                round(self.p_classifier_calibrated, 3) != round(self.p_classifier, 3):
            clf += f" ({self.p_classifier_calibrated:.3f} calibrated)"
        combined = " (classifier and reference comparison combined)" if self.fused else ""
        parts = [f"p(counterfeit) {self.p_counterfeit:.3f}{combined}", clf]
        if self.confidence is not None:
            parts.insert(0, f"confidence {self.confidence:.3f}")
        return " · ".join(parts)

    def automated(self) -> str:
        """The line beside the headline: the figures, and the automated verdict once reviewed."""
        figures = self.figures()
        if self.reviewed:
            return (f"Automated assessment, not the reviewer's: verdict {self.automated_verdict}"
                    f" · {figures}")
        return "C" + figures[1:] if figures.startswith("confidence") else figures

    def _on(self) -> str:
        return f" · {when(self.reviewed_at)}" if self.reviewed_at else ""


def headline(report: Mapping[str, Any]) -> Headline:
    review = report.get("review") or {}
    automated = str(report["verdict"])
    status = str(review.get("status") or "unreviewed")
    final = str(review.get("final_verdict") or automated)
    reviews = list(review.get("reviews") or [])
    decisive = None
    if status == "overridden":  # the override that set the final verdict
        decisive = next((r for r in reversed(reviews)
                         if r.get("decision") == "override" and r.get("verdict") == final), None)
    if decisive is None and status != "unreviewed" and reviews:
        decisive = reviews[-1]
    confidence = report.get("confidence")
    fusion = report.get("fusion") or {}
    calibrated = fusion.get("p_classifier_calibrated")
    return Headline(
        verdict=final, status=status,
        reviewer=decisive.get("reviewer") if decisive else None,
        reviewed_at=decisive.get("created_at") if decisive else None,
        automated_verdict=automated,
        confidence=None if automated == "inconclusive" or confidence is None else float(confidence),
        p_counterfeit=float(report["probabilities"]["counterfeit"]),
        p_classifier=float(fusion.get("p_classifier", report["probabilities"]["counterfeit"])),
        p_classifier_calibrated=None if calibrated is None else float(calibrated),
        fused=bool(fusion.get("applied")),
    )


def retakes(report: Mapping[str, Any]) -> list[dict[str, str]]:
    """The photos to take again (``retake``; a v2 body has none)."""
    return [dict(r) for r in report.get("retake") or []]


def against(reason: Mapping[str, Any]) -> bool:
    """The reason's numbers argue against the automated verdict."""
    return reason.get("stance") == "against"
