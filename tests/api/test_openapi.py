"""api_schemas/openapi.json must match the app: regenerate with `authentiq openapi --out ...`."""

from __future__ import annotations

import json

from authentiq.api.app import create_app
from authentiq.settings import Settings
from tests.conftest import REPO


def test_exported_openapi_matches_the_app() -> None:
    exported = json.loads((REPO / "api_schemas" / "openapi.json").read_text())
    live = json.loads(json.dumps(create_app(Settings()).openapi()))
    assert exported == live, (
        "api_schemas/openapi.json is stale: run `.venv/bin/authentiq openapi --out api_schemas/openapi.json`")


def test_openapi_documents_views_and_problems() -> None:
    doc = create_app(Settings()).openapi()
    body = doc["paths"]["/v1/inspections"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert body["schema"]["required"] == ["overall", "logo", "stitching", "hardware", "label", "brand", "model"]
    assert "application/problem+json" in doc["paths"]["/v1/inspections"]["post"]["responses"]["415"]["content"]
