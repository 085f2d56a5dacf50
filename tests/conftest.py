"""Shared fixtures: real models, real images, real databases, the real app."""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import onnx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from authentiq.api.app import create_app
from authentiq.model_spec import ModelSpec, ViewSpec
from authentiq.settings import DEFAULT_MODEL, Settings
from authentiq.synthetic import SyntheticItem, make_item

REPO = Path(__file__).resolve().parents[1]
ENGINES = REPO / "engines"
FP32_MODEL = ENGINES / "authentiq-default.fp32.onnx"
PG_URL = os.environ.get("AUTHENTIQ_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


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


def make_settings(tmp: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "model_path": DEFAULT_MODEL, "database_url": f"sqlite:///{tmp / 'authentiq.db'}",
        "blob_dir": tmp / "blobs", "preprocess_workers": 2, "ort_threads": 2,
        "reference_seed_dir": None,  # tests that need references enrol them
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def files_of(item: SyntheticItem, views: list[str] | None = None) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [(v, (f"{v}.jpg", b, "image/jpeg")) for v, b in item.views.items()
            if views is None or v in views]


def postgres_available() -> bool:
    import sqlalchemy

    from authentiq.reports import make_engine

    engine = make_engine(PG_URL)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
    except Exception:
        return False
    finally:
        engine.dispose()
    return True


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db.sqlite'}"
        return
    if not postgres_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_URL} (CI needs it)")
        pytest.skip(f"PostgreSQL is not reachable at {PG_URL}")
    from sqlmodel import SQLModel

    import authentiq.jobs
    import authentiq.references  # noqa: F401 - registers the reference tables
    from authentiq.reports import make_engine

    engine = make_engine(PG_URL)
    SQLModel.metadata.drop_all(engine)  # every test starts from an empty database
    engine.dispose()
    yield PG_URL


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


def has_tensorrt() -> bool:
    import importlib.util

    return any(importlib.util.find_spec(m) is not None for m in ("tensorrt", "tensorrt_rtx"))


@pytest.fixture(scope="session")
def tensorrt() -> object:
    """The installed TensorRT flavour. ``make test`` runs these tests a second time with
    tensorrt-rtx on the path and AUTHENTIQ_TEST_TENSORRT=required, so CI cannot skip them."""
    from authentiq.backends.tensorrt_lib import import_tensorrt

    if not has_tensorrt():
        if os.environ.get("AUTHENTIQ_TEST_TENSORRT") == "required":
            pytest.fail("AUTHENTIQ_TEST_TENSORRT=required but no TensorRT flavour imports")
        pytest.skip("no TensorRT flavour installed (the second `make test` pass installs one)")
    return import_tensorrt()
