"""The acceptance gate's judgement (issue 18): classifier figures, and what the service answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from authentiq.modelling import datasets
from authentiq.modelling.verdict_eval import folder_distractors
from authentiq.modelling.workflow.acceptance import Acceptance, AcceptanceThresholds, Figures, judge

pytestmark = pytest.mark.db_independent  # the PostgreSQL pass leaves these out

GOOD = {"auc": 0.99, "accuracy": 0.98, "decided_accuracy": 0.995, "inconclusive_share": 0.08,
        "ece": 0.01, "int8_drop_points": 0.1}
SERVICE = {"service_decided_accuracy": 0.993, "service_inconclusive_share": 0.11,
           "ood_items": 240, "ood_answered": 0, "ood_authentic": 0}


def verdict(**figures: object) -> Acceptance:
    return judge(Figures.model_validate({**GOOD, **SERVICE, **figures}), AcceptanceThresholds(),
                 force=False, test_items=500, dataset="photos", command="authentiq train")


def test_the_service_figures_are_judged_beside_the_classifiers() -> None:
    assert verdict().passed and verdict().failed == []
    low = verdict(service_decided_accuracy=0.95)
    assert not low.passed and low.failed == ["service decided accuracy 95.00% < 97.00%"]
    assert verdict(service_decided_accuracy=None).failed == [
        "service decided accuracy nothing decided < 97.00%"]
    assert verdict(ood_answered=2).passed  # 2 of 240 is 0.83%: within 1%
    assert verdict(ood_answered=3).failed == [
        "out-of-distribution answered wrongly 3 of 240 (1.25%) > 1.00%"]
    assert verdict(ood_answered=1, ood_authentic=1).failed == [
        "out-of-distribution authentic 1 of 240 (0.42%) > 0.00%"]


def test_figures_not_measured_are_not_judged_and_older_stamps_still_read() -> None:
    """A folder without products has no service figures; a model stamped before the verdicts
    stage existed carries neither those figures nor their thresholds."""
    unmeasured = verdict(service_decided_accuracy=None, service_inconclusive_share=None,
                         ood_items=0, ood_answered=0)
    assert unmeasured.passed and unmeasured.failed == []
    old = {"passed": True, "forced": False, "failed": [], "test_items": 9, "dataset": "d",
           "command": "c", "figures": GOOD,
           "thresholds": {"min_auc": 0.95, "min_decided_accuracy": 0.97,
                          "max_int8_drop_points": 1.0}}
    read = Acceptance.model_validate(json.loads(json.dumps(old)))
    assert read.passed and read.figures.ood_items == 0 and read.figures.service_decided_accuracy is None


def test_distractors_for_a_folder_claim_its_products_and_rearrange_its_own_photos(
        small_dataset: Path) -> None:
    items = datasets.folder_items(small_dataset)
    views = ("overall", "logo", "stitching", "hardware", "label")
    made = list(folder_distractors(13, 5, items, views))  # one of each kind
    assert [d.seed for d in made] == list(range(5, 18))
    assert {d.kind for d in made} == {"noise", "blank", "document", "texture", "object",
                                      "scene_crops", "swapped_views", "duplicated_views",
                                      "mirrored_view", "turned_view", "upside_down",
                                      "degraded_view", "foreign_view"}
    products = {(it.brand, it.model) for it in items}
    assert all((d.brand, d.model) in products and set(d.views) == set(views) for d in made)
    photos = {p.read_bytes() for it in items if it.label == 0 for p in it.folder.iterdir()}
    swapped = next(d for d in made if d.kind == "swapped_views")
    assert set(swapped.views.values()) <= photos  # the folder's own photos, in the wrong slots
    # The same seeds make the same submissions; no genuine item leaves the painted kinds only.
    again = folder_distractors(13, 5, items, views, workers=1)  # drawn in this process
    assert [d.views for d in again] == [d.views for d in made]
    fakes = [it for it in items if it.label == 1]
    assert {d.kind for d in folder_distractors(6, 0, fakes, views)} == {
        "noise", "blank", "document", "texture", "object", "scene_crops"}
    # Six kinds and two products: each kind still claims both products, round after round.
    two = sorted({(it.brand, it.model) for it in fakes})[:2]
    pair = [it for it in fakes if (it.brand, it.model) in two]
    claims = [(d.kind, d.brand, d.model) for d in folder_distractors(12, 0, pair, views)]
    assert len(set(claims)) == 12


def test_a_wrong_answer_to_an_out_of_distribution_submission() -> None:
    """Any verdict on a non-product or mixed-up views is wrong; on a genuine item's own altered
    photo only counterfeit is (authentic is right about the item, and counted apart)."""
    from authentiq.modelling.verdict_eval import Outcome, wrong

    def said(kind: str, verdict: str) -> Outcome:
        return Outcome(kind, verdict, verdict in ("authentic", "counterfeit"), (), False)

    assert wrong(said("noise", "authentic")) and wrong(said("swapped_views", "counterfeit"))
    assert wrong(said("foreign_view", "authentic"))  # another product's view: not this item
    assert wrong(said("mirrored_view", "counterfeit")) and not wrong(said("mirrored_view", "authentic"))
    assert not wrong(said("noise", "inconclusive")) and not wrong(said("blank", "rejected (x)"))
