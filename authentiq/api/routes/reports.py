"""Stored reports: find (filters, cursor, count, CSV), fetch, files, PDF, and human reviews.

Once API keys exist, listing reports needs the ``review`` scope, reading one by id ``submit`` or
``review``, and posting a review ``review``. Every read is the caller's tenant's (an auditor key
sees all): another tenant's report is 404, exactly like an unknown id.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import BeforeValidator

from authentiq.api.auth import Reader, Reviewer, visible
from authentiq.api.deps import HeatmapsDep, PdfsDep, ServicesDep
from authentiq.api.files import NOT_FOUND, media_type
from authentiq.api.idempotent import IdempotencyKey, idempotent
from authentiq.api.resources import report_out, review_out, summary_out
from authentiq.api.schemas import Report, ReportList, ReviewIn
from authentiq.api.uploads import PROBLEMS
from authentiq.contract.report import ReviewRecord, heatmap_file, photo_of
from authentiq.contract.text import check_text
from authentiq.errors import ReportNotFound
from authentiq.services.container import Services
from authentiq.storage.idempotency import fingerprint
from authentiq.storage.reports import ReportFilter
from authentiq.storage.tenants import Visible

router = APIRouter(prefix="/v1/reports", tags=["reports"])
Verdict = Literal["authentic", "counterfeit", "inconclusive"]
CSV_MAX_ROWS = 100_000
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
CSV_FIELDS = ("id", "created_at", "client_ref", "brand", "model", "initial_verdict", "final_verdict",
              "review_status", "flagged", "confidence", "p_counterfeit", "key_id", "model_id",
              "final_finding")


def _iso_only(value: object) -> object:
    """ISO 8601 only: pydantic would also take '0.5' as seconds since 1970."""
    if isinstance(value, str) and (len(value) < 10 or not value[:4].isdigit() or value[4] != "-"):
        raise ValueError("expected an ISO 8601 date or date-time, e.g. 2026-11-22T10:00:00Z")
    return value


IsoTime = Annotated[datetime, BeforeValidator(_iso_only)]


def report_filter(
    verdict: Annotated[Verdict | None, Query(description="final verdict (after reviews)")] = None,
    initial_verdict: Annotated[Verdict | None, Query(description="the automated verdict")] = None,
    review_status: Literal["unreviewed", "confirmed", "overridden"] | None = None,
    brand: Annotated[str | None, Query(max_length=128)] = None,
    model: Annotated[str | None, Query(max_length=128)] = None,
    client_ref: Annotated[str | None, Query(max_length=128)] = None,
    key_id: Annotated[str | None, Query(max_length=64, description="who submitted")] = None,
    flagged: Annotated[bool | None, Query(
        description="a reference rule (mismatch, similarity floor) or a retake fired")] = None,
    created_from: Annotated[IsoTime | None, Query(description="ISO 8601, inclusive")] = None,
    created_to: Annotated[IsoTime | None, Query(description="ISO 8601, exclusive")] = None,
    needs_review: Annotated[bool | None, Query(
        description="the review queue: unreviewed and inconclusive or flagged")] = None,
    model_id: Annotated[str | None, Query(
        pattern="^[0-9a-f]{16}$", description="the model that decided (classifier.model_id; "
                                              "reports stored before schema 7 have none)")] = None,
) -> ReportFilter:
    for name, value in (("brand", brand), ("model", model), ("client_ref", client_ref),
                        ("key_id", key_id)):
        if value is not None:
            check_text(value, name)
    return ReportFilter(verdict, initial_verdict, review_status, brand, model, client_ref, key_id,
                        flagged, created_from, created_to, needs_review, model_id)


FilterDep = Annotated[ReportFilter, Depends(report_filter)]


@router.get("", response_model=ReportList, responses={422: PROBLEMS[422]},
            summary="Find reports (newest first, cursor pagination, total count)")
async def list_reports(
    services: ServicesDep, where: FilterDep, caller: Reviewer,
    limit: Annotated[int, Query(ge=1, description="page size; capped at 500")] = 50,
    cursor: Annotated[str | None, Query(max_length=200,
                                        description="next_cursor of the previous page")] = None,
) -> dict[str, Any]:
    store, tenant = services.store, visible(caller)
    rows, next_cursor = await asyncio.to_thread(store.find, where, tenant=tenant, limit=limit,
                                                cursor=cursor)
    total = await asyncio.to_thread(store.count, where, tenant=tenant)
    items = [summary_out(r) for r in rows]
    return {"items": items, "count": len(items), "total": total, "next_cursor": next_cursor}


@router.get(".csv", response_class=StreamingResponse, responses={422: PROBLEMS[422]},
            summary="Export the filtered reports as CSV (at most 100,000 rows)")
async def export_reports(services: ServicesDep, where: FilterDep, caller: Reviewer
                         ) -> StreamingResponse:
    store, tenant = services.store, visible(caller)

    def pages() -> Iterator[list[dict[str, Any]]]:
        cursor, sent = None, 0
        while sent < CSV_MAX_ROWS:
            rows, cursor = store.find(where, tenant=tenant, limit=500, cursor=cursor)
            sent += len(rows)
            yield [summary_out(r) for r in rows]
            if cursor is None:
                return

    def lines() -> Iterator[str]:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for page in pages():
            for item in page:
                writer.writerow({k: spreadsheet_safe(v) for k, v in item.items()})
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()

    await asyncio.to_thread(store.count, where, tenant=tenant)  # a broken filter fails before streaming
    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="reports.csv"'})


def spreadsheet_safe(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (OWASP CSV injection: it starts with
    ``= + - @``, a tab or a line break, or their full-width forms) gets a leading ``'``, which
    spreadsheets show as text. Numbers are left alone (a negative number is not text)."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


@router.get("/{report_id}.pdf", response_class=Response, responses=NOT_FOUND,
            summary="The report as a printable PDF (summary, each view with its heatmap, references)")
async def get_report_pdf(report_id: str, services: ServicesDep, pdfs: PdfsDep,
                         caller: Reader) -> Response:
    report = await asyncio.to_thread(services.store.get, report_id, tenant=visible(caller))
    pdf = await pdfs.get(report_out(report))  # cached per review version; rendered off this pool
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="report-{report_id}.pdf"'})


@router.get("/{report_id}", response_model=Report, responses=NOT_FOUND, summary="Get one report")
async def get_report(report_id: str, services: ServicesDep, caller: Reader) -> dict[str, Any]:
    return report_out(await asyncio.to_thread(services.store.get, report_id, tenant=visible(caller)))


@router.post("/{report_id}/reviews", response_model=ReviewRecord, status_code=201,
             responses={**NOT_FOUND, 409: PROBLEMS[409], 422: PROBLEMS[422]},
             summary="Confirm or override the verdict (reason mandatory; append-only, hash-chained)",
             description="The reviewer on record is the calling key (its id and name go into the "
                         "hash chain); `note` is free text kept beside it.")
async def post_review(report_id: str, review: ReviewIn, response: Response, services: ServicesDep,
                      pdfs: PdfsDep,
                      caller: Reviewer, idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    tenant = visible(caller)

    async def work(_: str | None) -> dict[str, Any]:
        appended = await asyncio.to_thread(
            services.reviews.append, report_id, tenant=tenant, reviewer=caller,
            decision=review.decision, verdict=review.verdict, finding=review.finding,
            reason=review.reason,
            note=review.note if review.note is not None else review.reviewer,
            expected_version=review.expected_version)
        await asyncio.to_thread(pdfs.invalidate, report_id)
        return review_out(appended)

    body, _ = await idempotent(
        services, response, caller, f"reviews:{report_id}", idempotency_key,
        functools.partial(fingerprint, {k: str(v) for k, v in review.model_dump().items()}, []), work,
        lambda seq: _review(services, int(seq), tenant),
        result_id=lambda r: str(r["seq"]))
    return body


@router.get("/{report_id}/views/{view}", responses=NOT_FOUND,
            response_class=Response, summary="Download a stored photo")
async def get_view_photo(report_id: str, view: str, services: ServicesDep, caller: Reader
                         ) -> Response:
    files = await asyncio.to_thread(services.store.files, report_id, tenant=visible(caller))
    name = photo_of(files.stored, view)
    if name is None:
        raise ReportNotFound(f"report {report_id} has no {view!r} photo")
    return await _file(services, report_id, name)


@router.get("/{report_id}/heatmaps/{cls}/{view}", responses=NOT_FOUND, response_class=Response,
            summary="A heatmap image (WebP): a view, or 'overview' for the whole mosaic")
async def get_heatmap(report_id: str, cls: str, view: str, services: ServicesDep,
                      heatmaps: HeatmapsDep, caller: Reader) -> Response:
    files = await asyncio.to_thread(services.store.files, report_id, tenant=visible(caller))
    return _image(await heatmaps.get(files, cls, view), heatmap_file(cls, view))


async def _review(services: Services, seq: int, tenant: Visible) -> dict[str, Any]:
    return review_out(await asyncio.to_thread(services.reviews.by_seq, seq, tenant=tenant))


async def _file(services: Services, report_id: str, name: str) -> Response:
    return _image(await asyncio.to_thread(services.store.blobs.get, report_id, name), name)


def _image(data: bytes, name: str) -> Response:
    return Response(data, media_type=media_type(name),
                    headers={"Cache-Control": "private, max-age=86400, immutable"})

