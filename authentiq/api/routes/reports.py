"""Stored reports: fetch one, find by the caller's id or verdict, download a stored photo."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from authentiq.api.deps import ServicesDep
from authentiq.api.routes.inspections import PROBLEMS
from authentiq.api.schemas import Report, ReportList
from authentiq.errors import ReportNotFound

router = APIRouter(prefix="/v1/reports", tags=["reports"])
MEDIA = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "heic": "image/heic"}


@router.get("", response_model=ReportList, summary="Find reports")
async def list_reports(
    services: ServicesDep,
    client_ref: Annotated[str | None, Query(max_length=128)] = None,
    verdict: Literal["authentic", "counterfeit", "inconclusive"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    items = await asyncio.to_thread(services.store.find, client_ref=client_ref, verdict=verdict,
                                    limit=limit)
    return {"items": items, "count": len(items)}


@router.get("/{report_id}", response_model=Report, responses={404: PROBLEMS[422]},
            summary="Get one report")
async def get_report(report_id: str, services: ServicesDep) -> dict[str, Any]:
    return await asyncio.to_thread(services.store.get, report_id)


@router.get("/{report_id}/views/{view}", responses={404: PROBLEMS[422]},
            response_class=Response, summary="Download a stored photo")
async def get_view_photo(report_id: str, view: str, services: ServicesDep) -> Response:
    report = await asyncio.to_thread(services.store.get, report_id)
    name = next((f for f in report.get("stored_files", []) if f.split(".")[0] == view), None)
    if name is None:
        raise ReportNotFound(f"report {report_id} has no {view!r} photo")
    data = await asyncio.to_thread(services.store.blobs.get, report_id, name)
    return Response(data, media_type=MEDIA.get(name.rsplit(".", 1)[-1], "application/octet-stream"))
