"""Drift metrics through the real app: every stored report (sync and async) lands in the
histograms and the verdict counter, labelled by model and product, with the product bounded."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from authentiq.api.app import create_app
from authentiq.api.drift import OTHER
from authentiq.modelling.synthetic import SyntheticItem, find_spec, make_item
from tests.conftest import allow_classifier_only, files_of, make_settings, riva_item

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


def inspect(client: TestClient, item: SyntheticItem, brand: str, model: str) -> dict:  # type: ignore[type-arg]
    r = client.post("/v1/inspections", files=files_of(item), data={"brand": brand, "model": model})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_drift_histograms_and_verdicts_per_model_and_product(tmp_path: Path) -> None:
    riva = riva_item()
    amande = make_item(901_000_001, counterfeit=False, spec=find_spec("Verlaine", "Amande"))
    settings = make_settings(tmp_path, restrict_products=False)
    with TestClient(create_app(settings)) as client:
        allow_classifier_only(client)
        enrolled = client.post("/v1/references", files=files_of(riva),
                               data={"brand": "Castellan", "model": "Riva", "source": "test"})
        assert enrolled.status_code == 201, enrolled.text
        # typed in another case: the label is the database's spelling
        first = inspect(client, riva, "castellan", "RIVA")
        second = inspect(client, amande, "Verlaine", "Amande")
        unknown = inspect(client, amande, "Nobody", "Knows")  # not refused: restrict off
        job = client.post("/v1/inspections?mode=async", files=files_of(riva),
                          data={"brand": "Castellan", "model": "Riva"})
        assert job.status_code == 202, job.text
        for _ in range(300):
            status = client.get(job.json()["links"]["self"]).json()
            if status["status"] != "queued" and status["status"] != "running":
                break
            time.sleep(0.05)
        assert status["status"] == "succeeded", status
        async_report = client.get(f"/v1/reports/{status['report_id']}").json()
        text = client.get("/metrics").text

    found = samples(text)
    model = first["classifier"]["model_id"]  # the series are labelled by the model's id
    riva_reports = [first, async_report]
    riva_labels = {"model": model, "product": "Castellan/Riva"}
    assert value(found, "authentiq_drift_p_counterfeit_count", **riva_labels) == 2
    assert value(found, "authentiq_drift_p_counterfeit_sum", **riva_labels) == pytest.approx(
        sum(r["fusion"]["p_counterfeit"] for r in riva_reports))
    assert value(found, "authentiq_drift_p_counterfeit_bucket", **riva_labels, le="+Inf") == 2
    # the enrolled reference is compared with: its best similarity is observed
    best = [r["references"]["claimed"]["best"] for r in riva_reports]
    assert all(b is not None for b in best)
    assert value(found, "authentiq_drift_reference_similarity_count", **riva_labels) == 2
    assert value(found, "authentiq_drift_reference_similarity_sum", **riva_labels) == pytest.approx(
        sum(best))
    # every usable photo's gate distance, per view
    for view in first["views"]:
        assert view["gate"] is not None
        assert value(found, "authentiq_drift_gate_distance_count", **riva_labels,
                     view=view["view"]) == 2
    verdicts = {r["verdict"] for r in riva_reports}
    assert sum(value(found, "authentiq_drift_verdicts_total", **riva_labels, verdict=v) or 0
               for v in verdicts) == 2

    # a product without references: no similarity series, the rest as usual
    other = {"model": model, "product": "Verlaine/Amande"}
    assert value(found, "authentiq_drift_p_counterfeit_count", **other) == 1
    assert value(found, "authentiq_drift_reference_similarity_count", **other) is None
    assert value(found, "authentiq_drift_verdicts_total", **other, verdict=second["verdict"]) == 1
    # a product the database does not know is "other", never the client's words
    assert unknown["brand"] == "Nobody"
    assert value(found, "authentiq_drift_p_counterfeit_count", model=model, product=OTHER) == 1
    assert value(found, "authentiq_drift_verdicts_total", model=model, product=OTHER,
                 verdict=unknown["verdict"]) == 1
    assert not [k for k in found if dict(k[1]).get("product", "").lower().startswith("nobody")]
