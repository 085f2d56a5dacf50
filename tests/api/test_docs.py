"""The interactive API docs work without internet access: ``/docs`` (Swagger UI) and ``/redoc``
load their files from this server (a packaged copy), in a real browser whose every request to
another host is refused and recorded."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from authentiq.api.app import create_app
from authentiq.settings import Settings
from tests.conftest import REPO, live_server

SHOTS = REPO / "var" / "screenshots"


def test_docs_pages_name_no_other_host(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        for path in ("/docs", "/redoc"):
            page = client.get(path)
            assert page.status_code == 200
            assert "http://" not in page.text and "https://" not in page.text, path
            assert "default-src 'self'" in page.headers["content-security-policy"]
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
            got = client.get(f"/static/docs/{asset}")
            assert got.status_code == 200 and len(got.content) > 100_000, asset
        assert client.get("/docs/oauth2-redirect").status_code == 200


def offline_page(browser: Any, base: str) -> tuple[Any, Any, list[str]]:
    """A page whose requests to anything but ``base`` fail, as on a machine without internet."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    elsewhere: list[str] = []

    def route(r: Any) -> None:
        if r.request.url.startswith(base):
            r.continue_()
        else:
            elsewhere.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    return context, page, elsewhere


def wait_for(page: Any, selector: str, count: int, timeout: float = 30.0) -> int:
    end = time.monotonic() + timeout
    while (n := page.locator(selector).count()) < count:
        assert time.monotonic() < end, f"{selector}: {n} of {count}"
        page.wait_for_timeout(100)
    return int(n)


@pytest.mark.browser
def test_swagger_ui_and_redoc_render_offline(browser: Any, settings: Settings) -> None:
    with live_server(settings) as server:
        context, page, elsewhere = offline_page(browser, server.url)
        try:
            page.goto(server.url + "/docs")
            assert wait_for(page, ".swagger-ui .opblock", 20) >= 20  # every operation listed
            assert "AuthentiQ" in str(page.text_content(".swagger-ui .info .title"))
            page.click("#operations-inspections-create_inspection_v1_inspections_post .opblock-summary")
            wait_for(page, ".swagger-ui .opblock.is-open .parameters, .swagger-ui .opblock.is-open "
                           ".opblock-description-wrapper", 1)
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "docs-1-swagger-ui.png"))
            page.goto(server.url + "/redoc")
            wait_for(page, "[data-section-id^='tag/']", 3)
            page.screenshot(path=str(SHOTS / "docs-2-redoc.png"))
            assert elsewhere == [] and page.errors == []
        finally:
            context.close()
    for name in ("docs-1-swagger-ui.png", "docs-2-redoc.png"):
        assert Path(SHOTS / name).stat().st_size > 20_000
