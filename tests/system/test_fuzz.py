"""Fuzz the API from its own OpenAPI document: schemathesis (its CLI, over real HTTP, against a
real server with the shipped references) generates ~1,400 requests — examples, boundary
coverage, random fuzzing and stateful sequences (enrol → get → delete …).

Checks: no 5xx, status codes, content types, headers and bodies as documented, malformed input
refused. Two checks are left out, each for a reason the schema cannot express:

* ``positive_data_acceptance``: a schema-valid request may still be refused — a "binary" field
  that is not a photo (415), a cursor this service did not issue, a product that does not exist
  (422). Those refusals are the service working;
* ``use_after_free``: deleting a reference is a soft delete kept for audit; the reference stays
  readable with ``deleted_at`` set, by design.

(``allow_header_conformance`` is checked: a 405's ``Allow`` lists every method of the path.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from authentiq.settings import DEFAULT_REFERENCES
from tests.conftest import live_server, make_settings

SEED = "20261122"
EXCLUDED = "positive_data_acceptance,use_after_free"


@pytest.mark.slow
def test_fuzz_the_api_from_its_openapi_document(tmp_path: Path) -> None:
    cli = Path(sys.executable).parent / "schemathesis"
    if not cli.exists():
        pytest.skip("schemathesis is not installed (the [dev] extra has it)")
    with live_server(make_settings(tmp_path, reference_seed_dir=DEFAULT_REFERENCES)) as server:
        command = [str(cli), "run", f"{server.url}/openapi.json", "--max-examples", "25",
                   "--seed", SEED, "--exclude-checks", EXCLUDED, "--no-color"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, (
        "schemathesis found problems (rerun: " + " ".join(command) + ")\n" + done.stdout[-8000:])
    assert "generated" in done.stdout  # it really ran test cases, not just loaded the schema
