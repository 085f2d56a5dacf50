"""Rows and domain objects as the API shows them: the one place that turns ids into links.

The core stores ids; every URL a client sees (``links``, heatmap images, the webhook body's
links) is made here, so moving a route moves its links with it and no stored report goes stale.
"""

from __future__ import annotations

from typing import Any

from authentiq.contract.report import Report
from authentiq.contract.times import iso_utc as iso
from authentiq.storage.jobs import JobRow
from authentiq.storage.references import ReferenceRow
from authentiq.storage.reports import ReportRow, ReviewRow, review_record
from authentiq.storage.webhooks import DeliveryRow


def report_links(report_id: str) -> dict[str, Any]:
    return {"self": f"/v1/reports/{report_id}", "page": f"/reports/{report_id}",
            "pdf": f"/v1/reports/{report_id}.pdf"}


def report_out(report: Report) -> dict[str, Any]:
    """The report as ``GET /v1/reports/{id}`` returns it: the stored report with its links."""
    body = report.model_dump(mode="json")
    rid = report.id
    body["links"] = {**report_links(rid),
                     "views": {v.view: f"/v1/reports/{rid}/views/{v.view}" for v in report.views}}
    body["heatmaps"]["images"] = {
        cls: {v: f"/v1/reports/{rid}/heatmaps/{cls}/{v}" for v in report.heatmaps.views}
        for cls in report.heatmaps.classes}
    return body


def summary_out(row: ReportRow) -> dict[str, Any]:
    """What a listing shows of one report."""
    body = row.body
    return {
        "id": row.id, "created_at": body.get("created_at"), "client_ref": row.client_ref,
        "brand": row.brand, "model": row.model, "initial_verdict": row.verdict,
        "final_verdict": row.final_verdict, "final_finding": row.final_finding,
        "review_status": row.review_status,
        "flagged": row.flagged, "confidence": body.get("confidence"),
        "p_counterfeit": row.p_counterfeit, "key_id": row.key_id, "version": row.version,
        "model_id": row.model_id, "links": report_links(row.id),
    }


def review_out(row: ReviewRow) -> dict[str, Any]:
    return review_record(row).model_dump(mode="json")


def job_out(row: JobRow) -> dict[str, Any]:
    done = row.status == "succeeded"
    return {
        "id": row.id, "status": row.status, "brand": row.brand, "model": row.model,
        "client_ref": row.client_ref, "priority": row.priority, "attempts": row.attempts,
        "created_at": iso(row.created_at), "updated_at": iso(row.updated_at),
        "finished_at": iso(row.finished_at), "deadline_at": iso(row.deadline_at),
        "report_id": row.id if done else None,
        "verdict": row.verdict, "error": row.error,
        "links": {"self": f"/v1/jobs/{row.id}", "report": f"/v1/reports/{row.id}" if done else None},
    }


def webhook_body(job: JobRow, report: Report | None) -> dict[str, Any]:
    """The ``data`` of an ``inspection.completed`` / ``inspection.failed`` event."""
    data: dict[str, Any] = {"job": job_out(job)}
    if report is not None:
        data["report"] = report_out(report)
    return data


def delivery_out(row: DeliveryRow) -> dict[str, Any]:
    return {
        "id": row.id, "job_id": row.job_id, "event": row.event, "url": row.url,
        "status": row.status, "attempts": row.attempts,
        "next_attempt_at": iso(row.next_attempt_at) if row.status == "pending" else None,
        "last_status_code": row.last_status_code, "last_error": row.last_error,
        "created_at": iso(row.created_at), "delivered_at": iso(row.delivered_at),
        "log": row.log,
    }


def reference_out(row: ReferenceRow, embedded_with: list[str]) -> dict[str, Any]:
    body = row.body
    views = [name.split(".")[0] for name in body.get("stored_files", [])]
    return {
        "id": row.id, "brand": row.brand, "model": row.model,
        "created_at": row.created_at.isoformat(), "source": row.source, "notes": row.notes,
        "content_hash": row.content_hash, "views": body.get("views", []),
        "p_counterfeit": body.get("p_counterfeit"), "warnings": body.get("warnings", []),
        "embedded_with": sorted(embedded_with),
        "deleted_at": row.deleted_at.isoformat() if row.deleted_at else None,
        "deleted_reason": row.deleted_reason,
        "links": {"self": f"/v1/references/{row.id}",
                  "views": {v: f"/v1/references/{row.id}/views/{v}" for v in views}},
    }
