"""Build TensorRT engine plans from the TensorRT-flavour INT8 ONNX, and cache them by what they depend on.

A plan ``<engine_dir>/<model>.<flavour>.<target>.plan`` has a sidecar ``.plan.json`` recording what
it was built from (sha256 of the ONNX bytes, TensorRT flavour and version, profile shapes, every
builder option) and where it runs (:mod:`authentiq.inference.engine_compat`: one GPU model, a compute
capability, Ampere+, or TensorRT-RTX's portable set). :func:`load_or_build` loads a plan when it
was built from the same model, profile and options by a TensorRT this host can load it with, for a
target that includes this host's GPU — so a portable plan built elsewhere (a TensorRT-RTX plan
built without a GPU, an ``ampere_plus`` plan) is used as it is. Otherwise it rebuilds (or, with
building disabled, refuses and names every reason).

Processes of one host take turns under a file lock beside the plan: under ``serve --workers N``
one worker builds and the others, once it is done, find its plan. Plan and sidecar are each
replaced atomically and the sidecar carries the plan's checksum, so a reader that sees one new
and one old file takes the lock, waits for the writer and reads again.

TensorRT (not -RTX) keeps a timing cache per TensorRT version and GPU; a cache TensorRT refuses is
replaced by a fresh one, and it is written back only when the build added to it. TensorRT-RTX has
no use for one (its timing-cache calls are no-ops that need a GPU).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from authentiq.contract.model_spec import INPUT_NAME
from authentiq.errors import EngineBuildFailed, EngineMismatch
from authentiq.inference.backends.cuda import Gpu
from authentiq.inference.backends.tensorrt_lib import TensorRT, process_logger, version_tuple
from authentiq.inference.engine_compat import (
    SAME_CC_SINCE,
    admits,
    runs_on,
    target_tag,
    version_admits,
)

log = logging.getLogger(__name__)
HardwareCompat = Literal["none", "ampere_plus", "same_compute_capability"]
COMPARED = ("onnx_sha256", "profile", "options")  # must equal; "tensorrt" follows version rules


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
    runs_on: dict[str, Any]
    built: bool  # False: loaded from the cache
    seconds: float  # build or load time

    @property
    def version_compatible(self) -> bool:
        return bool(self.fields["options"]["version_compatible"])


def plan_path(onnx_path: Path, engine_dir: Path, trt: TensorRT, gpu: Gpu | None,
              options: BuildOptions) -> Path:
    tag = target_tag(trt, gpu, options.hardware_compatibility)
    return engine_dir / f"{onnx_path.stem}.{trt.flavour}.{tag}.plan"


def key_fields(onnx_bytes: bytes, trt: TensorRT, input_shape: tuple[int, ...],
               options: BuildOptions) -> dict[str, Any]:
    """What a plan is built from; any change means a different plan."""
    tail = list(input_shape[1:])
    return {
        "onnx_sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "tensorrt": trt.label,
        "profile": {"min": [1, *tail], "opt": [options.opt_batch, *tail],
                    "max": [options.max_batch, *tail]},
        "options": asdict(options),
    }


def digest(fields: dict[str, Any], target: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps([fields, target], sort_keys=True).encode()).hexdigest()


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


def check_buildable(trt: TensorRT, gpu: Gpu | None, options: BuildOptions) -> None:
    """Refuse, before any work, a build this TensorRT cannot do here."""
    if trt.rtx and options.version_compatible:
        raise EngineBuildFailed(
            f"{trt.label} cannot build version-compatible plans (its wheels carry no lean runtime, "
            f"libnvinfer_lean); drop --version-compat / AUTHENTIQ_TRT_VERSION_COMPATIBLE")
    if not trt.rtx and gpu is None:
        raise EngineBuildFailed(
            f"{trt.label} builds a plan on a GPU (it times kernels on the device; even "
            f"--hardware-compat ampere_plus needs an Ampere or later GPU to build): run "
            f"`authentiq build-engine` on a host with the target GPU. Only TensorRT-RTX builds "
            f"without a GPU")
    if options.hardware_compatibility == "same_compute_capability" and not trt.rtx and \
            version_tuple(trt.version)[:2] < SAME_CC_SINCE:
        raise EngineBuildFailed(
            f"--hardware-compat same_compute_capability needs TensorRT "
            f"{'.'.join(map(str, SAME_CC_SINCE))} or later; this is {trt.version}")


def load_or_build(onnx_path: Path, engine_dir: Path, trt: TensorRT, gpu: Gpu | None,
                  options: BuildOptions, *, allow_build: bool = True, force: bool = False) -> Engine:
    """The plan for this model, options, TensorRT and GPU (``None``: a host without one)."""
    check_buildable(trt, gpu, options)  # nothing this TensorRT cannot build here can be found either
    started = time.perf_counter()
    onnx_bytes = onnx_path.read_bytes()
    fields = key_fields(onnx_bytes, trt, input_shape(onnx_bytes, str(onnx_path)), options)
    path = plan_path(onnx_path, engine_dir, trt, gpu, options)
    if not force and (found := _load(path, fields, trt, gpu)) is not None:
        return _timed(found, started)
    if not allow_build:
        reasons = _reasons(path, fields, trt, gpu)
        raise EngineMismatch(
            f"no usable engine plan for {onnx_path.name} at {path} ({'; '.join(reasons)}) and "
            f"engine building is disabled; run `authentiq build-engine` with the same options on a "
            f"host that can build for this GPU", differences=reasons)
    engine_dir.mkdir(parents=True, exist_ok=True)
    with _build_lock(path):
        if not force and (found := _load(path, fields, trt, gpu)) is not None:
            return _timed(found, started)  # another process built it while this one waited
        log.info("building the engine for %s (%s)", onnx_path.name,
                 "; ".join(_reasons(path, fields, trt, gpu)) if not force else "forced")
        timing = _timing_cache_path(engine_dir, trt, gpu)
        cached = timing.read_bytes() if timing and timing.is_file() else None
        plan, new_cache = build_plan(onnx_bytes, trt, fields["profile"], options, cached)
        if timing is not None and new_cache is not None and new_cache != cached:
            _write_atomically(timing, new_cache)
        target = runs_on(trt, gpu, options.hardware_compatibility)
        key = digest(fields, target)
        seconds = time.perf_counter() - started
        record = {"key": key, "fields": fields, "runs_on": target,
                  "built_on": gpu.label if gpu else "no GPU (ahead of time)",
                  "plan_sha256": hashlib.sha256(plan).hexdigest(), "plan_bytes": len(plan),
                  "build_seconds": round(seconds, 2), "built_at": datetime.now(UTC).isoformat()}
        _write_atomically(path, plan)
        _write_atomically(sidecar_path(path), json.dumps(record, indent=2).encode())
    log.info("built %s: %.1f MB in %.1f s", path, len(plan) / 1e6, seconds)
    return Engine(plan, path, key, fields, target, True, seconds)


def build_plan(onnx_bytes: bytes, trt: TensorRT, profile: dict[str, list[int]],
               options: BuildOptions, timing_cache: bytes | None = None) -> tuple[bytes, bytes | None]:
    """Parse the Q/DQ ONNX into a strongly typed network and build a serialized plan; also the
    timing cache after the build (TensorRT only)."""
    m = trt.module
    logger = process_logger(m)
    mark = logger.mark()
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
    if options.hardware_compatibility != "none" and not trt.rtx:  # RTX plans are portable anyway
        config.hardware_compatibility_level = getattr(
            m.HardwareCompatibilityLevel, options.hardware_compatibility.upper())
    if options.version_compatible:
        config.set_flag(m.BuilderFlag.VERSION_COMPATIBLE)
    cache = attach_timing_cache(config, timing_cache) if not trt.rtx else None
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise EngineBuildFailed(f"TensorRT could not build the engine: {logger.tail(mark)}")
    return bytes(plan), (bytes(cache.serialize()) if cache is not None else None)


def attach_timing_cache(config: Any, cached: bytes | None) -> Any:
    """Give the builder the saved timing cache, or a fresh one when TensorRT refuses the saved one
    (made on another device or TensorRT version); the cache in use is returned."""
    if cached:
        cache = config.create_timing_cache(cached)
        if cache is not None and config.set_timing_cache(cache, ignore_mismatch=False):
            return cache
        log.warning("TensorRT refused the saved timing cache (another GPU or TensorRT version); "
                    "starting a fresh one")
    cache = config.create_timing_cache(b"")
    if cache is None or not config.set_timing_cache(cache, ignore_mismatch=False):
        raise EngineBuildFailed("TensorRT refused an empty timing cache")
    return cache


def sidecar_path(plan: Path) -> Path:
    return plan.with_name(plan.name + ".json")


def _load(path: Path, fields: dict[str, Any], trt: TensorRT, gpu: Gpu | None) -> Engine | None:
    """The plan at ``path`` if it is intact and usable here, else None."""
    if _reasons(path, fields, trt, gpu):
        return None
    recorded = _read_json(sidecar_path(path))
    try:
        plan = path.read_bytes()
    except OSError:
        return None
    if hashlib.sha256(plan).hexdigest() != recorded.get("plan_sha256"):
        log.warning("engine plan %s does not match its sidecar's checksum", path)
        return None
    log.info("engine cache hit: %s (key %s)", path, str(recorded.get("key"))[:12])
    return Engine(plan, path, str(recorded.get("key")), recorded["fields"], recorded["runs_on"],
                  False, 0.0)


def _reasons(path: Path, fields: dict[str, Any], trt: TensorRT, gpu: Gpu | None) -> list[str]:
    """Why the plan at ``path`` cannot serve here (empty: it can)."""
    if not path.is_file():
        return ["no plan yet"]
    recorded = _read_json(sidecar_path(path))
    old, target = recorded.get("fields"), recorded.get("runs_on")
    if not isinstance(old, dict) or not isinstance(target, dict):
        return ["the plan has no readable sidecar"]
    reasons = [f"{k}: plan has {old.get(k)!r}, this system needs {fields[k]!r}"
               for k in COMPARED if old.get(k) != fields[k]]
    version = version_admits(str(old.get("tensorrt")), fields["tensorrt"],
                             bool(old.get("options", {}).get("version_compatible")))
    if version:
        reasons.append(version)
    if gpu is not None and (where := admits(target, gpu)):
        reasons.append(where)
    return reasons


@contextmanager
def _build_lock(plan: Path) -> Iterator[None]:
    """One builder per plan per host (flock; not across hosts on a network file system)."""
    with open(plan.with_name(f".{plan.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _timing_cache_path(engine_dir: Path, trt: TensorRT, gpu: Gpu | None) -> Path | None:
    """One timing cache per TensorRT version and GPU model (TensorRT proper only)."""
    if trt.rtx or gpu is None:
        return None
    return engine_dir / f"{trt.flavour}-{trt.version}.{target_tag(trt, gpu, 'none')}.timing-cache"


def _timed(engine: Engine, started: float) -> Engine:
    return Engine(engine.plan, engine.path, engine.key, engine.fields, engine.runs_on, engine.built,
                  time.perf_counter() - started)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
