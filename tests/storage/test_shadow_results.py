"""The live shadow's results on the run's database: stored beside a report, a repeat replaced,
every read scoped to one tenant in its query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from authentiq.storage.blobs import BlobStore
from authentiq.storage.db import open_database
from authentiq.storage.reports import ReportStore
from authentiq.storage.shadow_results import ShadowResult, ShadowResults
from authentiq.storage.tenants import create_tenant
from tests.storage.test_reports import row as a_report

A, B = f"{0xA:032x}", f"{0xB:032x}"


def test_results_sit_beside_reports_per_candidate_and_tenant(tmp_path: Path, database_url: str) -> None:
    engine = open_database(database_url)
    try:
        create_tenant(engine, "shop-b")
        reports = ReportStore(engine, BlobStore(tmp_path / "blobs"))
        for n, tenant in ((0xA, "default"), (0xB, "shop-b")):
            reports.save(a_report(n).model_copy(update={"created_at": datetime.now(UTC).isoformat()}),
                         {}, tenant_id=tenant)
        results = ShadowResults(engine)
        results.save(ShadowResult(A, "m1", "m@1", "counterfeit", 0.7, 0.4, ["classifier"]),
                     tenant_id="default")
        results.save(ShadowResult(A, "m1", "m@1", "inconclusive", 0.5, None, []),
                     tenant_id="default")  # scored again: replaced
        results.save(ShadowResult(A, "m2", "m@2", "authentic", 0.1, 0.9, ["classifier"]),
                     tenant_id="default")
        results.save(ShadowResult(B, "m1", "m@1", "authentic", 0.1, 0.9, []),
                     tenant_id="shop-b")
        since = datetime.now(UTC) - timedelta(hours=1)
        mine = results.find(since=since, tenant="default")
        assert sorted((r.model_id, r.verdict) for r, _ in mine) == [("m1", "inconclusive"),
                                                                    ("m2", "authentic")]
        assert {report.verdict for _, report in mine} == {"authentic"}  # the served verdict, joined
        assert [r.report_id for r, _ in results.find(since=since, tenant="shop-b")] == [B]
        assert len(results.find(since=since, tenant=None, model_id="m1")) == 2  # every tenant
        assert results.find(since=since, tenant="nobody") == []
        assert results.find(since=datetime.now(UTC) + timedelta(hours=1), tenant=None) == []
        assert results.models(tenant="shop-b") == ["m1"]
        assert results.models(tenant=None) == ["m1", "m2"]
    finally:
        engine.dispose()
