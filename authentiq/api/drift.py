"""Drift metrics: what the served model sees and says, per model and product.

Every stored report (sync or async) feeds four series, labelled by the model that decided
(:func:`drift_model_label`) and the claimed product:

- ``authentiq_drift_p_counterfeit`` — the calibrated counterfeit probability the verdict rests
  on (the fused one where references fused, else the classifier's after temperature scaling);
- ``authentiq_drift_reference_similarity`` — the best similarity to the claimed product's
  genuine references (only reports that had references to compare with);
- ``authentiq_drift_gate_distance{view}`` — each usable photo's view-gate distance ratio to its
  view's fitted photos (≤ 1 looks like what the model knows; only models with a gate);
- ``authentiq_drift_verdicts_total{verdict}`` — verdicts, so that the inconclusive share per
  product is a PromQL ratio (docs/your-own-model.md, "Watching for drift").

The product label is bounded: a product the database knows (the model's declared products and
those created with ``PUT /v1/products``), spelled as the database spells it, else ``other`` — a
client typing new names cannot grow the series (with ``AUTHENTIQ_RESTRICT_PRODUCTS=false``).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from authentiq.contract.report import Report

OTHER = "other"
PROBABILITY_BUCKETS = (0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98,
                       0.99, 0.999)
SIMILARITY_BUCKETS = (0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99)
DISTANCE_BUCKETS = (0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0)


def drift_model_label(report: Report) -> str:
    """The model a report's drift series are labelled with: its content id
    (``classifier.model_id``, the registry's id), so that a retrained model never shares series
    with the one before it, whatever version it claims; ``name@version`` only where a backend
    gives no id."""
    return report.classifier.model_id or f"{report.classifier.name}@{report.classifier.version}"


class DriftMetrics:
    """The drift series on one registry (the app's)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["model", "product"]
        self.p_counterfeit = Histogram(
            "authentiq_drift_p_counterfeit", "Calibrated counterfeit probability of each report",
            labels, registry=registry, buckets=PROBABILITY_BUCKETS)
        self.similarity = Histogram(
            "authentiq_drift_reference_similarity",
            "Best similarity to the claimed product's genuine references (reports with references)",
            labels, registry=registry, buckets=SIMILARITY_BUCKETS)
        self.gate_distance = Histogram(
            "authentiq_drift_gate_distance",
            "View-gate distance ratio of each usable photo to its view's fitted photos "
            "(<= 1: like what the model knows)", [*labels, "view"], registry=registry,
            buckets=DISTANCE_BUCKETS)
        self.verdicts = Counter(
            "authentiq_drift_verdicts", "Automated verdicts per model and product",
            [*labels, "verdict"], registry=registry)

    def observe(self, report: Report, product: str | None) -> None:
        """One stored report; ``product``: its name as the database spells it, None if unknown."""
        labels = (drift_model_label(report), product or OTHER)
        self.p_counterfeit.labels(*labels).observe(report.fusion.p_counterfeit)
        if report.references.claimed.best is not None:
            self.similarity.labels(*labels).observe(report.references.claimed.best)
        for view in report.views:
            if view.gate is not None:
                self.gate_distance.labels(*labels, view.view).observe(view.gate.distance)
        self.verdicts.labels(*labels, report.verdict).inc()
