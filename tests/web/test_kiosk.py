"""The kiosk page driven end to end in a real browser (Debian's chromium through Playwright)
against a real server: fake camera, file upload, a blurred photo and its retake, the view gate
refusing a photo, a retake the inspection asks for, the result with heatmaps and QR code, the server
going away mid-check, and a phone-size screen.

Screenshots land in ``var/screenshots/`` (the CI artifacts; reviewed by a person, see the issue
notes). Skipped when chromium or Playwright is missing, except under CI where ``make test``
installs both and these tests must run.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageFilter

from authentiq.modelling.synthetic import SyntheticItem
from authentiq.settings import DEFAULT_REFERENCES
from benchmarks._common import free_port
from tests.conftest import REPO, LiveServer, live_server, make_settings, riva_item

pytestmark = pytest.mark.browser
SHOTS = REPO / "var" / "screenshots"
VIEWS = ("overall", "logo", "stitching", "hardware", "label", "interior")


@pytest.fixture(scope="module")
def item(tmp_path_factory: pytest.TempPathFactory) -> tuple[SyntheticItem, Path]:
    it = riva_item()
    folder = tmp_path_factory.mktemp("item")
    for view, data in it.views.items():
        (folder / f"{view}.jpg").write_bytes(data)
    blurred = Image.open(io.BytesIO(it.views["label"])).filter(ImageFilter.GaussianBlur(6))
    blurred.save(folder / "label-blurred.jpg", "JPEG")
    return it, folder


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    port = free_port()
    settings = make_settings(tmp_path, reference_seed_dir=DEFAULT_REFERENCES,
                             public_base_url=f"http://127.0.0.1:{port}")
    with live_server(settings, port=port) as live:
        live.settings = settings  # type: ignore[attr-defined]
        yield live


def open_kiosk(browser: Any, url: str, viewport: tuple[int, int] = (1280, 800)) -> Any:
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                  permissions=["camera"], has_touch=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    page.goto(url + "/kiosk")
    page.select_option("#product", label="Castellan — Riva")
    page.click("#start")
    return page


def wait_js(page: Any, expression: str, timeout: float = 20.0) -> None:
    """Poll a JS expression (Playwright's wait_for_function evals in the page, which our CSP
    rightly forbids)."""
    end = time.monotonic() + timeout
    while not page.evaluate(f"() => Boolean({expression})"):
        assert time.monotonic() < end, f"timed out waiting for {expression}"
        page.wait_for_timeout(100)


def shoot(page: Any, name: str, full: bool = False) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full)


def upload(page: Any, path: Path) -> str:
    page.set_input_files("#file", str(path))
    page.wait_for_selector("#check.ok, #check.bad", timeout=20_000)
    return str(page.text_content("#check"))


def assert_result(page: Any) -> None:
    page.wait_for_selector("#step-result:not([hidden])", timeout=60_000)
    assert page.text_content("#verdict") in ("AUTHENTIC", "COUNTERFEIT", "INCONCLUSIVE")
    wait_js(page, "[...document.querySelectorAll('#heatmaps img, #qr')]"
                  ".every(i => i.complete && i.naturalWidth > 0)")
    assert page.locator("#heatmaps img").count() >= 5
    assert "Closest of 5 genuine Castellan Riva references" in page.text_content("#refs")
    wait_js(page, "document.querySelector('#report-link').href.includes('/r/')")
    link = str(page.get_attribute("#report-link", "href"))
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/r/[0-9a-f]{32}\.\d+\.[0-9a-f]{32}", link), link
    assert page.text_content("#report-link") == link
    assert page.errors == []


def open_share_link(browser: Any, page: Any) -> None:
    """The customer's link, in a browser that has no key and no session: the summary only."""
    context = browser.new_context()
    try:
        shared = context.new_page()
        shared.goto(str(page.get_attribute("#report-link", "href")))
        assert shared.text_content("#headline").split()[0] == page.text_content("#verdict")
        wait_js(shared, "[...document.querySelectorAll('img')].every(i => i.complete && i.naturalWidth > 0)")
        assert shared.locator("img").count() >= 10  # photos and heatmaps
        body = str(shared.text_content("body"))
        assert "key" not in body.lower() and "Sign out" not in body
        shoot(shared, "kiosk-5-share-link", full=True)
    finally:
        context.close()


def test_camera_flow(browser: Any, server: LiveServer, item: tuple[SyntheticItem, Path]) -> None:
    """The camera end to end. Chromium's fake camera films a test pattern — flat colours drawn
    without a sensor's noise, whose lines through the detail repeat as in an enlarged thumbnail —
    which the quality check refuses as upscaled (or, were it let through, the view gate as no
    product at all); the photos then come from files."""
    _, folder = item
    page = open_kiosk(browser, server.url)
    wait_js(page, "document.querySelector('#video').videoWidth > 0")
    assert page.locator("#camera-select option").count() >= 1
    shoot(page, "kiosk-1-camera")
    page.click("#shoot")
    page.wait_for_selector("#check.ok, #check.bad", timeout=20_000)
    said = page.text_content("#check") or ""
    assert said.startswith(("Please retake: enlarged from a much smaller image",
                            "Please retake: This photo does not look like the overall of an item "
                            "this model knows.")), said
    assert page.is_hidden("#next") and page.is_visible("#retake")
    page.click("#retake")
    assert page.is_visible("#video") and page.is_visible("#shoot")
    for view in VIEWS[:-1]:
        assert view in page.text_content("#h-view")
        assert upload(page, folder / f"{view}.jpg") == "Good photo."
        page.click("#next")
    assert "(optional)" in page.text_content("#h-view")
    page.click("#skip")  # interior is optional
    assert "interior: skipped" in page.text_content("#thumbs")
    shoot(page, "kiosk-2-review")
    page.click("#submit")
    assert_result(page)
    shoot(page, "kiosk-3-camera-result", full=True)
    open_share_link(browser, page)


def test_files_with_a_blurred_photo_and_its_retake(browser: Any, server: LiveServer,
                                                   item: tuple[SyntheticItem, Path]) -> None:
    _, folder = item
    page = open_kiosk(browser, server.url)
    for view in VIEWS:
        if view == "label":
            message = upload(page, folder / "label-blurred.jpg")
            assert message.startswith("Please retake: not sharp enough")
            assert page.is_hidden("#next") and page.is_visible("#retake")
            shoot(page, "kiosk-4-retake")
            page.click("#retake")
        assert upload(page, folder / f"{view}.jpg") == "Good photo."
        page.click("#next")
    page.click("#submit")
    assert_result(page)
    assert page.text_content("#verdict") == "AUTHENTIC"
    shoot(page, "kiosk-5-file-result", full=True)


def test_retake_asked_by_the_inspection(browser: Any, server: LiveServer,
                                        item: tuple[SyntheticItem, Path]) -> None:
    """The result names each photo to take again with its message (the report's ``retake``), and
    "Retake these photos" goes through exactly those views, keeps the others, and checks again.

    The capture step checks each photo alone; the inspection sees more (a duplicate photo, the
    view gate's own thresholds). To reach that state with the shipped model, the test lets the
    single-photo check pass a blurred label (the server's real answer, ``usable`` flipped); the
    real inspection then asks for the label again."""
    _, folder = item
    page = open_kiosk(browser, server.url)

    def pass_the_label(route: Any) -> None:
        answer = route.fetch()
        body = answer.json()
        if body["view"] == "label":
            body.update(usable=True, reason=None, message=None)
        route.fulfill(response=answer, json=body)

    for view in VIEWS:
        if view == "logo":  # the view gate at capture (real): a photo of another view
            message = upload(page, folder / "overall.jpg")
            assert message.startswith("Please retake: This photo looks like the overall view, not the logo.")
            assert page.is_hidden("#next")
            page.click("#retake")
        if view == "label":
            page.route("**/v1/quality", pass_the_label)
            assert upload(page, folder / "label-blurred.jpg") == "Good photo."
            page.unroute("**/v1/quality")
        else:
            assert upload(page, folder / f"{view}.jpg") == "Good photo."
        page.click("#next")
    page.click("#submit")
    page.wait_for_selector("#step-result:not([hidden])", timeout=60_000)
    assert page.text_content("#verdict") == "INCONCLUSIVE"
    assert "confidence" not in page.text_content("#summary").lower()  # none for inconclusive
    assert page.is_visible("#retake-box") and page.is_hidden("#decided-by")
    asked = [li.text_content() for li in page.locator("#retake-list li").all()]
    assert any(a.startswith("label: The label photo is unusable (blurred); retake it.") for a in asked)
    views = [a.split(":")[0] for a in asked]
    shoot(page, "kiosk-9-retake-asked", full=True)
    assert page.errors == []

    assert "The label photo is unusable" not in page.text_content("#reasons")  # said once, above
    page.click("#retake-start")
    shoot(page, "kiosk-10-retake-step")
    for i, view in enumerate(views):
        assert page.text_content("#h-view").startswith(f"Retake {i + 1} of {len(views)}: {view}")
        assert page.is_visible("#retake-note") and "Why again:" in page.text_content("#retake-note")
        assert page.locator("#dots li.again").count() == len(views) - i
        assert upload(page, folder / f"{view}.jpg") == "Good photo."
        page.click("#next")
    assert page.is_visible("#step-review")  # straight to the review: the other photos are kept
    assert page.locator("#thumbs img").count() == len(VIEWS)
    page.click("#submit")
    assert_result(page)
    assert page.text_content("#verdict") == "AUTHENTIC" and page.is_hidden("#retake-box")
    assert "confidence 0." in page.text_content("#summary")
    assert httpx.get(server.url + "/v1/reports").json()["total"] == 2


def test_server_gone_then_retry_checks_once(browser: Any, tmp_path: Path,
                                            item: tuple[SyntheticItem, Path]) -> None:
    _, folder = item
    settings = make_settings(tmp_path, reference_seed_dir=DEFAULT_REFERENCES)
    with live_server(settings) as first:
        url, port = first.url, int(first.url.rsplit(":", 1)[1])
        page = open_kiosk(browser, url)
        for view in VIEWS:
            upload(page, folder / f"{view}.jpg")
            page.click("#next")
    # The server is down now: the check fails with a readable message, photos kept.
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])", timeout=20_000)
    assert "Cannot reach the AuthentiQ server" in page.text_content("#error-text")
    shoot(page, "kiosk-6-server-gone")
    with live_server(settings, port=port) as again:
        page.click("#retry")
        assert_result(page)
        assert httpx.get(again.url + "/v1/reports").json()["total"] == 1


def test_phone_size_screen(browser: Any, server: LiveServer, item: tuple[SyntheticItem, Path]) -> None:
    _, folder = item
    page = open_kiosk(browser, server.url, viewport=(390, 844))
    upload(page, folder / "overall.jpg")
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], "the page scrolls sideways on a phone"
    shoot(page, "kiosk-7-phone", full=True)
    assert page.get_attribute("#file", "accept") == "image/*"
    for control in ("#product", "#camera-select", "#file"):
        label = page.locator(f"label[for='{control[1:]}']")
        assert label.count() == 1, f"{control} has no label"


def test_kiosk_with_a_key_entered_by_staff(browser: Any, tmp_path: Path,
                                           item: tuple[SyntheticItem, Path]) -> None:
    """Once keys exist, the kiosk works with a submit key stored on the device (settings dialog)."""
    from authentiq.storage.keys import create_key

    _, folder = item
    settings = make_settings(tmp_path, reference_seed_dir=DEFAULT_REFERENCES, auth="required")
    with live_server(settings) as server:
        from authentiq.storage.db import make_engine

        engine = make_engine(settings.database_url)
        _, key = create_key(engine, "kiosk-test", ["submit"])
        engine.dispose()
        context = browser.new_context(viewport={"width": 1280, "height": 800}, permissions=["camera"])
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.errors = errors
        page.goto(server.url + "/kiosk")
        page.click("#settings-open")
        page.fill("#api-key", key)
        page.click("#settings button[value=save]")
        page.reload()
        page.select_option("#product", label="Castellan — Riva")
        page.click("#start")
        for view in VIEWS:
            assert upload(page, folder / f"{view}.jpg") == "Good photo."
            page.click("#next")
        page.click("#submit")
        assert_result(page)  # heatmaps and QR loaded with the key, not as bare <img src>
        shoot(page, "kiosk-8-with-key", full=True)


NO_CAMERA = """
Object.defineProperty(navigator, "mediaDevices", {value: {
  getUserMedia: () => Promise.reject(new DOMException("Requested device not found", "NotFoundError")),
  enumerateDevices: () => Promise.resolve([]),
}});
"""


def test_without_a_camera_the_file_picker_is_the_way(browser: Any, server: LiveServer,
                                                     item: tuple[SyntheticItem, Path]) -> None:
    """A PC with no camera: the page says so where the preview would be, the camera list says
    there is none (not an empty drop-down), "Take photo" is gone and "Choose a photo" leads."""
    _, folder = item
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(NO_CAMERA)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(server.url + "/kiosk")
        page.select_option("#product", label="Castellan — Riva")
        page.click("#start")
        page.wait_for_selector("#camera-off:not([hidden])", timeout=10_000)
        assert page.text_content("#camera-off") == (
            "No camera found on this device. Use “Choose a photo” to pick a photo file instead.")
        options = page.locator("#camera-select option")
        assert options.count() == 1 and options.text_content() == "No camera available"
        assert page.is_disabled("#camera-select") and page.is_hidden("#shoot")
        assert "primary" in str(page.get_attribute("#pick", "class"))
        shoot(page, "kiosk-11-no-camera")
        assert upload(page, folder / "overall.jpg") == "Good photo."
        assert errors == []
    finally:
        context.close()


def test_saving_the_key_loads_the_products_at_once(browser: Any, tmp_path: Path) -> None:
    """Before a key: the list says it waits for one (not "Loading…" for ever); after Save it
    fills at once, without a reload or a retry delay."""
    from authentiq.storage.db import make_engine
    from authentiq.storage.keys import create_key

    settings = make_settings(tmp_path, auth="required")
    with live_server(settings) as server:
        engine = make_engine(settings.database_url)
        _, key = create_key(engine, "kiosk-test", ["submit"])
        engine.dispose()
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        try:
            page.goto(server.url + "/kiosk")
            wait_js(page, "document.querySelector('#status').textContent.includes('Kiosk settings')")
            assert page.text_content("#product option") == "Waiting for the kiosk key…"
            page.click("#settings-open")
            page.fill("#api-key", key)
            started = time.monotonic()
            page.click("#settings button[value=save]")
            wait_js(page, "document.querySelectorAll('#product option').length > 1", timeout=5)
            assert time.monotonic() - started < 2.0
            page.select_option("#product", label="Castellan — Riva")
            assert page.is_enabled("#start")
        finally:
            context.close()
