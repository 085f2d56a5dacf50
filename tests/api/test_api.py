"""The HTTP API end to end: real app, real ONNX Runtime (the shipped model), real SQLite."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageFilter

from authentiq.api.app import create_app
from authentiq.modelling.synthetic import SyntheticItem
from authentiq.settings import Settings
from tests.conftest import build_tiny_model, files_of, jpeg, make_settings, tiny_spec

FORM = {"brand": "Castellan", "model": "Riva"}


def form_for(item: SyntheticItem, **extra: str) -> dict[str, str]:
    return {"brand": item.brand, "model": item.model, **extra}


def assert_nothing_stored(client: TestClient, settings: Settings) -> None:
    services = client.app.state.services  # type: ignore[attr-defined]
    assert services.store.count(tenant=None) == 0
    assert not [p for p in settings.blob_dir.rglob("*") if p.is_file()], "a blob was left behind"


# --- the happy path -------------------------------------------------------------------------


def test_inspection_is_stored_and_retrievable(client: TestClient, genuine_item: SyntheticItem) -> None:
    r = client.post("/v1/inspections", files=files_of(genuine_item),
                    data=form_for(genuine_item, client_ref="sku-42"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["verdict"] == "authentic"
    assert body["probabilities"]["authentic"] > 0.9
    assert body["classifier"]["precision"] == "int8-cpu"
    assert body["classifier"]["backend"] == "onnxruntime"
    assert {v["view"] for v in body["views"]} == set(genuine_item.views)
    assert all(v["usable"] for v in body["views"])
    for stage in ("decode_ms", "quality_ms", "stitch_ms", "queue_ms", "inference_ms",
                  "persist_ms", "total_ms"):
        assert body["timings"][stage] >= 0
    assert any(r["code"] == "automated_decision" for r in body["reasons"])

    stored = client.get(body["links"]["self"])
    assert stored.status_code == 200
    assert stored.json()["verdict"] == "authentic" and stored.json()["id"] == body["id"]
    found = client.get("/v1/reports", params={"client_ref": "sku-42"}).json()
    assert found["count"] == 1 and found["items"][0]["id"] == body["id"]
    assert client.get("/v1/reports", params={"client_ref": "other"}).json()["count"] == 0
    photo = client.get(body["links"]["views"]["logo"])
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert photo.content == genuine_item.views["logo"]


def test_counterfeit_stitching_is_flagged_with_attention_on_stitching(client: TestClient) -> None:
    from authentiq.modelling.synthetic import make_item

    item = make_item(900_000_123, defects=["stitch_pitch"])
    body = client.post("/v1/inspections", files=files_of(item), data=form_for(item)).json()
    assert body["verdict"] == "counterfeit"
    attention = next(r for r in body["reasons"] if r["code"] == "attention")
    assert attention["view"] == "stitching"


def test_optional_view_may_be_missing(client: TestClient, genuine_item: SyntheticItem) -> None:
    views = [v for v in genuine_item.views if v != "interior"]
    r = client.post("/v1/inspections", files=files_of(genuine_item, views), data=form_for(genuine_item))
    assert r.status_code == 201
    assert r.json()["missing_views"] == ["interior"]


def blurred(data: bytes) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).filter(ImageFilter.GaussianBlur(6)).save(buf, "JPEG")
    return buf.getvalue()


def test_unusable_required_view_gives_inconclusive_with_retake(client: TestClient,
                                                               genuine_item: SyntheticItem) -> None:
    files = files_of(genuine_item)
    files = [(v, (n, blurred(b) if v == "label" else b, t)) for v, (n, b, t) in files_of(genuine_item)]
    body = client.post("/v1/inspections", files=files, data=form_for(genuine_item)).json()
    assert body["verdict"] == "inconclusive"
    label = next(v for v in body["views"] if v["view"] == "label")
    assert label["usable"] is False and label["reason"] == "blurred"
    assert "retake" in label["message"].lower() or "focus" in label["message"].lower()
    assert any(r["code"] == "retake_required" and r["view"] == "label" for r in body["reasons"])


def test_concurrent_inspections_all_succeed(client: TestClient, genuine_item: SyntheticItem) -> None:
    def post(i: int) -> int:
        return client.post("/v1/inspections", files=files_of(genuine_item),
                           data=form_for(genuine_item, client_ref=f"c-{i}")).status_code

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(post, range(6))) == [201] * 6
    assert client.app.state.services.store.count(tenant=None) == 6  # type: ignore[attr-defined]


# --- rejections: a clear problem+json and nothing left behind ---------------------------------


def bad_requests(item: SyntheticItem) -> Iterator[tuple[str, dict, dict, int, str]]:  # type: ignore[type-arg]
    good = files_of(item)
    swap = lambda view, data: [(v, (n, data if v == view else b, t)) for v, (n, b, t) in good]  # noqa: E731
    yield "not-an-image", {"files": swap("logo", b"<html>hello</html>")}, form_for(item), 415, "unsupported-media-type"
    yield "zero-bytes", {"files": swap("logo", b"")}, form_for(item), 422, "empty-file"
    yield "truncated-jpeg", {"files": swap("logo", item.views["logo"][:3000])}, form_for(item), 422, "corrupt-image"
    yield "unknown-view", {"files": [*good, ("sole", ("s.jpg", jpeg(), "image/jpeg"))]}, form_for(item), 422, "unknown-view"
    yield "duplicate-view", {"files": [*good, ("logo", ("l.jpg", jpeg(), "image/jpeg"))]}, form_for(item), 422, "duplicate-view"
    yield "missing-view", {"files": [f for f in good if f[0] != "stitching"]}, form_for(item), 422, "missing-view"
    yield "missing-brand", {"files": good}, {"model": item.model}, 422, "invalid-field"
    yield "unknown-product", {"files": good}, {"brand": "Hermes", "model": "Kelly"}, 422, "unknown-product"
    yield "no-files", {"files": []}, form_for(item), 422, "invalid-field"


@pytest.mark.parametrize("case", range(9))
def test_bad_input_is_rejected_and_leaves_nothing(case: int, client: TestClient, settings: Settings,
                                                  genuine_item: SyntheticItem) -> None:
    name, kwargs, data, status, slug = list(bad_requests(genuine_item))[case]
    before = {p.name for p in Path(tempfile.gettempdir()).iterdir()}
    r = client.post("/v1/inspections", data=data, **kwargs)
    assert r.status_code == status, (name, r.text)
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"].endswith("/" + slug) and problem["status"] == status
    assert problem["detail"] and not says_twice(problem["title"], problem["detail"]), problem
    assert_nothing_stored(client, settings)
    leaked = {p.name for p in Path(tempfile.gettempdir()).iterdir()} - before
    assert not leaked, f"temporary files left: {leaked}"
    # the server keeps serving
    assert client.post("/v1/inspections", files=files_of(genuine_item),
                       data=form_for(genuine_item)).status_code == 201


def says_twice(title: str, detail: str) -> bool:
    """The detail repeats three words of the title in a row (clients print "title: detail")."""
    def trigrams(text: str) -> set[tuple[str, ...]]:
        words = [w.strip(".,;:()'\"").removesuffix("s") for w in text.lower().split()]
        return {tuple(words[i:i + 3]) for i in range(len(words) - 2)}

    return bool(trigrams(title) & trigrams(detail))


def test_says_twice() -> None:
    assert says_twice("Required view missing", "required views missing: label")
    assert says_twice("Not a supported image", "not a supported image; send one of JPEG")
    assert not says_twice("Required view missing", "no photo of label; every item needs one")


def test_an_unknown_product_lists_every_product_served(client: TestClient, genuine_item: SyntheticItem) -> None:
    """The model's products and those created with PUT /v1/products alike."""
    assert client.put("/v1/products/Maison Test/Nova", json={}).status_code == 200
    r = client.post("/v1/inspections", files=files_of(genuine_item), data={"brand": "Hermes", "model": "Kelly"})
    assert r.status_code == 422
    supported = r.json()["detail"].split("supported: ", 1)[1].split(", ")
    assert "Maison Test/Nova" in supported and "Castellan/Riva" in supported and len(supported) == 7


def test_per_view_problem_names_the_view(client: TestClient, genuine_item: SyntheticItem) -> None:
    files = [(v, (n, b"" if v == "hardware" else b, t)) for v, (n, b, t) in files_of(genuine_item)]
    assert client.post("/v1/inspections", files=files, data=form_for(genuine_item)).json()["view"] == "hardware"


def test_json_body_is_unsupported_media_type(client: TestClient) -> None:
    r = client.post("/v1/inspections", json={"brand": "x"})
    assert r.status_code == 415 and r.headers["content-type"] == "application/problem+json"


def test_file_over_byte_limit(tmp_path: Path, genuine_item: SyntheticItem) -> None:
    settings = make_settings(tmp_path, max_file_bytes=64 * 1024)
    with TestClient(create_app(settings)) as c:
        files = [(v, (n, jpeg((2000, 1500), quality=98) if v == "overall" else b, t)) for v, (n, b, t) in files_of(genuine_item)]
        r = c.post("/v1/inspections", files=files, data=form_for(genuine_item))
        assert r.status_code == 413 and r.json()["type"].endswith("/file-too-large")
        assert r.json()["view"] == "overall"
        assert_nothing_stored(c, settings)


def test_streamed_body_over_limit_is_cut_off(tmp_path: Path) -> None:
    """A chunked upload without Content-Length is stopped once it passes the limit."""
    settings = make_settings(tmp_path, max_request_bytes=64 * 1024)

    def chunks() -> Iterator[bytes]:
        yield b"--b\r\nContent-Disposition: form-data; name=\"logo\"; filename=\"l.jpg\"\r\n\r\n"
        for _ in range(100):
            yield b"\xff" * 4096

    with TestClient(create_app(settings)) as c:
        r = c.post("/v1/inspections", content=chunks(),
                   headers={"content-type": "multipart/form-data; boundary=b"})
        assert r.status_code == 413 and r.json()["type"].endswith("/request-too-large")
        assert_nothing_stored(c, settings)


@pytest.mark.parametrize("limit, status, slug", [
    ({"max_request_bytes": 50 * 1024}, 413, "request-too-large"),  # refused from Content-Length
    ({"max_pixels": 100_000}, 413, "image-too-large"),
    ({"max_files": 3}, 422, "too-many-files"),
])
def test_configured_limits(tmp_path: Path, genuine_item: SyntheticItem, limit: dict[str, int],
                           status: int, slug: str) -> None:
    settings = make_settings(tmp_path, **limit)
    with TestClient(create_app(settings)) as c:
        r = c.post("/v1/inspections", files=files_of(genuine_item), data=form_for(genuine_item))
        assert r.status_code == status and r.json()["type"].endswith("/" + slug)
        assert_nothing_stored(c, settings)


def test_unknown_report_is_404_problem(client: TestClient) -> None:
    r = client.get("/v1/reports/doesnotexist")
    assert r.status_code == 404 and r.json()["type"].endswith("/report-not-found")
    r = client.get("/no/such/route")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


def test_failed_persistence_leaves_no_blob(client: TestClient, settings: Settings,
                                           genuine_item: SyntheticItem) -> None:
    """If the database write fails, the photos already written are removed again."""
    services = client.app.state.services  # type: ignore[attr-defined]
    with services.store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE reports RENAME TO reports_gone")  # SQLite and PostgreSQL alike
    with pytest.raises(Exception):  # noqa: B017 - the raw DB error surfaces in TestClient
        client.post("/v1/inspections", files=files_of(genuine_item), data=form_for(genuine_item))
    assert not [p for p in settings.blob_dir.rglob("*") if p.is_file()], "blobs of a failed report were left behind"


# --- operations ------------------------------------------------------------------------------


def test_health_ready_and_metrics(client: TestClient, genuine_item: SyntheticItem) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["ready"] and ready["database"] and ready["precision"] == "int8-cpu"
    assert ready["engine_id"].startswith("authentiq-default.int8-cpu.onnx@sha256:")
    assert ready["view_gate"] and ready["calibrated"]
    client.post("/v1/inspections", files=files_of(genuine_item), data=form_for(genuine_item))
    client.get("/v1/reports/nope")
    for made_up in ("XAB12", "XCD34"):  # a client's own methods are one series, not one each
        client.request(made_up, "/metrics")
    text = client.get("/metrics").text
    assert 'method="XAB12"' not in text
    assert 'authentiq_http_requests_total{method="other",route="/metrics",status="405"} 2.0' in text
    assert 'authentiq_http_requests_total{method="POST",route="/v1/inspections",status="201"} 1.0' in text
    assert 'route="/v1/reports/{report_id}",status="404"' in text
    assert "authentiq_http_request_duration_seconds_bucket" in text
    assert 'authentiq_verdicts_total{verdict="authentic"} 1.0' in text


def test_any_contract_model_defines_the_views(tmp_path: Path, tiny_model: Path) -> None:
    """The view fields come from the model's metadata, not from code."""
    settings = make_settings(tmp_path, model_path=tiny_model, min_side=16)
    with TestClient(create_app(settings)) as c:
        r = c.post("/v1/inspections", files=[("front", ("f.jpg", jpeg((300, 300)), "image/jpeg"))],
                   data=FORM)
        assert r.status_code == 201, r.text
        assert r.json()["missing_views"] == ["back"]
        r = c.post("/v1/inspections", files=[("logo", ("f.jpg", jpeg(), "image/jpeg"))], data=FORM)
        assert r.status_code == 422 and "front" in r.json()["detail"]
    assert tiny_spec().view_names == ("front", "back")


def test_model_without_contract_fails_at_startup(tmp_path: Path) -> None:
    from authentiq.errors import ModelContractError

    broken = build_tiny_model(tmp_path / "broken.onnx", drop_output="cam")
    with pytest.raises(ModelContractError, match="cam"):
        create_app(make_settings(tmp_path, model_path=broken))
