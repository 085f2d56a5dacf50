"""``authentiq export-triton DIR``: a Triton Inference Server model repository for our model.

``DIR/<name>/config.pbtxt`` is built as Triton's own ``ModelConfig`` protobuf (from tritonclient)
and written in its text format: inputs and outputs from the model contract, ``max_batch_size``,
``dynamic_batching`` (preferred sizes, queue delay, a queue policy that rejects at
``max_queue_size`` and drops requests whose caller has given up) and ``instance_group`` from our
settings. The contract's metadata rides along as ``parameters`` (``authentiq.*``), so the
``triton`` backend needs no local model file: it reads the spec from the server.

Runtimes (``--runtime``):
- ``onnxruntime``: Triton's ONNX Runtime backend serves ``1/model.onnx`` (the CPU INT8 flavour);
- ``tensorrt``: Triton's TensorRT backend serves ``1/model.plan``, a plan built by
  ``authentiq build-engine`` with TensorRT (not -RTX) for the Triton hosts' GPUs. A plan loads only
  in the TensorRT it was built with, so the export needs ``--triton-tensorrt``, the TensorRT
  version of the Triton release that will serve it, and refuses a plan from another version —
  unless the plan is version-compatible and that Triton is newer, in which case the server must
  run with ``--backend-config=tensorrt,version-compatible=true`` (the export says so);
- ``python``: Triton's Python backend runs ``1/model.py`` (:mod:`authentiq.modelling.triton_model`), which
  drives ONNX Runtime and batches every request Triton hands it into one run; for CPU-only
  Triton builds that ship without the ONNX Runtime backend.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from authentiq.contract.model_spec import (
    INPUT_NAME,
    OPTIONAL_OUTPUTS,
    OUTPUT_NAMES,
    ModelSpec,
    model_id,
    read_spec,
)
from authentiq.contract.triton import TRITON_HINT, spec_parameters
from authentiq.errors import ExportFailed
from authentiq.inference.backends.tensorrt_lib import version_tuple
from authentiq.inference.engine_build import sidecar_path
from authentiq.inference.engine_compat import describe, version_admits
from authentiq.settings import BatcherSettings, ModelSettings, Settings

Runtime = Literal["onnxruntime", "tensorrt", "python"]
RUNTIMES: tuple[Runtime, ...] = ("onnxruntime", "tensorrt", "python")


@dataclass(frozen=True)
class Export:
    folder: Path  # DIR/<name>
    config: str  # config.pbtxt as written
    files: tuple[str, ...]  # below folder
    notes: tuple[str, ...] = ()  # what the Triton hosts need to serve it


def model_config_pb2() -> Any:
    try:
        from tritonclient.grpc import model_config_pb2
    except ImportError as exc:
        raise ImportError(f"export-triton and the triton backend need tritonclient: {TRITON_HINT}"
                          ) from exc
    return model_config_pb2


def io_dims(model: Path) -> dict[str, list[int]]:
    """Every input and output of the ONNX graph → its shape after the batch axis (static)."""
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    dims: dict[str, list[int]] = {}
    for value in [*graph.input, *graph.output]:
        shape = [d.dim_value for d in value.type.tensor_type.shape.dim][1:]
        if any(d <= 0 for d in shape):
            raise ExportFailed(f"{model}: {value.name} has a dynamic axis besides the batch "
                               f"({shape}); Triton needs fixed dims")
        dims[value.name] = shape
    return dims


def build_config(name: str, runtime: Runtime, spec: ModelSpec, dims: dict[str, list[int]],
                 model: ModelSettings, batcher: BatcherSettings, timeout_s: float,
                 identity: str) -> Any:
    """Triton's batcher gets ours (``batcher``); ``timeout_s`` is its default queue timeout;
    ``identity``: the exported ONNX file's model id."""
    mc = model_config_pb2()
    config = mc.ModelConfig(name=name, max_batch_size=batcher.max_batch_size)
    if runtime == "tensorrt":
        config.platform = "tensorrt_plan"
    else:
        config.backend = runtime
    config.input.add(name=INPUT_NAME, data_type=mc.TYPE_FP32, dims=dims[INPUT_NAME])
    for output in [*OUTPUT_NAMES, *(o for o in OPTIONAL_OUTPUTS if o in dims)]:
        config.output.add(name=output, data_type=mc.TYPE_FP32, dims=dims[output])
    batching = config.dynamic_batching
    batching.preferred_batch_size.extend(batcher.preferred_batch_sizes)
    batching.max_queue_delay_microseconds = round(batcher.max_queue_delay_ms * 1000)
    policy = batching.default_queue_policy
    policy.max_queue_size = batcher.max_queue_size  # beyond it: rejected at once
    policy.timeout_action = mc.ModelQueuePolicy.REJECT
    policy.default_timeout_microseconds = round(timeout_s * 1_000_000)
    policy.allow_timeout_override = True  # each request brings what is left of its own deadline
    gpu = runtime == "tensorrt"
    group = config.instance_group.add(count=batcher.batcher_instances,
                                      kind=mc.ModelInstanceGroup.KIND_GPU if gpu
                                      else mc.ModelInstanceGroup.KIND_CPU)
    if gpu:
        group.gpus.append(model.gpu_index)
    for key, value in spec_parameters(spec, identity).items():
        config.parameters[key].string_value = value
    if runtime == "onnxruntime" and model.ort_threads:
        config.parameters["intra_op_thread_count"].string_value = str(model.ort_threads)
    return config


def export_triton(out_dir: Path, settings: Settings, *, runtime: Runtime = "onnxruntime",
                  name: str = "authentiq", model: Path | None = None, plan: Path | None = None,
                  triton_tensorrt: str | None = None, version: int = 1) -> Export:
    """Write ``out_dir/name`` (replacing an earlier export of the same name, never half-written):
    the model and batcher sections of ``settings``, and its request timeout.

    ``triton_tensorrt``: the TensorRT version inside the Triton release that serves the plan
    (``--runtime tensorrt`` only; docs/deployment.md lists them per release)."""
    from google.protobuf import text_format

    if runtime not in RUNTIMES:
        raise ExportFailed(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
    notes: tuple[str, ...] = ()
    served, batcher = settings.model, settings.batcher
    if runtime == "tensorrt":
        model = model or served.tensorrt_model_path
        if plan is None or not plan.is_file():
            raise ExportFailed("--runtime tensorrt needs --plan: a TensorRT plan built by "
                               "`authentiq build-engine` with TensorRT for the Triton hosts' GPUs")
        notes = check_plan(plan, batcher.max_batch_size, triton_tensorrt)
    model = model or served.model_path
    spec = read_spec(model)
    config = build_config(name, runtime, spec, io_dims(model), served, batcher,
                          settings.inspection.request_timeout_s, model_id(model))
    text = text_format.MessageToString(config)
    files = {"config.pbtxt": text.encode()}
    if runtime == "tensorrt" and plan is not None:
        files[f"{version}/model.plan"] = plan.read_bytes()
    else:
        files[f"{version}/model.onnx"] = model.read_bytes()
    if runtime == "python":
        files[f"{version}/model.py"] = (Path(__file__).parent / "triton_model.py").read_bytes()
    target = out_dir / name
    staging = out_dir / f".{name}.export"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for rel, data in files.items():
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            (staging / rel).write_bytes(data)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Export(target, text, tuple(sorted(files)), notes)


def check_plan(plan: Path, max_batch: int, triton_tensorrt: str | None) -> tuple[str, ...]:
    """Refuse a plan Triton's TensorRT backend would not load (or not fill); the notes say what
    the Triton hosts need. The plan's sidecar (``authentiq build-engine``) names its TensorRT."""
    try:
        record = json.loads(sidecar_path(plan).read_text())
        fields, target = record["fields"], record["runs_on"]
        built_by, options = str(fields["tensorrt"]), fields["options"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ExportFailed(f"{plan} has no readable sidecar {sidecar_path(plan).name} ({exc}), so "
                           f"its TensorRT version cannot be checked against Triton's; export plans "
                           f"built by `authentiq build-engine`") from exc
    if built_by.startswith("tensorrt_rtx"):
        raise ExportFailed(f"{plan} was built by TensorRT-RTX; Triton's TensorRT backend runs "
                           f"plans of TensorRT proper")
    if options.get("max_batch", max_batch) < max_batch:
        raise ExportFailed(f"{plan} was built for batches up to {options['max_batch']}, below "
                           f"AUTHENTIQ_MAX_BATCH_SIZE={max_batch}; rebuild with --max-batch")
    if not triton_tensorrt:
        raise ExportFailed(f"{plan} was built by {built_by}; give --triton-tensorrt, the TensorRT "
                           f"version of the Triton release that will serve it (a plan loads only in "
                           f"the TensorRT it was built with; docs/deployment.md lists them)")
    compatible = bool(options.get("version_compatible"))
    refused = version_admits(built_by, f"tensorrt {triton_tensorrt}", compatible)
    if refused:
        raise ExportFailed(f"Triton's TensorRT backend would not load {plan.name}: {refused} "
                           f"(Triton's)")
    notes = [f"the plan runs on {describe(target)}: give the Triton hosts such GPUs"]
    if version_tuple(built_by.partition(" ")[2]) != version_tuple(triton_tensorrt):
        notes.append(f"the plan ({built_by}) is version-compatible: start tritonserver with "
                     f"--backend-config=tensorrt,version-compatible=true")
    return tuple(notes)
