"""The acceptance gate: a trained model's test figures against configurable thresholds.

The outcome goes into every exported flavour's metadata under ``authentiq.acceptance`` (JSON,
the shape of :class:`Acceptance`) and into the model card; the model registry reads that key to
refuse registering a model that failed, unless it was forced.
"""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from authentiq.modelling.training.metadata import write_prop

KEY = "acceptance"  # authentiq.acceptance


class AcceptanceThresholds(BaseModel):
    model_config = ConfigDict(frozen=True)
    min_auc: float = Field(0.95, ge=0, le=1)  # test ROC AUC of the FP32 model
    min_decided_accuracy: float = Field(0.97, ge=0, le=1)  # outside the inconclusive band
    max_int8_drop_points: float = Field(1.0, ge=0, le=100)  # accuracy, FP32 minus worst INT8
    # What the service answers (served flavour, gate, fusion, a few references a product):
    min_service_accuracy: float = Field(0.97, ge=0, le=1)  # on the test items it decides
    max_ood_answered: float = Field(0.01, ge=0, le=1)  # share of out-of-distribution submissions
    #   answered wrongly: any verdict on a non-product, mixed-up or foreign view; counterfeit on a
    #   genuine item's own altered photo (verdict_eval.wrong)
    max_ood_authentic: float = Field(0.0, ge=0, le=1)  # ... answered authentic (all but a
    #   genuine item's own altered photo)


class Figures(BaseModel):
    """The test split's figures the gate reads (FP32 model, its own band and temperature)."""

    model_config = ConfigDict(frozen=True)
    auc: float
    accuracy: float  # every item decided at p = 0.5
    decided_accuracy: float | None  # None when the band left nothing decided
    inconclusive_share: float
    ece: float  # with the fitted temperature
    int8_drop_points: float  # percentage points of accuracy, the worse INT8 flavour
    # The service's verdicts; None where not measured (a folder without products, --ood-items 0,
    # or a model made before the verdicts stage existed): not judged, and the card says so.
    service_decided_accuracy: float | None = None
    service_inconclusive_share: float | None = None
    ood_items: int = 0
    ood_answered: int = 0  # answered wrongly
    ood_authentic: int = 0


class Acceptance(BaseModel):
    model_config = ConfigDict(frozen=True)
    passed: bool  # no threshold failed, or the failure was forced
    forced: bool  # --force let a failing model through
    thresholds: AcceptanceThresholds
    figures: Figures
    failed: list[str]  # one line per failed threshold, with the figures ("auc 0.41 < 0.95")
    test_items: int
    dataset: str  # the folder's name
    command: str  # the command line that made the model

    @property
    def status(self) -> str:
        return "forced" if self.forced else "accepted" if self.passed else "refused"


def judge(figures: Figures, thresholds: AcceptanceThresholds, *, force: bool, test_items: int,
          dataset: str, command: str) -> Acceptance:
    """Which thresholds the figures fail (NaN fails); passed unless one fails and not ``force``."""
    failed = []
    if not figures.auc >= thresholds.min_auc:
        failed.append(f"auc {figures.auc:.4f} < {thresholds.min_auc:.4f}")
    decided = figures.decided_accuracy  # None: nothing decided, which fails any least accuracy
    if (thresholds.min_decided_accuracy > 0 if decided is None
            else not decided >= thresholds.min_decided_accuracy):
        shown = "nothing decided" if decided is None or math.isnan(decided) else f"{decided:.2%}"
        failed.append(f"decided accuracy {shown} < {thresholds.min_decided_accuracy:.2%}")
    if not figures.int8_drop_points <= thresholds.max_int8_drop_points:
        failed.append(f"int8 drop {figures.int8_drop_points:.2f} points > "
                      f"{thresholds.max_int8_drop_points:.2f}")
    service = figures.service_decided_accuracy
    if figures.service_inconclusive_share is not None and (
            thresholds.min_service_accuracy > 0 if service is None
            else not service >= thresholds.min_service_accuracy):
        shown = "nothing decided" if service is None else f"{service:.2%}"
        failed.append(f"service decided accuracy {shown} < {thresholds.min_service_accuracy:.2%}")
    if figures.ood_items:
        for what, count, most in (("answered wrongly", figures.ood_answered,
                                   thresholds.max_ood_answered),
                                  ("authentic", figures.ood_authentic,
                                   thresholds.max_ood_authentic)):
            if count / figures.ood_items > most:
                failed.append(f"out-of-distribution {what} {count} of {figures.ood_items} "
                              f"({count / figures.ood_items:.2%}) > {most:.2%}")
    return Acceptance(passed=not failed or force, forced=bool(failed) and force,
                      thresholds=thresholds, figures=figures, failed=failed,
                      test_items=test_items, dataset=dataset, command=command)


def stamp(models: list[Path], acceptance: Acceptance) -> None:
    """Write the outcome into every flavour's metadata (in place, atomically per file)."""
    for path in models:
        write_prop(path, KEY, acceptance)
