"""Build TensorRT engine plans from the TensorRT-flavour INT8 ONNX, and cache them by what they depend on.

A plan ``<engine_dir>/<model>.<flavour>.plan`` is valid only for the exact system it was built for.
Its sidecar ``.plan.json`` records the cache key: sha256 of the ONNX bytes, TensorRT flavour and
version, the GPU (name and compute capability; "none" for an ahead-of-time build on a machine
without one), the profile shapes and every builder option. :func:`load_or_build` loads a plan only
when every field matches; otherwise it rebuilds (or, with building disabled, refuses and names the
fields that differ). A timing cache is kept beside the plan for ``tensorrt`` (in TensorRT-RTX
timing-cache calls are no-ops, so none is written there).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from authentiq.backends.tensorrt_lib import TensorRT, capturing_logger
from authentiq.errors import AuthentiqError
from authentiq.model_spec import INPUT_NAME

log = logging.getLogger(__name__)
HardwareCompat = Literal["none", "ampere_plus", "same_compute_capability"]
NO_GPU = "none (ahead-of-time build)"


class EngineBuildFailed(AuthentiqError):
    slug, status, title = "engine-build-failed", 500, "Engine build failed"


class EngineMismatch(AuthentiqError):
    slug, status, title = "engine-mismatch", 503, "Engine plan does not match this system"


@dataclass(frozen=True)
class BuildOptions:
    max_batch: int = 32
    opt_batch: int = 8
    workspace_mib: int = 1024
    optimization_level: int = 3  # TensorRT's builder optimisation level, 0..5
    hardware_compatibility: HardwareCompat = "none"
    version_compatible: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.opt_batch <= self.max_batch:
            raise ValueError(f"opt_batch must lie in 1..max_batch ({self.max_batch})")
        if not 0 <= self.optimization_level <= 5:
            raise ValueError("optimization_level must lie in 0..5")
        if self.workspace_mib < 1:
            raise ValueError("workspace_mib must be at least 1")


@dataclass(frozen=True)
class Engine:
    plan: bytes
    path: Path
    key: str
    fields: dict[str, Any]
    built: bool  # False: loaded from the cache
    seconds: float  # build or load time


def plan_path(onnx_path: Path, engine_dir: Path, flavour: str) -> Path:
    return engine_dir / f"{onnx_path.stem}.{flavour}.plan"


def key_fields(onnx_bytes: bytes, trt: TensorRT, gpu: str, input_shape: tuple[int, ...],
               options: BuildOptions) -> dict[str, Any]:
    """Everything a plan depends on; any change means a different plan."""
    tail = list(input_shape[1:])
    return {
        "onnx_sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "tensorrt": f"{trt.flavour} {trt.version}",
        "gpu": gpu,
        "profile": {"min": [1, *tail], "opt": [options.opt_batch, *tail],
                    "max": [options.max_batch, *tail]},
        "options": asdict(options),
    }


def digest(fields: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def input_shape(onnx_bytes: bytes, name: str) -> tuple[int, ...]:
    """The contract input's shape ``[batch, 3, H, W]`` from the ONNX graph (batch as -1)."""
    import onnx

    try:
        graph = onnx.load_from_string(onnx_bytes).graph
    except Exception as exc:  # protobuf raises its own DecodeError for a corrupt file
        raise EngineBuildFailed(f"{name} is not a readable ONNX model: {exc}") from exc
    for value in graph.input:
        if value.name == INPUT_NAME:
            dims = value.type.tensor_type.shape.dim
            return tuple(d.dim_value if d.HasField("dim_value") else -1 for d in dims)
    raise EngineBuildFailed(f"{name} has no input named {INPUT_NAME!r}")


def load_or_build(onnx_path: Path, engine_dir: Path, trt: TensorRT, gpu: str,
                  options: BuildOptions, *, allow_build: bool = True, force: bool = False) -> Engine:
    started = time.perf_counter()
    onnx_bytes = onnx_path.read_bytes()
    fields = key_fields(onnx_bytes, trt, gpu, input_shape(onnx_bytes, str(onnx_path)), options)
    key = digest(fields)
    path = plan_path(onnx_path, engine_dir, trt.flavour)
    sidecar = path.with_name(path.name + ".json")
    recorded = _read_json(sidecar)
    if not force and recorded.get("key") == key and path.is_file():
        plan = path.read_bytes()
        if hashlib.sha256(plan).hexdigest() == recorded.get("plan_sha256"):
            log.info("engine cache hit: %s (key %s)", path, key[:12])
            return Engine(plan, path, key, fields, False, time.perf_counter() - started)
        log.warning("engine plan %s does not match its sidecar's checksum; rebuilding", path)
    differences = _differences(recorded.get("fields"), fields) if path.is_file() else ["no plan yet"]
    if not allow_build:
        raise EngineMismatch(
            f"no usable engine plan for {onnx_path.name} at {path} ({'; '.join(differences)}) and "
            f"engine building is disabled; run `authentiq build-engine` on this machine",
            differences=differences)
    log.info("building the engine for %s (%s)", onnx_path.name, "; ".join(differences))
    plan, timing_cache = build_plan(onnx_bytes, trt, fields["profile"], options,
                                    _read_bytes(_timing_cache_path(path)))
    engine_dir.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, plan)
    if timing_cache is not None:
        _write_atomically(_timing_cache_path(path), timing_cache)
    seconds = time.perf_counter() - started
    record = {"key": key, "fields": fields, "plan_sha256": hashlib.sha256(plan).hexdigest(),
              "plan_bytes": len(plan), "build_seconds": round(seconds, 2),
              "built_at": datetime.now(UTC).isoformat()}
    _write_atomically(sidecar, json.dumps(record, indent=2).encode())
    log.info("built %s: %.1f MB in %.1f s", path, len(plan) / 1e6, seconds)
    return Engine(plan, path, key, fields, True, seconds)


def build_plan(onnx_bytes: bytes, trt: TensorRT, profile: dict[str, list[int]],
               options: BuildOptions, timing_cache: bytes | None = None) -> tuple[bytes, bytes | None]:
    """Parse the Q/DQ ONNX into a strongly typed network and build a serialized plan."""
    m = trt.module
    logger = capturing_logger(trt)
    builder = m.Builder(logger)
    flags = 0
    if hasattr(m.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):  # implicit from TensorRT 11 on
        flags |= 1 << int(m.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = m.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildFailed(f"TensorRT could not parse the model: {errors}")
    config = builder.create_builder_config()
    trt_profile = builder.create_optimization_profile()
    trt_profile.set_shape(INPUT_NAME, profile["min"], profile["opt"], profile["max"])
    config.add_optimization_profile(trt_profile)
    config.set_memory_pool_limit(m.MemoryPoolType.WORKSPACE, options.workspace_mib << 20)
    config.builder_optimization_level = options.optimization_level
    if options.hardware_compatibility != "none":  # TensorRT-RTX warns that it ignores this
        config.hardware_compatibility_level = getattr(
            m.HardwareCompatibilityLevel, options.hardware_compatibility.upper())
    if options.version_compatible:
        config.set_flag(m.BuilderFlag.VERSION_COMPATIBLE)
    cache = None
    if trt.flavour == "tensorrt":
        cache = config.create_timing_cache(timing_cache or b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise EngineBuildFailed(f"TensorRT could not build the engine: {logger.tail()}")
    return bytes(plan), (bytes(cache.serialize()) if cache is not None else None)


def _differences(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    if not old:
        return ["the plan has no readable key"]
    return [f"{k}: plan has {old.get(k)!r}, this system needs {v!r}"
            for k, v in new.items() if old.get(k) != v] or ["the plan's checksum"]


def _timing_cache_path(plan: Path) -> Path:
    return plan.with_suffix(".timing-cache")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _read_bytes(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
