"""Shared fixtures: real models, real images, real databases, the real app."""

from __future__ import annotations

import hashlib
import io
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from authentiq.api.app import create_app
from authentiq.contract.model_spec import ModelSpec, ViewSpec
from authentiq.modelling.synthetic import CATALOG, SyntheticItem, find_spec, make_item, passes_quality
from authentiq.settings import DEFAULT_MODEL, Settings
from authentiq.storage import db as storage_db
from benchmarks._common import TritonServer, free_port, launch_triton

REPO = Path(__file__).resolve().parents[1]
ENGINES = REPO / "engines"
FP32_MODEL = ENGINES / "authentiq-default.fp32.onnx"
PG_URL = os.environ.get("AUTHENTIQ_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
# The database every DB-touching test runs on: `make test` runs the suite on SQLite, then the
# DB-touching part again with AUTHENTIQ_TEST_DATABASE=postgres.
TEST_DATABASE = os.environ.get("AUTHENTIQ_TEST_DATABASE", "sqlite")
if TEST_DATABASE not in ("sqlite", "postgres"):
    raise ValueError(f"AUTHENTIQ_TEST_DATABASE must be sqlite or postgres, not {TEST_DATABASE!r}")
SCHEMA_PREFIX = "aqtest_"  # each test gets PostgreSQL schemas of its own, named by its tmp folder


def tiny_spec(**overrides: object) -> ModelSpec:
    base: dict[str, object] = {
        "views": (ViewSpec(name="front"), ViewSpec(name="back", required=False)),
        "grid": (1, 2), "tile_size": 32, "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25),
        "classes": ("authentic", "counterfeit"), "embedding_size": 4,
        "model_name": "tiny", "model_version": "0.0.1",
    }
    base.update(overrides)
    return ModelSpec.model_validate(base)


def build_tiny_model(path: Path, spec: ModelSpec | None = None, *, drop_output: str | None = None,
                     props: dict[str, str] | None = None) -> Path:
    """A small real network honouring the contract: conv → relu → CAM/logits/embedding."""
    spec = spec or tiny_spec()
    h, w = spec.input_hw
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.3, (4, 3, 8, 8)).astype(np.float32), "conv_w"),
        numpy_helper.from_array(np.zeros(4, np.float32), "conv_b"),
        numpy_helper.from_array(rng.normal(0, 1, (2, 4)).astype(np.float32), "fc_w"),
        numpy_helper.from_array(np.array([0.1, -0.1], np.float32), "fc_b"),
        numpy_helper.from_array(np.array([2, 3], np.int64), "axes_hw"),
    ]
    nodes = [
        helper.make_node("Conv", ["views", "conv_w", "conv_b"], ["c"], strides=[8, 8]),
        helper.make_node("Relu", ["c"], ["f"]),
        helper.make_node("Einsum", ["f", "fc_w"], ["cam"], equation="bchw,kc->bkhw"),
        helper.make_node("ReduceMean", ["cam", "axes_hw"], ["m"], keepdims=0),
        helper.make_node("Add", ["m", "fc_b"], ["logits"]),
        helper.make_node("ReduceMean", ["f", "axes_hw"], ["pooled"], keepdims=0),
        helper.make_node("LpNormalization", ["pooled"], ["embedding"], axis=1, p=2),
    ]
    outputs = [
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2]),
        helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 4]),
        helper.make_tensor_value_info("cam", TensorProto.FLOAT, ["batch", 2, h // 8, w // 8]),
    ]
    outputs = [o for o in outputs if o.name != drop_output]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("views", TensorProto.FLOAT, ["batch", 3, h, w])],
        outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    for key, value in (props if props is not None else spec.to_props()).items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


def retrained(source: Path, path: Path, *, version: str | None = None,
              props: dict[str, str] | None = None, nudge: float = 1e-3) -> Path:
    """``source`` with other weights (its first float tensor of weights scaled by 1 + ``nudge``),
    so another model id, as a retraining makes; ``version`` / ``props``: metadata to set."""
    model = onnx.load(str(source))
    tensor = next(t for t in model.graph.initializer
                  if t.data_type == TensorProto.FLOAT and np.prod(t.dims) > 1)
    tensor.CopyFrom(numpy_helper.from_array(
        (numpy_helper.to_array(tensor) * (1 + nudge)).astype(np.float32), tensor.name))
    set_props(model, {**({"authentiq.model_version": version} if version else {}), **(props or {})})
    onnx.save(model, str(path))
    return path


def set_props(model: onnx.ModelProto, props: dict[str, str]) -> None:
    """Set (or add) metadata properties of ``model`` in place."""
    existing = {p.key: p for p in model.metadata_props}
    for key, value in props.items():
        if key in existing:
            existing[key].value = value
        else:
            model.metadata_props.add(key=key, value=value)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny.onnx")


def jpeg(size: tuple[int, int] = (640, 480), seed: int = 0, quality: int = 90, **save: object) -> bytes:
    """A textured photo-like JPEG (sharp enough to pass the quality check)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(40, 220, (size[1] // 16 + 1, size[0] // 16 + 1, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize(size, Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, **save)
    return buf.getvalue()


@pytest.fixture(scope="session")
def genuine_item() -> SyntheticItem:
    return make_item(900_000_004, counterfeit=False)


def riva_item() -> SyntheticItem:
    """A genuine Castellan Riva whose photos all pass the quality check (the product the shipped
    references cover)."""
    seed = 43_000_000
    while not passes_quality((it := make_item(seed, counterfeit=False,
                                              spec=find_spec("Castellan", "Riva"))).views):
        seed += 1
    return it


def report_body(**changes: Any) -> dict[str, Any]:
    """A stored report body (schema v4) built directly, as pages, the PDF and the CLI read it: an
    unreviewed authentic verdict on two views; ``changes`` replace top-level keys."""
    rid = "0123456789abcdef0123456789abcdef"
    view = {"usable": True, "reason": None, "message": None, "format": "JPEG", "width": 480,
            "height": 360, "sharpness": 80.0, "brightness": 120.0, "glare": 0.0, "attention": 0.5,
            "gate": {"distance": 0.4, "looks_like": None, "finding": None, "other_view": None}}
    body: dict[str, Any] = {
        "schema_version": "4", "id": rid, "created_at": "2026-11-22T10:00:00+00:00",
        "client_ref": "sku-1", "brand": "Castellan", "model": "Riva", "verdict": "authentic",
        "confidence": 0.97, "probabilities": {"authentic": 0.97, "counterfeit": 0.03},
        "reasons": [
            {"code": "classifier", "value": 0.05, "detail": "The classifier's counterfeit probability is 0.050."},
            {"code": "score_authentic", "value": 0.03, "detail": "Combined counterfeit probability 0.030 is below 0.040."},
            {"code": "automated_decision", "detail": "This verdict was produced by automated means."}],
        "retake": [], "review_advised": [], "gate": {"applied": True, "fitted_on": "tests"},
        "fusion": {"applied": True, "p_classifier": 0.05, "p_classifier_calibrated": 0.02,
                   "temperature": 0.6, "p_counterfeit": 0.03,
                   "thresholds": {"authentic_below": 0.04, "counterfeit_above": 0.9,
                                  "applied_band": [0.04, 0.9]}},
        "references": {"model_version": "m@1", "k": 5, "claimed": {
            "brand": "Castellan", "model": "Riva", "count": 1, "best": 0.82, "mean_top_k": 0.82,
            "matches": [{"id": "r1", "brand": "Castellan", "model": "Riva", "similarity": 0.82}]},
            "other_products": []},
        "views": [{"view": "overall", **view}, {"view": "label", **view}],
        "missing_views": [],
        "classifier": {"name": "m", "version": "1", "precision": "fp32", "backend": "onnxruntime",
                       "device": "cpu", "engine_id": "m.onnx@sha256:0"},
        "heatmaps": {"classes": ["authentic"], "colormap": "inferno", "notice": "Not proof.",
                     "images": {"authentic": {}}},
        "submitted_by": {"key_id": None},
        "statement_of_reasons": {"automated": True, "text": "Made by automated means.",
                                 "how_to_contest": f"Ask for a human review of report {rid}."},
        "timings": {"total_ms": 10.0},
        "links": {"self": f"/v1/reports/{rid}", "page": f"/reports/{rid}",
                  "pdf": f"/v1/reports/{rid}.pdf", "views": {}},
        "stored_files": [],
        "review": {"status": "unreviewed", "final_verdict": "authentic", "version": 0, "reviews": []},
    }
    body.update(changes)
    return body


def make_settings(tmp: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "model_path": DEFAULT_MODEL, "database_url": database_url_for(tmp),
        "blob_dir": tmp / "blobs", "preprocess_workers": 2, "ort_threads": 2,
        "reference_seed_dir": None,  # tests that need references enrol them
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


def allow_classifier_only(client: TestClient) -> None:
    """Let every catalogue product be called authentic without references (a per-product setting,
    ``PUT /v1/products``): tests of storage, listing and review need all three verdicts without
    enrolling references. tests/system/test_trust.py tests the default, which refuses that."""
    for spec in CATALOG:
        r = client.put(f"/v1/products/{spec.brand}/{spec.model}",
                       json={"thresholds": {"allow_classifier_only": True}})
        assert r.status_code == 200, r.text


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        allow_classifier_only(c)
        yield c


def files_of(item: SyntheticItem, views: list[str] | None = None) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [(v, (f"{v}.jpg", b, "image/jpeg")) for v, b in item.views.items()
            if views is None or v in views]


def postgres_available() -> bool:
    import psycopg

    try:
        psycopg.connect(PG_URL, connect_timeout=3).close()
    except psycopg.Error:
        return False
    return True


def require_postgres() -> None:
    if not postgres_available():
        if os.environ.get("CI") or TEST_DATABASE == "postgres":
            pytest.fail(f"PostgreSQL is not reachable at {PG_URL}")
        pytest.skip(f"PostgreSQL is not reachable at {PG_URL}")


def postgres_schema_url(key: Path) -> str:
    """A URL on an empty PostgreSQL schema of its own (the same one for the same key)."""
    import psycopg

    name = SCHEMA_PREFIX + hashlib.sha1(str(key).encode()).hexdigest()[:16]
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {name}")
    return f"{PG_URL}?options=-csearch_path%3D{name}"


def database_url_for(tmp: Path) -> str:
    """The test database for one tmp folder: a SQLite file in it, or a PostgreSQL schema."""
    if TEST_DATABASE == "postgres":
        return postgres_schema_url(tmp)
    return f"sqlite:///{tmp / 'authentiq.db'}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The PostgreSQL pass runs only tests that use a database: those marked
    ``db_independent`` ran in the SQLite pass and would run exactly the same way again."""
    if TEST_DATABASE != "postgres":
        return
    independent = [i for i in items if i.get_closest_marker("db_independent")]
    if independent:
        config.hook.pytest_deselected(items=independent)
        items[:] = [i for i in items if not i.get_closest_marker("db_independent")]


@pytest.fixture(autouse=True)
def _db_independent_means_no_database(request: pytest.FixtureRequest,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Holds the ``db_independent`` marker to its word: such a test that opens a database
    fails (in the SQLite pass), so that the PostgreSQL pass never leaves out one that matters."""
    if request.node.get_closest_marker("db_independent") is None:
        return

    def refuse(url: object, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"{request.node.nodeid} is marked db_independent, so the PostgreSQL "
                             f"pass leaves it out, but it opened a database ({url}): remove the "
                             f"marker")

    monkeypatch.setattr(storage_db, "create_engine", refuse)


@pytest.fixture(scope="session", autouse=True)
def _drop_test_schemas() -> Iterator[None]:
    """PostgreSQL schemas made by tests go at the end of the run (and any a killed run left)."""
    def drop() -> None:
        import psycopg

        with psycopg.connect(PG_URL, autocommit=True) as conn:
            names = [r[0] for r in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", (SCHEMA_PREFIX,))]
            for name in names:
                conn.execute(f"DROP SCHEMA {name} CASCADE")

    available = postgres_available()
    if TEST_DATABASE == "postgres" and not available:
        raise pytest.UsageError(f"AUTHENTIQ_TEST_DATABASE=postgres but PostgreSQL is not "
                                f"reachable at {PG_URL}")
    if available:
        drop()
    yield
    if available:
        drop()


def start_server(tmp: Path, port: int, *args: str, log_name: str = "server.log",
                 **env: str) -> subprocess.Popen[bytes]:
    """``authentiq serve`` in a process of its own (the run's database, blobs in ``tmp``); one
    worker process unless ``args`` ask for more (tests kill and inspect that process)."""
    environ = {**os.environ, "AUTHENTIQ_DATABASE_URL": database_url_for(tmp),
               "AUTHENTIQ_BLOB_DIR": str(tmp / "blobs"), "AUTHENTIQ_REFERENCE_SEED_DIR": "",
               "AUTHENTIQ_PREPROCESS_WORKERS": "2", **env}
    log = tmp / log_name
    with log.open("ab") as err:  # the child keeps its own descriptor
        proc = subprocess.Popen([sys.executable, "-m", "authentiq", "serve", "--port", str(port),
                                 "--log-level", "warning",
                                 *(args if "--workers" in args else ("--workers", "1", *args))],
                                env=environ,
                                stdout=subprocess.DEVNULL, stderr=err)
    end = time.monotonic() + 60
    while time.monotonic() < end and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start: " + log.read_text()[-2000:])


TRITON_DIR = Path(os.environ.get("AUTHENTIQ_TEST_TRITON_DIR", REPO / ".venv" / "tritonserver"))


def start_triton(repository: Path, log: Path, *args: str, grpc_port: int = 0) -> TritonServer:
    """A real tritonserver (`make test` installs it in .venv/tritonserver); skipped where it
    cannot be installed, required in CI."""
    try:
        return launch_triton(TRITON_DIR, repository, log, *args, grpc_port=grpc_port)
    except FileNotFoundError as exc:
        if os.environ.get("CI") and platform.machine() == "x86_64":
            pytest.fail(f"{exc} (CI needs it: `make test` installs it)")
        pytest.skip(f"{exc} (`make test` installs it)")


@pytest.fixture(scope="session")
def triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    """One Triton server for the session, serving `authentiq export-triton --runtime python`."""
    from authentiq.modelling.triton_export import export_triton

    folder = tmp_path_factory.mktemp("triton")
    export_triton(folder / "models", make_settings(folder), runtime="python")
    server = start_triton(folder / "models", folder / "tritonserver.log")
    yield server
    server.stop()


@dataclass(frozen=True)
class S3Server:
    """moto's S3-compatible server (a real HTTP server on a local port, driven by real boto3)."""

    endpoint: str
    env: dict[str, str]  # what a client needs: endpoint, credentials, region

    def new_bucket(self) -> str:
        import uuid

        import boto3

        name = f"authentiq-{uuid.uuid4().hex[:12]}"
        client = boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="test",
                              aws_secret_access_key="test", region_name="us-east-1")
        client.create_bucket(Bucket=name)
        client.close()
        return name


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per S3 request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    yield S3Server(endpoint, {"AWS_ENDPOINT_URL_S3": endpoint, "AWS_ACCESS_KEY_ID": "test",
                              "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"})
    server.stop()


@pytest.fixture
def s3_blob_url(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """``s3://<a new bucket>/authentiq``, with the AWS_* variables pointing at the server."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return f"s3://{s3_server.new_bucket()}/authentiq"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """This run's test database (SQLite, or PostgreSQL with AUTHENTIQ_TEST_DATABASE=postgres)."""
    return database_url_for(tmp_path / "db")


@pytest.fixture
def postgres_url(tmp_path: Path) -> str:
    """An empty PostgreSQL schema, whichever database the run uses (for PostgreSQL-only tests)."""
    require_postgres()
    return postgres_schema_url(tmp_path / "pg")


@dataclass
class LiveServer:
    """The app behind a real uvicorn server on a free local port, in a background thread."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def metric(self, name: str, **labels: str) -> float:
        """The value of one Prometheus sample (0 when absent)."""
        text = httpx.get(self.url + "/metrics", timeout=10).text
        want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
                       if labels else "")
        for line in text.splitlines():
            sample, _, value = line.rpartition(" ")
            if sample == want:
                return float(value)
        return 0.0

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20) -> None:
        end = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > end:
                raise AssertionError("condition not reached in time")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(60)


@contextmanager
def live_server(settings: Settings, port: int = 0) -> Iterator[LiveServer]:
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning",
                            timeout_graceful_shutdown=30)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    end = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > end:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    live = LiveServer(f"http://127.0.0.1:{port}", server, thread)
    try:
        yield live
    finally:
        live.stop()


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def browser_missing() -> str | None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    return None if Path(CHROMIUM).exists() else f"no chromium at {CHROMIUM}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium through Playwright, with a fake camera (skipped without them, except
    under CI where ``make test`` installs both)."""
    missing = browser_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing} (make test installs it; CI needs it)")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", "--no-sandbox"])
        yield b
        b.close()


def has_tensorrt() -> bool:
    import importlib.util

    return any(importlib.util.find_spec(m) is not None for m in ("tensorrt", "tensorrt_rtx"))


@pytest.fixture(scope="session")
def tensorrt() -> object:
    """The installed TensorRT flavour. ``make test`` runs these tests a second time with
    tensorrt-rtx on the path and AUTHENTIQ_TEST_TENSORRT=required, so CI cannot skip them."""
    from authentiq.inference.backends.tensorrt_lib import import_tensorrt

    if not has_tensorrt():
        if os.environ.get("AUTHENTIQ_TEST_TENSORRT") == "required":
            pytest.fail("AUTHENTIQ_TEST_TENSORRT=required but no TensorRT flavour imports")
        pytest.skip("no TensorRT flavour installed (the second `make test` pass installs one)")
    return import_tensorrt()


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid training folder as `authentiq synth` writes it: 12 items (7 authentic, 5
    counterfeit) over the 6 catalogue products, every photo 256 px on the short side and passing
    the quality check. Read-only: copy it (`copy_dataset`) before changing anything."""
    from authentiq.modelling.synthetic import write_dataset

    root = tmp_path_factory.mktemp("dataset") / "photos"
    write_dataset(root, range(12), short_side=256, clean=True, balanced=True)
    return root


def copy_dataset(source: Path, to: Path) -> Path:
    shutil.copytree(source, to)
    return to
