"""The interactive API docs (``/docs``, Swagger UI; ``/redoc``), served from this process.

FastAPI's own docs pages load Swagger UI and ReDoc from a CDN, so ``/docs`` is a blank page on a
machine without internet access (a kiosk PC, a closed network). Here the same pages load the
packaged copies that ``fastapi-offline`` ships (Swagger UI and ReDoc dist files, updated with
their releases; docs/architecture.md says why that package) from ``/static/docs``; no page asks
another host for anything.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/static/docs"
# Nothing leaves this server, whatever the bundles would fetch (ReDoc's footer links a logo on
# its maker's CDN): the browser refuses other hosts. Inline script and styles are the pages' own.
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
       "frame-ancestors 'none'")
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
router = APIRouter(include_in_schema=False)


def assets() -> StaticFiles:
    """The packaged Swagger UI and ReDoc files, to mount at :data:`ASSETS_URL`."""
    return StaticFiles(directory=Path(str(files("fastapi_offline") / "static")))


@router.get("/docs", response_class=HTMLResponse)
async def swagger_ui(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return _guarded(get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}", title=f"{request.app.title} · API docs",
        swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT}"))


@router.get(OAUTH2_REDIRECT, response_class=HTMLResponse)
async def swagger_ui_redirect() -> HTMLResponse:
    return _guarded(get_swagger_ui_oauth2_redirect_html())


@router.get("/redoc", response_class=HTMLResponse)
async def redoc(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return _guarded(get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}", title=f"{request.app.title} · API reference",
        redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png", with_google_fonts=False))


def _guarded(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CSP
    return page
