"""Auditor pages (server-rendered Jinja2, no front-end build): the review queue and a report.

Once API keys exist, these need the ``review`` scope (a login form setting a session cookie).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from authentiq.api.auth import authenticate
from authentiq.api.deps import ServicesDep
from authentiq.errors import AuthentiqError
from authentiq.keys import SESSION_COOKIE, SESSION_S, Unauthorized, session_token
from authentiq.report_view import AGAINST, headline, retakes, when
from authentiq.reports import ReportFilter, summary
from authentiq.reviews import append_review

router = APIRouter(include_in_schema=False)
WEB = Path(__file__).resolve().parents[2] / "web"
STATIC = WEB / "static"
templates = Jinja2Templates(directory=WEB / "templates")
templates.env.filters["when"] = when
HEADERS = {"Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                      "img-src 'self'; form-action 'self'; frame-ancestors 'none'",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}


KIOSK_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; "
                                            "media-src 'self' blob: mediastream:; frame-ancestors 'none'",
                 "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
                 "Permissions-Policy": "camera=(self)"}


@router.get("/kiosk", response_class=HTMLResponse)
async def kiosk() -> Response:
    """The counter's guided capture page (static HTML, CSS and JS from ``web/static``)."""
    return FileResponse(STATIC / "kiosk.html", headers=KIOSK_HEADERS)


async def auditor(request: Request, services: Any) -> Response | None:
    """None when the caller may see auditor pages; else where to send them (sign in)."""
    try:
        await authenticate(request, services, "review")
    except Unauthorized:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
    return None


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "/review") -> Response:
    return templates.TemplateResponse(request, "login.html", {"next": _local(next), "error": None},
                                      headers=HEADERS)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, services: ServicesDep, key: Annotated[str, Form()],
                next: Annotated[str, Form()] = "/review") -> Response:
    try:
        principal = await asyncio.to_thread(services.keys.verify, key.strip())
        if not principal.allows("review"):
            raise Unauthorized(f"key {principal.key_id} has no review scope")
    except Unauthorized as exc:
        return templates.TemplateResponse(request, "login.html", {"next": _local(next), "error": exc.detail},
                                          status_code=401, headers=HEADERS)
    response = RedirectResponse(_local(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, session_token(services.session_secret, principal.key_id),
                        max_age=SESSION_S, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


def _local(target: str) -> str:
    """Only paths on this site (no open redirect to another host)."""
    return target if target.startswith("/") and not target.startswith("//") else "/review"


@router.get("/review", response_class=HTMLResponse)
async def queue(request: Request, services: ServicesDep,
                cursor: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    if (go := await auditor(request, services)) is not None:
        return go
    where = ReportFilter(needs_review=True)
    rows, next_cursor = await asyncio.to_thread(services.store.find, where, limit=100, cursor=cursor)
    total = await asyncio.to_thread(services.store.count, where)
    return templates.TemplateResponse(
        request, "queue.html", {"items": [summary(r) for r in rows], "total": total,
                                "next_cursor": next_cursor}, headers=HEADERS)


@router.get("/reports/{report_id}", response_class=HTMLResponse)
async def report_page(request: Request, report_id: str, services: ServicesDep,
                      reviewed: bool = False) -> Response:
    if (go := await auditor(request, services)) is not None:
        return go
    return await _page(request, services, report_id, reviewed=reviewed)


@router.post("/reports/{report_id}/review", response_class=HTMLResponse)
async def review_form(
    request: Request, report_id: str, services: ServicesDep,
    decision: Annotated[str, Form()], reason: Annotated[str, Form()],
    reviewer: Annotated[str, Form()], expected_version: Annotated[int, Form()],
    verdict: Annotated[str, Form()] = "",
) -> Response:
    if (go := await auditor(request, services)) is not None:
        return go
    reviewer = f"{reviewer.strip()[:100]} (key {request.state.key_id})" \
        if getattr(request.state, "key_id", None) else reviewer
    try:
        if decision not in ("confirm", "override"):
            raise AuthentiqError(f"unknown decision {decision!r}")
        await asyncio.to_thread(
            append_review, services.store.engine, report_id, decision=decision,  # type: ignore[arg-type]
            verdict=verdict or None, reason=reason, reviewer=reviewer.strip()[:128] or "anonymous",
            expected_version=expected_version)
    except AuthentiqError as exc:
        status = exc.status if exc.status < 500 else 422
        return await _page(request, services, report_id, error=exc.detail, status=status)
    await asyncio.to_thread(services.pdfs.invalidate, report_id)  # the cached PDF is outdated
    return RedirectResponse(f"/reports/{report_id}?reviewed=true", status_code=303)


async def _page(request: Request, services: Any, report_id: str, *, reviewed: bool = False,
                error: str | None = None, status: int = 200) -> Response:
    report = await asyncio.to_thread(services.store.get, report_id)
    context = {"r": report, "h": headline(report), "retake": retakes(report), "against": AGAINST,
               "reviewed": reviewed, "error": error}
    return templates.TemplateResponse(request, "report.html", context, status_code=status,
                                      headers=HEADERS)
