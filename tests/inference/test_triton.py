"""Triton Inference Server: the exported repository, parsed by Triton's own config schema and
loaded by a real tritonserver; the `triton` backend against it gives the in-process verdicts."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from authentiq.api.app import create_app
from authentiq.cli import main
from authentiq.contract.model_spec import model_id, read_spec
from authentiq.errors import BackendUnavailable, DeadlineExceeded, ExportFailed
from authentiq.inference.backends.onnxruntime import OnnxRuntimeBackend
from authentiq.inference.backends.triton import TritonBackend
from authentiq.modelling.synthetic import make_item
from authentiq.modelling.triton_export import export_triton
from authentiq.settings import DEFAULT_MODEL, DEFAULT_TRT_MODEL
from tests.conftest import TritonServer, allow_classifier_only, files_of, make_settings, start_triton

BATCHING = {"max_batch_size": 16, "preferred_batch_sizes": (4, 8), "max_queue_delay_ms": 1.5,
            "max_queue_size": 64, "batcher_instances": 2, "request_timeout_s": 20.0}
TRITON_25_01 = "10.8.0.43"  # the TensorRT of Triton 25.01


def fake_plan(path: Path, tensorrt: str = f"tensorrt {TRITON_25_01}", max_batch: int = 32,
              version_compatible: bool = False) -> Path:
    """A plan file with the sidecar `authentiq build-engine` writes (TensorRT cannot build here)."""
    path.write_bytes(b"a plan built for the Triton hosts' GPUs")
    sidecar = {"fields": {"tensorrt": tensorrt, "options": {"max_batch": max_batch,
                                                            "version_compatible": version_compatible}},
               "runs_on": {"kind": "device", "gpu": "NVIDIA L4", "compute_capability": "8.9"}}
    path.with_name(path.name + ".json").write_text(json.dumps(sidecar))
    return path


@pytest.mark.parametrize("runtime", ["onnxruntime", "python", "tensorrt"])
def test_export_writes_what_triton_schema_accepts(tmp_path: Path, runtime: str) -> None:
    settings = make_settings(tmp_path, **BATCHING)
    plan = fake_plan(tmp_path / "authentiq.tensorrt.plan")
    done = export_triton(tmp_path / "repo", settings, runtime=runtime,  # type: ignore[arg-type]
                         plan=plan if runtime == "tensorrt" else None,
                         triton_tensorrt=TRITON_25_01 if runtime == "tensorrt" else None)
    config = text_format.Parse((done.folder / "config.pbtxt").read_text(), mc.ModelConfig())
    assert config.name == "authentiq" and config.max_batch_size == 16
    assert (config.platform or config.backend) == {"tensorrt": "tensorrt_plan"}.get(runtime, runtime)
    assert [i.name for i in config.input] == ["views"] and list(config.input[0].dims) == [3, 256, 384]
    assert {o.name: list(o.dims) for o in config.output} == {
        "logits": [2], "embedding": [128], "cam": [2, 16, 24], "view_scores": [6, 8],
        "view_features": [6, 256], "view_descriptors": [6, 256]}
    batching = config.dynamic_batching
    assert list(batching.preferred_batch_size) == [4, 8]
    assert batching.max_queue_delay_microseconds == 1500
    policy = batching.default_queue_policy
    assert policy.max_queue_size == 64 and policy.timeout_action == mc.ModelQueuePolicy.REJECT
    assert policy.default_timeout_microseconds == 20_000_000 and policy.allow_timeout_override
    [group] = config.instance_group
    assert group.count == 2
    assert group.kind == (mc.ModelInstanceGroup.KIND_GPU if runtime == "tensorrt"
                          else mc.ModelInstanceGroup.KIND_CPU)
    source = DEFAULT_TRT_MODEL if runtime == "tensorrt" else DEFAULT_MODEL
    props = {k: v.string_value for k, v in config.parameters.items() if k.startswith("authentiq.")}
    # the contract travels with the model, and its id (the workers have no file to hash)
    assert props == {**read_spec(source).to_props(), "authentiq.model_id": model_id(source)}
    expected = {"onnxruntime": ["1/model.onnx"], "python": ["1/model.onnx", "1/model.py"],
                "tensorrt": ["1/model.plan"]}[runtime]
    assert list(done.files) == [*expected, "config.pbtxt"]
    assert sorted(str(p.relative_to(done.folder)) for p in done.folder.rglob("*") if p.is_file()) \
        == sorted(done.files)


def test_export_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(tmp_path, max_batch_size=32)
    repo = tmp_path / "repo"
    with pytest.raises(ExportFailed, match="needs --plan"):
        export_triton(repo, settings, runtime="tensorrt")
    bare = tmp_path / "bare.plan"
    bare.write_bytes(b"plan")
    with pytest.raises(ExportFailed, match="no readable sidecar"):  # its version is unknown
        export_triton(repo, settings, runtime="tensorrt", plan=bare, triton_tensorrt=TRITON_25_01)
    small = fake_plan(tmp_path / "small.plan", max_batch=8)
    with pytest.raises(ExportFailed, match="batches up to 8, below AUTHENTIQ_MAX_BATCH_SIZE=32"):
        export_triton(repo, settings, runtime="tensorrt", plan=small, triton_tensorrt=TRITON_25_01)
    rtx = fake_plan(tmp_path / "rtx.plan", tensorrt="tensorrt_rtx 1.7.1.116")
    with pytest.raises(ExportFailed, match="TensorRT-RTX"):
        export_triton(repo, settings, runtime="tensorrt", plan=rtx, triton_tensorrt=TRITON_25_01)
    plan = fake_plan(tmp_path / "model.plan")
    with pytest.raises(ExportFailed, match="give --triton-tensorrt"):
        export_triton(repo, settings, runtime="tensorrt", plan=plan)
    with pytest.raises(ExportFailed, match=r"built by tensorrt 10\.8\.0\.43 and loads in exactly "
                                           r"that version.*this is tensorrt 10\.13\.3\.9"):
        export_triton(repo, settings, runtime="tensorrt", plan=plan, triton_tensorrt="10.13.3.9")
    assert not repo.exists() or not any(repo.iterdir())
    assert main(["export-triton", str(repo), "--runtime", "tensorrt"]) == 2
    assert "needs --plan" in capsys.readouterr().err


def test_version_compatible_plan_exports_to_a_later_triton_with_the_flag_named(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(tmp_path, max_batch_size=32)
    plan = fake_plan(tmp_path / "vc.plan", version_compatible=True)
    done = export_triton(tmp_path / "repo", settings, runtime="tensorrt", plan=plan,
                         triton_tensorrt="10.13.3.9")
    assert any("--backend-config=tensorrt,version-compatible=true" in n for n in done.notes)
    assert any("NVIDIA L4 (sm_89) only" in n for n in done.notes)
    with pytest.raises(ExportFailed, match="same or a later version"):  # never an older Triton
        export_triton(tmp_path / "repo", settings, runtime="tensorrt",
                      plan=fake_plan(tmp_path / "new.plan", tensorrt="tensorrt 10.13.3.9",
                                     version_compatible=True), triton_tensorrt=TRITON_25_01)
    exact = export_triton(tmp_path / "repo", settings, runtime="tensorrt",
                          plan=fake_plan(tmp_path / "exact.plan"), triton_tensorrt=TRITON_25_01)
    assert not any("version-compatible" in n for n in exact.notes)
    assert main(["export-triton", str(tmp_path / "cli"), "--runtime", "tensorrt", "--plan", str(plan),
                 "--triton-tensorrt", "10.13.3.9"]) == 0
    assert "note: the plan (tensorrt 10.8.0.43) is version-compatible" in capsys.readouterr().out


def test_triton_gets_the_time_left_not_the_whole_timeout(triton: TritonServer) -> None:
    """A batch carries what its last caller has left: Triton drops work nobody waits for."""
    remote = TritonBackend(triton.grpc_url, "authentiq", timeout_s=30)
    views = np.random.default_rng(3).normal(size=(4, 3, 256, 384)).astype(np.float32)
    try:
        assert remote.time_left(None) == 30
        assert 4.5 < remote.time_left(time.monotonic() + 5) <= 5
        assert remote.time_left(time.monotonic() + 600) == 30  # never past the request timeout
        with pytest.raises(DeadlineExceeded):
            remote.run(views, deadline=time.monotonic() - 0.1)
        with pytest.raises(BackendUnavailable, match=r"(?i)deadline"):  # 2 ms: no batch fits
            remote.run(views, deadline=time.monotonic() + 0.002)
        assert len(remote.run(views, deadline=time.monotonic() + 20)) == 4
    finally:
        remote.close()


def test_triton_serves_the_model_exactly_as_in_process(triton: TritonServer) -> None:
    """Triton's Python backend running the exported repository returns what ONNX Runtime in
    this process returns, for a batch larger than Triton's max_batch_size (split in two)."""
    remote = TritonBackend(triton.grpc_url, "authentiq")
    local = OnnxRuntimeBackend(DEFAULT_MODEL, intra_op_threads=2)
    try:
        assert remote.spec == local.spec
        assert remote.info.name == "triton" and remote.info.engine_id == "authentiq@1 (python)"
        assert remote.info.model_id == model_id(DEFAULT_MODEL)  # from the export's parameters
        views = np.random.default_rng(7).normal(size=(11, 3, 256, 384)).astype(np.float32)
        got, want = remote.run(views), local.run(views)
        for field in ("logits", "embedding", "cam", "view_scores", "view_features", "view_descriptors"):
            np.testing.assert_allclose(getattr(got, field), getattr(want, field), atol=1e-5)
    finally:
        remote.close()
        local.close()


def test_service_on_triton_gives_the_in_process_verdicts(tmp_path: Path, triton: TritonServer) -> None:
    items = [make_item(910_000 + i, counterfeit=i % 2 == 1) for i in range(4)]
    answers = {}
    for backend in ("onnxruntime", "triton"):
        # On triton the worker reads the contract from the server: it needs no model file.
        model = DEFAULT_MODEL if backend == "onnxruntime" else tmp_path / "no-such-model.onnx"
        settings = make_settings(tmp_path / backend, backend=backend, triton_url=triton.grpc_url,
                                 model_path=model)
        with TestClient(create_app(settings)) as client:
            allow_classifier_only(client)
            answers[backend] = [client.post("/v1/inspections", files=files_of(item),
                                            data={"brand": item.brand, "model": item.model}).json()
                                for item in items]
    for on_triton, in_process in zip(answers["triton"], answers["onnxruntime"], strict=True):
        assert on_triton["classifier"]["backend"] == "triton"
        assert on_triton["verdict"] == in_process["verdict"]
        assert on_triton["probabilities"] == pytest.approx(in_process["probabilities"], abs=1e-5)
        gates = [[v["gate"] for v in answer["views"]] for answer in (on_triton, in_process)]
        assert on_triton["gate"]["applied"] and all(g is not None for g in gates[0])
        assert [g["distance"] for g in gates[0]] == pytest.approx([g["distance"] for g in gates[1]],
                                                                  abs=1e-3)
        assert [g["finding"] for g in gates[0]] == [g["finding"] for g in gates[1]]
    assert {a["verdict"] for a in answers["triton"]} >= {"authentic", "counterfeit"}


def test_triton_down_at_start_and_mid_run(tmp_path: Path) -> None:
    """No server at start: the service refuses to start, naming it. A server that goes away
    while serving: 503 backend-unavailable (retryable), and service resumes when it is back."""
    with pytest.raises(BackendUnavailable, match=r"Triton at 127\.0\.0\.1:9"):
        TritonBackend("127.0.0.1:9", "authentiq", ready_wait_s=0.5)

    repo = tmp_path / "models"
    export_triton(repo, make_settings(tmp_path), runtime="python")
    server = start_triton(repo, tmp_path / "triton.log")
    item = make_item(920_000, counterfeit=False)
    form = {"brand": item.brand, "model": item.model}
    settings = make_settings(tmp_path, backend="triton", triton_url=server.grpc_url)
    try:
        with TestClient(create_app(settings)) as client:
            assert client.post("/v1/inspections", files=files_of(item), data=form).status_code == 201
            server.stop()
            down = client.post("/v1/inspections", files=files_of(item), data=form)
            assert down.status_code == 503, down.text
            assert down.json()["type"].endswith("/backend-unavailable")
            assert down.headers["retry-after"] == "2"
            assert len(client.get("/v1/reports").json()["items"]) == 1  # nothing half-stored
            port = int(server.grpc_url.rsplit(":", 1)[1])
            server = start_triton(repo, tmp_path / "triton.log", grpc_port=port)
            for _ in range(100):  # gRPC reconnects with backoff; clients retry after Retry-After
                again = client.post("/v1/inspections", files=files_of(item), data=form)
                if again.status_code != 503:
                    break
                time.sleep(0.1)
            assert again.status_code == 201, again.text
    finally:
        server.stop()


def test_triton_itself_parses_the_native_backend_exports(tmp_path: Path) -> None:
    """This tritonserver build has only the Python backend. Asked to load the onnxruntime and
    tensorrt exports, it gets past their config (parsed and validated) and stops only at the
    missing backend library; a misspelt config, for contrast, fails at parsing."""
    import httpx

    settings = make_settings(tmp_path)
    plan = fake_plan(tmp_path / "model.plan")
    export_triton(tmp_path / "models", settings, runtime="onnxruntime", name="ort")
    export_triton(tmp_path / "models", settings, runtime="tensorrt", name="trt", plan=plan,
                  triton_tensorrt=TRITON_25_01)
    broken = export_triton(tmp_path / "models", settings, runtime="onnxruntime", name="broken")
    config = broken.folder / "config.pbtxt"
    config.write_text(config.read_text().replace("max_batch_size", "max_batch_sise"))
    server = start_triton(tmp_path / "models", tmp_path / "triton.log", "--model-control-mode=explicit")
    try:
        def load(name: str) -> str:
            answer = httpx.post(f"{server.http_url}/v2/repository/models/{name}/load", timeout=60)
            assert answer.status_code != 200
            return str(answer.json()["error"])

        assert "unable to find backend library for backend 'onnxruntime'" in load("ort")
        assert "unable to find backend library for backend 'tensorrt'" in load("trt")
        assert "failed to poll from model repository" in load("broken")
    finally:
        server.stop()


def test_an_export_without_a_model_id_is_refused_saying_to_export_again(tmp_path: Path) -> None:
    """References and the registry are keyed by the model id, which an API worker on Triton reads
    from the config; a repository exported before ids has none."""
    export_triton(tmp_path / "models", make_settings(tmp_path), runtime="python")
    config = tmp_path / "models" / "authentiq" / "config.pbtxt"
    parsed = text_format.Parse(config.read_text(), mc.ModelConfig())
    del parsed.parameters["authentiq.model_id"]
    config.write_text(text_format.MessageToString(parsed))
    server = start_triton(tmp_path / "models", tmp_path / "tritonserver.log")
    try:
        with pytest.raises(BackendUnavailable, match=r"carries no authentiq\.model_id .* export "
                                                     r"it again with `authentiq export-triton`"):
            TritonBackend(server.grpc_url, "authentiq")
    finally:
        server.stop()
