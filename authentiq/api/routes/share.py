"""Customer share links: ``/v1/reports/{id}/share-links`` (create, list, revoke, QR code) and the
public, read-only page they open, ``/r/{token}``.

Creating one needs ``submit`` or ``review`` (the kiosk makes one per result), listing and
revoking ``review``; all are scoped to the caller's tenant like every report read. The page needs
no key: the signed token is the authority, and it shows only what the customer may see (verdict,
reasons, photos, heatmaps, the statement of reasons) — never reviewers, notes, key ids, the tenant
or the client's own reference. URLs are built from ``AUTHENTIQ_PUBLIC_BASE_URL``, never from the
request's Host header.
"""

from __future__ import annotations

import asyncio
import io
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from authentiq.api.auth import Reader, Reviewer, key_id_of, visible
from authentiq.api.deps import HeatmapsDep, ServicesDep
from authentiq.api.files import media_type
from authentiq.api.resources import report_out
from authentiq.api.uploads import PROBLEMS
from authentiq.contract.report import Report, heatmap_file, photo_of
from authentiq.contract.times import iso_utc
from authentiq.errors import ReportNotFound, ShareLinkNotFound
from authentiq.services.container import Services
from authentiq.storage.reports import ReportFiles
from authentiq.storage.share_links import ShareLinkRow, live
from authentiq.web.report_view import headline, retakes
from authentiq.web.templating import HEADERS, templates

api = APIRouter(prefix="/v1/reports/{report_id}", tags=["share links"])
public = APIRouter(include_in_schema=False)
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: PROBLEMS[422]}
LINK_ID = r"^[0-9a-f]{32}$"
PUBLIC_HEADERS = {**HEADERS, "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex",
                  "Cache-Control": "no-store"}  # a revoked link stops working at once


class ShareLink(BaseModel):
    id: str
    report_id: str
    url: str
    qr: str
    created_at: str
    expires_at: str
    revoked_at: str | None
    live: bool


class ShareLinkList(BaseModel):
    items: list[ShareLink]


def link_view(services: Services, row: ShareLinkRow) -> dict[str, Any]:
    return {"id": row.id, "report_id": row.report_id,
            "url": f"{services.settings.access.public_base_url}/r/{services.share_links.token(row)}",
            "qr": f"/v1/reports/{row.report_id}/share-links/{row.id}/qr.svg",
            "created_at": iso_utc(row.created_at), "expires_at": iso_utc(row.expires_at),
            "revoked_at": iso_utc(row.revoked_at), "live": live(row)}


@api.post("/share-links", response_model=ShareLink, status_code=201, responses=NOT_FOUND,
          summary="Create a customer share link: signed, expiring, read-only (/r/{token})")
async def create_link(report_id: str, services: ServicesDep, caller: Reader) -> dict[str, Any]:
    row = await asyncio.to_thread(services.store.row, report_id, tenant=visible(caller))
    link = await asyncio.to_thread(services.share_links.create, row.id, row.tenant_id,
                                   key_id_of(caller))
    return link_view(services, link)


@api.get("/share-links", response_model=ShareLinkList, responses=NOT_FOUND,
         summary="The report's share links, newest first (revoked and expired ones too)")
async def list_links(report_id: str, services: ServicesDep, caller: Reviewer) -> dict[str, Any]:
    tenant = visible(caller)
    await asyncio.to_thread(services.store.row, report_id, tenant=tenant)
    rows = await asyncio.to_thread(services.share_links.of_report, report_id, tenant=tenant)
    return {"items": [link_view(services, r) for r in rows]}


@api.delete("/share-links/{link_id}", response_model=ShareLink, responses=NOT_FOUND,
            summary="Revoke a share link: from now on it opens nothing")
async def revoke_link(report_id: str, link_id: Annotated[str, Path(pattern=LINK_ID)],
                      services: ServicesDep, caller: Reviewer) -> dict[str, Any]:
    row = await asyncio.to_thread(services.share_links.revoke, report_id, link_id,
                                  tenant=visible(caller), key_id=key_id_of(caller))
    return link_view(services, row)


@api.get("/share-links/{link_id}/qr.svg", response_class=Response, responses=NOT_FOUND,
         summary="A QR code of the share link (SVG)")
async def link_qr(report_id: str, link_id: Annotated[str, Path(pattern=LINK_ID)],
                  services: ServicesDep, caller: Reader,
                  scale: Annotated[int, Query(ge=1, le=20)] = 6) -> Response:
    row = await asyncio.to_thread(services.share_links.get, report_id, link_id,
                                  tenant=visible(caller))
    return _qr(link_view(services, row)["url"], f"Report {report_id}", scale)


@api.get("/qr.svg", response_class=Response, responses=NOT_FOUND,
         summary="A QR code of the report's newest live share link (404 when it has none)")
async def report_qr(report_id: str, services: ServicesDep, caller: Reader,
                    scale: Annotated[int, Query(ge=1, le=20)] = 6) -> Response:
    tenant = visible(caller)
    await asyncio.to_thread(services.store.row, report_id, tenant=tenant)
    rows = await asyncio.to_thread(services.share_links.of_report, report_id, tenant=tenant)
    row = next((r for r in rows if live(r)), None)
    if row is None:
        raise ShareLinkNotFound(f"report {report_id} has no live share link; create one with "
                                f"POST /v1/reports/{report_id}/share-links")
    return _qr(link_view(services, row)["url"], f"Report {report_id}", scale)


def _qr(url: str, title: str, scale: int) -> Response:
    buf = io.BytesIO()  # a standalone SVG (with xmlns), usable as an <img> source
    segno.make(url, error="m").save(buf, kind="svg", scale=scale, border=2, xmldecl=False,
                                     title=title)
    return Response(buf.getvalue(), media_type="image/svg+xml")


# --- the public page ---------------------------------------------------------------------------


async def _shared(services: Services, token: str) -> Report:
    link = await asyncio.to_thread(services.share_links.resolve, token)
    return await asyncio.to_thread(services.store.get, link.report_id, tenant=link.tenant_id)


async def _shared_files(services: Services, token: str) -> ReportFiles:
    """The shared report's files (one row read: the page asks for a dozen images)."""
    link = await asyncio.to_thread(services.share_links.resolve, token)
    return await asyncio.to_thread(services.store.files, link.report_id, tenant=link.tenant_id)


@public.get("/r/{token}", response_class=HTMLResponse)
async def shared_page(request: Request, token: str, services: ServicesDep) -> Response:
    try:
        report = await _shared(services, token)
    except ShareLinkNotFound as exc:
        return templates.TemplateResponse(request, "share_gone.html", {"detail": exc.detail},
                                          status_code=404, headers=PUBLIC_HEADERS)
    shown = report_out(report)
    context = {"r": shown, "h": headline(shown), "retake": retakes(shown), "base": f"/r/{token}"}
    return templates.TemplateResponse(request, "share.html", context, headers=PUBLIC_HEADERS)


@public.get("/r/{token}/views/{view}")
async def shared_photo(token: str, view: str, services: ServicesDep) -> Response:
    files = await _shared_files(services, token)
    name = photo_of(files.stored, view)
    if name is None:
        raise ShareLinkNotFound("no such image in this report")
    data = await asyncio.to_thread(services.store.blobs.get, files.report_id, name)
    return _image(data, name)


@public.get("/r/{token}/heatmaps/{cls}/{view}")
async def shared_heatmap(token: str, cls: str, view: str, services: ServicesDep,
                         heatmaps: HeatmapsDep) -> Response:
    files = await _shared_files(services, token)
    try:
        data = await heatmaps.get(files, cls, view)
    except ReportNotFound:
        raise ShareLinkNotFound("no such image in this report") from None
    return _image(data, heatmap_file(cls, view))


def _image(data: bytes, name: str) -> Response:
    return Response(data, media_type=media_type(name),
                    headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
