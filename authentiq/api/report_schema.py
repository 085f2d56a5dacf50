"""The report's JSON Schema (``api_schemas/report.v<N>.schema.json``) and its version discipline.

The schema is generated from the response model (:class:`authentiq.api.schemas.Report`).
``api_schemas/report-schema-versions.json`` records the SHA-256 of each published version; a
changed schema under an unchanged :data:`~authentiq.contract.report.REPORT_SCHEMA_VERSION` is refused
(by ``authentiq report-schema`` and by a test), so every schema change bumps the version.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from authentiq.api.schemas import Report
from authentiq.contract.report import REPORT_SCHEMA_VERSION
from authentiq.errors import AuthentiqError

BASE_URI = "https://authentiq.dev/schemas/"


def version() -> str:
    return REPORT_SCHEMA_VERSION


def report_schema() -> dict[str, Any]:
    schema = Report.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"{BASE_URI}report.v{version()}.schema.json",
            "x-schema-version": version(), **schema}


def text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def digest(schema: dict[str, Any]) -> str:
    return hashlib.sha256(text(schema).encode()).hexdigest()


def write(out_dir: Path) -> Path:
    """Write the current schema; refuse if this version was published with other content."""
    schema = report_schema()
    registry_path = out_dir / "report-schema-versions.json"
    registry = json.loads(registry_path.read_text()) if registry_path.is_file() else {}
    known = registry.get(version())
    if known is not None and known != digest(schema):
        raise AuthentiqError(
            f"the report schema changed but its version is still {version()}: bump "
            "REPORT_SCHEMA_VERSION in authentiq/contract/report.py (and the SchemaVersion "
            "Literal beside it), then run this again")
    registry[version()] = digest(schema)
    registry_path.write_text(json.dumps(registry, indent=2, sort_keys=True) + "\n")
    path = out_dir / f"report.v{version()}.schema.json"
    path.write_text(text(schema))
    return path
