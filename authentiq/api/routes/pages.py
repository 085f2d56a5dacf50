"""Auditor pages (server-rendered Jinja2, no front-end build): the review queue and a report.

Once API keys exist these need the ``review`` scope: a key sent as a header, or a sign-in session
(``/login`` checks a key once and sets a cookie; ``/logout`` ends it). Every form post must come
from this service's own origin (``Origin``, else ``Referer``), and a session's forms also carry
its CSRF token; sign-in attempts are rate limited per client address.
"""

from __future__ import annotations

import asyncio
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from authentiq import __version__
from authentiq.api.auth import authenticate, presented_key, visible
from authentiq.api.deps import PdfsDep, ServicesDep
from authentiq.api.resources import report_out, summary_out
from authentiq.errors import AuthentiqError, CrossSiteRequest, Forbidden, RateLimited, Unauthorized
from authentiq.services.container import Services
from authentiq.storage.keys import Principal
from authentiq.storage.reports import ReportFilter
from authentiq.storage.sessions import COOKIE, LIFETIME, csrf_ok, csrf_token
from authentiq.web.reference_photos import compared, views_of
from authentiq.web.report_view import AGAINST, headline, retakes
from authentiq.web.templating import HEADERS, STATIC, templates

router = APIRouter(include_in_schema=False)


KIOSK_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; "
                                            "media-src 'self' blob: mediastream:; frame-ancestors 'none'",
                 "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
                 "Permissions-Policy": "camera=(self)"}


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, services: ServicesDep) -> Response:
    """Where the URL ``authentiq serve`` prints lands: what this server serves, where to go."""
    backend = services.backend
    keys = services.keys
    await asyncio.to_thread(services.index.sync)
    enforced = await asyncio.to_thread(lambda: keys.enforced) if keys.stale else keys.enforced
    context = {"version": __version__, "model": backend.spec.version_key,
               "precision": backend.info.precision, "backend": backend.info.name,
               "device": backend.info.device, "references": services.index.size,
               "open": not enforced, "base": str(request.base_url).rstrip("/")}
    return templates.TemplateResponse(request, "home.html", context, headers=HEADERS)


@router.get("/kiosk", response_class=HTMLResponse)
async def kiosk() -> Response:
    """The counter's guided capture page (static HTML, CSS and JS from ``web/static``)."""
    return FileResponse(STATIC / "kiosk.html", headers=KIOSK_HEADERS)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_origin(request: Request, services: Services) -> None:
    """A form post must come from this service's pages: its ``Origin`` (or, where a browser
    sends none, its ``Referer``) is the public base URL's origin or the request's own. A page on
    another site cannot forge either, so this stops cross-site form posts whatever SameSite
    does; a post with neither header is refused too."""
    sent = request.headers.get("origin") or request.headers.get("referer")
    allowed = {_origin(services.settings.access.public_base_url), _origin(str(request.base_url))}
    if sent is None or sent == "null" or _origin(sent) not in allowed:
        raise CrossSiteRequest("this form must be posted from the AuthentiQ pages themselves")


def check_csrf(request: Request, services: Services, presented: str) -> None:
    """A session's forms carry its CSRF token (a header-sent API key needs none: it is not
    ambient authority a browser adds by itself)."""
    token = request.cookies.get(COOKIE)
    if presented_key(request) is None and token is not None and \
            not csrf_ok(services.session_secret, token, presented):
        raise CrossSiteRequest("the form's CSRF token does not match this session; reload the page")


async def auditor(request: Request, services: Services) -> Response | Principal | None:
    """The caller (None: keys not enforced) if they may see auditor pages; else where to send
    them (sign in)."""
    try:
        return await authenticate(request, services, "review", page=True)
    except Unauthorized:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def _csrf(request: Request, services: Services) -> str:
    token = request.cookies.get(COOKIE)
    return csrf_token(services.session_secret, token) if token else ""


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "/review") -> Response:
    return templates.TemplateResponse(request, "login.html", {"next": _local(next), "error": None},
                                      headers=HEADERS)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, services: ServicesDep, key: Annotated[str, Form()],
                next: Annotated[str, Form()] = "/review") -> Response:
    check_origin(request, services)
    address = request.client.host if request.client else "unknown"
    try:
        await asyncio.to_thread(services.rate_limiter.hit, f"login:{address}",
                                services.settings.access.login_rate_limit)
        principal = await asyncio.to_thread(services.keys.verify, key.strip())
        if not principal.allows("review"):
            raise Forbidden(f"key {principal.key_id} has no review scope")
    except (Unauthorized, Forbidden, RateLimited) as exc:
        return templates.TemplateResponse(request, "login.html", {"next": _local(next), "error": exc.detail},
                                          status_code=exc.status, headers={**HEADERS, **exc.headers})
    token = await asyncio.to_thread(services.sessions.open, principal.key_id)
    response = RedirectResponse(_local(next), status_code=303)
    response.set_cookie(COOKIE, token, max_age=int(LIFETIME.total_seconds()), httponly=True,
                        samesite="strict", secure=request.url.scheme == "https"
                        or services.settings.access.public_base_url.startswith("https://"))
    return response


@router.post("/logout", response_class=HTMLResponse)
async def logout(request: Request, services: ServicesDep,
                 csrf: Annotated[str, Form()] = "") -> Response:
    """End the session: its row is deleted, so the cookie is worthless even if copied."""
    check_origin(request, services)
    token = request.cookies.get(COOKIE)
    if token is not None:
        check_csrf(request, services, csrf)
        await asyncio.to_thread(services.sessions.end, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


def _local(target: str) -> str:
    """Only paths on this site (no open redirect to another host)."""
    return target if target.startswith("/") and not target.startswith("//") else "/review"


@router.get("/review", response_class=HTMLResponse)
async def queue(request: Request, services: ServicesDep,
                cursor: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    caller = await auditor(request, services)
    if isinstance(caller, Response):
        return caller
    where, tenant = ReportFilter(needs_review=True), visible(caller)
    rows, next_cursor = await asyncio.to_thread(services.store.find, where, tenant=tenant,
                                                limit=100, cursor=cursor)
    total = await asyncio.to_thread(services.store.count, where, tenant=tenant)
    return templates.TemplateResponse(
        request, "queue.html", {"items": [summary_out(r) for r in rows], "total": total,
                                "next_cursor": next_cursor, "caller": caller,
                                "csrf": _csrf(request, services)}, headers=HEADERS)


@router.get("/reports/{report_id}", response_class=HTMLResponse)
async def report_page(request: Request, report_id: str, services: ServicesDep,
                      reviewed: bool = False) -> Response:
    caller = await auditor(request, services)
    if isinstance(caller, Response):
        return caller
    return await _page(request, services, caller, report_id, reviewed=reviewed)


@router.post("/reports/{report_id}/review", response_class=HTMLResponse)
async def review_form(
    request: Request, report_id: str, services: ServicesDep, pdfs: PdfsDep,
    decision: Annotated[str, Form()], reason: Annotated[str, Form()],
    expected_version: Annotated[int, Form()], verdict: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "", csrf: Annotated[str, Form()] = "",
    not_a_product: Annotated[bool, Form()] = False,
) -> Response:
    check_origin(request, services)
    caller = await auditor(request, services)
    if isinstance(caller, Response):
        return caller
    check_csrf(request, services, csrf)
    try:
        if decision not in ("confirm", "override"):
            raise AuthentiqError(f"unknown decision {decision!r}")
        if not_a_product and decision == "override" and not verdict:
            verdict = "inconclusive"  # the box says it all: no product, so no verdict either way
        await asyncio.to_thread(
            services.reviews.append, report_id, tenant=visible(caller),
            reviewer=caller, decision=decision, verdict=verdict or None,  # type: ignore[arg-type]
            reason=reason, note=note or None, expected_version=expected_version,
            finding="not_a_product" if not_a_product else None)
    except AuthentiqError as exc:
        if exc.status == 404:
            raise
        status = exc.status if exc.status < 500 else 422
        return await _page(request, services, caller, report_id, error=exc.detail, status=status)
    await asyncio.to_thread(pdfs.invalidate, report_id)  # the cached PDF is outdated
    return RedirectResponse(f"/reports/{report_id}?reviewed=true", status_code=303)


async def _page(request: Request, services: Services, caller: Principal | None, report_id: str, *,
                reviewed: bool = False, error: str | None = None, status: int = 200) -> Response:
    report = report_out(await asyncio.to_thread(services.store.get, report_id,
                                                tenant=visible(caller)))
    closest = compared(report)
    has = await asyncio.to_thread(views_of, services.references, [m["id"] for m in closest])
    context = {"r": report, "h": headline(report), "retake": retakes(report), "against": AGAINST,
               "compared": [{**m, "views": has[m["id"]]} for m in closest],
               "reviewed": reviewed, "error": error, "caller": caller,
               "csrf": _csrf(request, services)}
    return templates.TemplateResponse(request, "report.html", context, status_code=status,
                                      headers=HEADERS)
