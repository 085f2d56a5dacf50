"""One settings object, read from ``AUTHENTIQ_*`` environment variables once at startup, in
typed sections.

Every variable is flat — ``AUTHENTIQ_<FIELD>``, e.g. ``AUTHENTIQ_MAX_BATCH_SIZE`` — and belongs
to exactly one section: a frozen model that holds the fields (with their validation) of one part
of the service. :class:`Settings` inherits every section's fields, so it reads and validates them
all at once; the composition root (``create_app``, ``open_services``, the CLI) reads it once and
hands each part only its section (``settings.batcher``, ``settings.quality``, ...).

Settings inherits the sections' *fields* (the private ``_...Fields`` classes), not the section
types themselves: a part typed to take :class:`QualitySettings` cannot be handed the whole
:class:`Settings` without mypy saying so.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO_ROOT / "engines" / "authentiq-default.int8-cpu.onnx"
DEFAULT_TRT_MODEL = REPO_ROOT / "engines" / "authentiq-default.int8-trt.onnx"
DEFAULT_REFERENCES = REPO_ROOT / "reference_data" / "items"


def _default_data_dir() -> Path:
    """A source checkout (the documented install, ``make run``) keeps its data in the checkout's
    ``var/`` whichever folder a command starts in; an installed package has no checkout, so its
    default stays ``./var`` (the folder the process starts in), as before."""
    return REPO_ROOT / "var" if (REPO_ROOT / "pyproject.toml").is_file() else Path("var")


DEFAULT_DATA_DIR = _default_data_dir()


def available_cpus() -> int:
    """The CPUs this process may use: its affinity mask, capped by a cgroup CPU quota (rounded
    up), so that a container started with ``--cpus 2`` on a 64-core host counts 2, where
    ``os.cpu_count()`` says 64. Worker processes and thread pools are sized from it."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    return max(1, min(cpus, math.ceil(quota))) if quota else cpus


def cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup"),
                     membership: Path = Path("/proc/self/cgroup")) -> float | None:
    """CPUs' worth of time this process's cgroup may use (None: no quota, or no cgroup file
    system): the tightest of ``cpu.max`` (cgroup v2) or ``cpu.cfs_quota_us`` /
    ``cpu.cfs_period_us`` (v1) from the process's cgroup up to the root of the mount (inside a
    container, the root is usually the container's own cgroup)."""
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        return None
    quotas = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            base, read = root, _cgroup2_quota
        elif "cpu" in controllers.split(","):
            base = root / "cpu" if (root / "cpu").is_dir() else root / controllers
            read = _cgroup1_quota
        else:
            continue
        folder = base / path.strip("/")
        for step in (folder, *folder.parents):
            if step == base.parent:
                break
            quota = read(step)
            if quota is not None:
                quotas.append(quota)
    return min(quotas) if quotas else None


def _cgroup2_quota(folder: Path) -> float | None:
    try:
        limit, period = (folder / "cpu.max").read_text().split()
    except (OSError, ValueError):
        return None
    return None if limit == "max" else int(limit) / int(period)


def _cgroup1_quota(folder: Path) -> float | None:
    try:
        limit = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if limit <= 0 or period <= 0 else limit / period


class Section(BaseModel):
    """A typed, frozen group of settings: what one part of the service receives."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def of(cls, settings: BaseModel) -> Self:
        """This section's fields of ``settings`` (validated again: cheap, and never invalid)."""
        return cls.model_validate({name: getattr(settings, name) for name in cls.model_fields})


def _none_if_empty(v: object) -> object:
    return None if isinstance(v, str) and v.strip().lower() in ("", "none") else v


class _ModelFields(Section):
    """Which model runs where (authentiq.inference.select, authentiq.inference.engine_build)."""

    backend: Literal["auto", "tensorrt", "onnxruntime", "triton"] = Field(
        "auto", description="auto: TensorRT if it imports and a GPU is usable, else ONNX Runtime "
                            "CUDA, else ONNX Runtime CPU; triton: a Triton Inference Server "
                            "(AUTHENTIQ_TRITON_URL); an explicit choice never falls back")
    model_path: Path = Field(DEFAULT_MODEL, description="the ONNX model ONNX Runtime serves")
    ort_device: Literal["auto", "cpu", "cuda"] = "auto"
    ort_threads: int = Field(0, ge=0, description="ONNX Runtime intra-op threads; 0 = all cores")
    ort_spin: bool = Field(True, description="ONNX Runtime's intra-op threads spin-wait for work "
                                             "(false: they sleep, leaving their CPU to decoding)")
    gpu_index: int = Field(0, ge=0)
    tensorrt_flavour: Literal["auto", "tensorrt", "tensorrt_rtx"] = "auto"
    tensorrt_model_path: Path = Field(DEFAULT_TRT_MODEL,
                                      description="the TensorRT-flavour Q/DQ ONNX engines are built from")
    engine_dir: Path = Field(REPO_ROOT / "engines", description="built plans and timing caches")
    triton_url: str = Field("127.0.0.1:8001", description="Triton's gRPC address (backend triton)")
    triton_model: str = Field("authentiq", description="the model's name in Triton's repository")
    engine_build: bool = Field(True, description="build a missing or mismatched plan at startup; "
                                                 "false: refuse to start instead")
    trt_workspace_mib: int = Field(1024, ge=1)
    trt_optimization_level: int = Field(3, ge=0, le=5)
    trt_hardware_compatibility: Literal["none", "ampere_plus", "same_compute_capability"] = "none"
    trt_version_compatible: bool = False


class _BatcherFields(Section):
    """The dynamic batcher (authentiq.inference.batcher; the Triton export writes the same numbers)."""

    max_batch_size: int = Field(8, ge=1, le=256)
    preferred_batch_sizes: tuple[int, ...] = Field(
        (), description="batch sizes that run at once without waiting (JSON list, e.g. [4, 8])")
    max_queue_delay_ms: float = Field(2.0, ge=0, le=1000)
    max_queue_size: int = Field(128, ge=1, description="queued inspections before 503 + Retry-After")
    batcher_instances: int = Field(1, ge=1, le=16, description="batches running at once")
    adaptive_batching: bool = Field(
        True, description="run at once when the backend is idle instead of waiting the delay")

    @model_validator(mode="after")
    def _preferred_fit(self) -> Self:
        wrong = [p for p in self.preferred_batch_sizes if not 1 <= p <= self.max_batch_size]
        if wrong:
            raise ValueError(f"preferred_batch_sizes {wrong} must lie in 1..max_batch_size "
                             f"({self.max_batch_size})")
        return self


class _InspectionFields(Section):
    """One inspection's pipeline: its deadline, its worker pool and its decoding budgets
    (authentiq.pipeline.inspection; the routes take the deadline from here)."""

    request_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="default and longest deadline of one inspection")
    preprocess_workers: int = Field(
        default_factory=available_cpus, ge=1,
        description="threads decoding photos (and running the rest of the CPU work) in each "
                    "process; default: the CPUs available (`authentiq serve` with several "
                    "workers gives each its share)")
    restrict_products: bool = Field(
        True, description="refuse brand/model pairs the model does not declare (when it declares any)"
    )
    mirror_check: bool = Field(
        True, description="before a counterfeit verdict, score the item again with the view "
                          "carrying most of the counterfeit evidence mirrored back; if that makes "
                          "it authentic or nearly (fused probability below 0.1), ask for that "
                          "photo again (misoriented_view) instead")
    max_pixels: int = Field(50_000_000, ge=10_000)
    max_decoded_bytes_per_view: int = Field(
        128 * 2**20, ge=2**20, description="a photo's decoded raster (width × height × channels × "
                                          "bytes per sample, after JPEG DCT scaling), checked from "
                                          "its header before decoding; past it, 413")
    max_decoded_bytes_per_request: int = Field(
        256 * 2**20, ge=2**20, description="the same, summed over a request's photos")
    decode_memory_bytes: int = Field(
        512 * 2**20, ge=2**20, description="memory all decodes in flight may hold together (the "
                                          "raster and one working copy each); a decode past it "
                                          "waits its turn")

    @model_validator(mode="after")
    def _decode_budgets_fit(self) -> Self:
        if self.max_decoded_bytes_per_view > self.max_decoded_bytes_per_request:
            raise ValueError("max_decoded_bytes_per_view must not exceed "
                             "max_decoded_bytes_per_request")
        if 2 * self.max_decoded_bytes_per_view > self.decode_memory_bytes:
            raise ValueError("decode_memory_bytes must hold at least one photo of "
                             "max_decoded_bytes_per_view with its working copy (2×)")
        return self


class _QualityFields(Section):
    """The per-view quality check (authentiq.pipeline.quality)."""

    min_side: int = Field(256, ge=16, description="shortest side in pixels below which a view is too small")
    blur_threshold: float = Field(
        10.0, ge=0, description="variance of the Laplacian below which a view is blurred")
    dark_threshold: float = Field(35.0, ge=0, le=255)
    bright_threshold: float = Field(225.0, ge=0, le=255)
    glare_share: float = Field(0.25, ge=0, le=1)
    min_jpeg_quality: int = Field(
        20, ge=0, le=100, description="JPEG quality (estimated from the photo's quantization "
                                      "tables) below which a view is too compressed to judge")
    max_aspect: float = Field(3.0, ge=1, description="longest side over shortest side above "
                                                     "which a view is a stretched strip")
    max_repeated_lines: float = Field(
        0.7, ge=0, le=1, description="share of a view's rows and columns repeating their "
                                     "neighbour above which it was enlarged from a thumbnail")


class _UploadFields(Section):
    """What one request, and one client, may send (the upload routes, authentiq.api.limits,
    authentiq.pipeline.admission.InFlight)."""

    max_file_bytes: int = Field(25 * 1024 * 1024, ge=1024)
    max_request_bytes: int = Field(150 * 1024 * 1024, ge=1024)
    max_files: int = Field(12, ge=1)
    max_in_flight_per_client: int = Field(
        16, ge=1, description="synchronous inspections and quality checks one API key (or client "
                             "address) may have running; one more is 429 + Retry-After")


class _JobFields(Section):
    """Async jobs and the webhooks that report them (authentiq.storage.jobs, authentiq.storage.webhooks)."""

    job_workers: int = Field(4, ge=0, le=256, description="async jobs this process runs at once; "
                                                          "0: accept jobs, leave them to other workers")
    job_lease_s: float = Field(120, gt=0, description="a job still running after this (its worker "
                                                       "died) is claimed again by another")
    poll_s: float = Field(0.5, gt=0, description="how often idle job and webhook workers look for "
                                                 "work that other processes put in the database")
    job_max_attempts: int = Field(3, ge=1, description="runs before a job that keeps dying with its "
                                                       "worker is failed (job-crashed)")
    webhook_timeout_s: float = Field(10, gt=0, description="per delivery attempt")
    webhook_max_attempts: int = Field(12, ge=1, description="attempts before a delivery is failed")
    webhook_backoff_s: float = Field(5, gt=0, description="wait after the first failed attempt; "
                                                          "doubles after each (±20 % jitter)")
    webhook_backoff_max_s: float = Field(3600, gt=0, description="longest wait between attempts")


class _AccessFields(Section):
    """Who may call, from where, how often, and the public address links point at
    (authentiq.storage.keys, authentiq.services.ratelimit, authentiq.storage.share_links, the pages)."""

    auth: Literal["auto", "required", "off"] = Field(
        "auto", description="auto: API keys required once one exists; required: always; off: never")
    public_base_url: str = Field(
        "http://127.0.0.1:8000", description="where customers and auditors reach this service "
        "(scheme, host, optional path prefix): share links and QR codes are built from it, never "
        "from a request's Host header")
    share_link_days: float = Field(90, gt=0, le=3650, description="how long a customer share "
                                                                  "link (/r/...) stays valid")
    login_rate_limit: str = Field("10/minute", description="sign-in attempts per client address "
                                                           "on /login (limits notation)")
    cors_origins: tuple[str, ...] = Field(
        (), description="origins allowed to call the API from a browser (JSON list, e.g. "
                        "[\"https://kiosk.example.com\"]); empty: same origin only")
    rate_limit: str = Field("600/minute", description="per API key (or client address while keys "
                                                     "are not enforced), limits notation")
    rate_limit_storage: str = Field("memory://", description="memory:// (one process) or "
                                                             "redis://host:6379 (shared by workers)")

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if "*" in v:
            raise ValueError("cors_origins must list the kiosk origins; '*' would let any site "
                             "call the API with a user's browser")
        return v

    @field_validator("public_base_url")
    @classmethod
    def _base_url(cls, v: str) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or \
                parts.fragment:
            raise ValueError(f"public_base_url must be like https://authentiq.example.com, not {v!r}")
        return v.rstrip("/")

    @field_validator("rate_limit", "login_rate_limit")
    @classmethod
    def _rate(cls, v: str) -> str:
        from limits import parse

        try:
            parse(v)
        except ValueError as exc:
            raise ValueError(f"rate_limit {v!r} is not like '600/minute' or '10/second'") from exc
        return v


class _ConnectionFields(Section):
    """How `authentiq serve` runs uvicorn (authentiq.api.server) and how long a body may take
    (authentiq.api.limits)."""

    header_timeout_s: float = Field(10, gt=0, description="a request's headers must be complete "
                                                          "this long after its first byte")
    body_timeout_s: float = Field(120, gt=0, description="a request's whole body must arrive "
                                                         "within this (else 408 slow-upload)")
    keep_alive_s: float = Field(5, gt=0, description="idle keep-alive connections are closed after")
    max_connections: int = Field(1000, ge=1, description="connections and requests at once per "
                                                         "process; past it, 503 at once")
    reuse_port: bool = Field(True, description="with several workers, each listens on a socket "
                                               "of its own (Linux SO_REUSEPORT), so that the kernel "
                                               "spreads connections evenly; false: one shared socket")


class _PdfFields(Section):
    """Report PDFs (authentiq.web.pdf_cache)."""

    pdf_workers: int = Field(1, ge=1, le=16, description="threads rendering report PDFs (each "
                                                         "PDF is rendered once, then cached)")
    pdf_queue: int = Field(8, ge=1, description="PDF renders waiting or running before 503 "
                                                "pdf-busy + Retry-After")


class _StorageFields(Section):
    """The database and the blob store (authentiq.storage.db, authentiq.storage.blobs)."""

    data_dir: Path = Field(
        DEFAULT_DATA_DIR, description="the one folder the database and photos live in unless "
        "AUTHENTIQ_DATABASE_URL / AUTHENTIQ_BLOB_DIR say otherwise, so that the CLI and the server "
        "agree wherever each starts: a source checkout's var/ (else ./var); a relative path is "
        "taken from the folder the process starts in")
    database_url: str = Field(
        "", description="SQLAlchemy URL; default: the SQLite file authentiq.db in the data folder")
    migrate: bool = Field(True, description="upgrade the database schema at start-up (false: "
                                            "refuse to start unless `authentiq db upgrade` ran)")
    blob_dir: Path = Field(Path(), description="photos and heatmaps; default: blobs/ in the data "
                                               "folder")
    blob_url: str | None = Field(
        None, description="s3://bucket/prefix: photos and heatmaps in an S3-compatible store shared "
                          "by several hosts ([s3] extra; endpoint and credentials from the AWS_* "
                          "variables); unset: the local folder AUTHENTIQ_BLOB_DIR")
    orphan_grace_s: float = Field(
        600, ge=0, description="at start-up, blob folders without a row and older than this are "
                               "removed (left by a crash mid-write)")

    @model_validator(mode="before")
    @classmethod
    def _from_data_dir(cls, data: Any) -> Any:
        """The data folder made absolute once; an unset (or empty) database URL or blob folder
        derived from it. Values given explicitly are used as they are."""
        if not isinstance(data, dict):
            return data
        data_dir = Path(data.get("data_dir") or DEFAULT_DATA_DIR).expanduser().absolute()
        data = {**data, "data_dir": data_dir}
        if not str(data.get("database_url") or "").strip():
            data["database_url"] = f"sqlite:///{data_dir / 'authentiq.db'}"
        if not str(data.get("blob_dir") or "").strip():
            data["blob_dir"] = data_dir / "blobs"
        return data

    @field_validator("blob_url", mode="before")
    @classmethod
    def _blob_url_empty_is_none(cls, v: object) -> object:
        return _none_if_empty(v)

    @field_validator("blob_url")
    @classmethod
    def _s3_url(cls, v: str | None) -> str | None:
        if v is not None and (not v.startswith("s3://") or len(v) <= len("s3://")):
            raise ValueError(f"must look like s3://bucket/prefix, not {v!r}")
        return v

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, v: str) -> str:
        if not v.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError("database_url must be a sqlite:// or postgresql:// URL")
        return v


class _ReferenceFields(Section):
    """The reference database's search (authentiq.pipeline.reference_index) and its seed set."""

    reference_index: Literal["flat", "faiss"] = Field(
        "flat", description="flat: exact brute force; faiss: HNSW for very large sets ([faiss] extra)")
    reference_sync_s: float = Field(
        1.0, ge=0, description="how stale another worker's enrolments and deletes may be, at most")
    reference_seed_dir: Path | None = Field(
        DEFAULT_REFERENCES, description="genuine items enrolled once at start-up (unset: none)")

    @field_validator("reference_seed_dir", mode="before")
    @classmethod
    def _seed_dir_empty_is_none(cls, v: object) -> object:
        return _none_if_empty(v)


class _ShadowFields(Section):
    """A candidate model scoring every inspection beside the served one, off the answer path
    (authentiq.services.shadow_live; `authentiq models shadow --live` summarises it)."""

    shadow_model: Path | None = Field(
        None, description="a candidate ONNX model that also scores each inspection after its "
                          "answer is sent; its results are stored beside the report, never "
                          "returned (unset: no live shadow)")
    shadow_queue: int = Field(
        16, ge=1, le=10_000, description="inspections waiting for the shadow at most; one more "
                                         "is dropped and counted, never waited for")

    @field_validator("shadow_model", mode="before")
    @classmethod
    def _shadow_empty_is_none(cls, v: object) -> object:
        return _none_if_empty(v)


# The sections parts receive. Each adds nothing to its fields: the split between fields and
# section only keeps Settings from being a QualitySettings (see the module's doc).


class ModelSettings(_ModelFields):
    """Which model runs where: what ``open_backend`` and ``build-engine`` receive."""


class BatcherSettings(_BatcherFields):
    """The batcher's typed configuration (Triton's dynamic batcher, in our names)."""

    @property
    def max_queue_delay_s(self) -> float:
        return self.max_queue_delay_ms / 1000


class InspectionSettings(_InspectionFields):
    """What the :class:`~authentiq.pipeline.inspection.Inspector` and the request deadline need."""


class QualitySettings(_QualityFields):
    """The thresholds :func:`authentiq.pipeline.quality.check` applies."""


class UploadSettings(_UploadFields):
    """Upload and per-client limits, checked by the API layer."""


class JobSettings(_JobFields):
    """What the job runner and the webhook dispatcher receive."""


class AccessSettings(_AccessFields):
    """Keys, rate limits, CORS, sign-in and share links."""


class ConnectionSettings(_ConnectionFields):
    """Connection timeouts and limits of the HTTP server."""


class PdfSettings(_PdfFields):
    """The report PDF cache's renderers and queue."""


class StorageSettings(_StorageFields):
    """Where reports, photos and every other row and file are kept."""


class ReferenceSettings(_ReferenceFields):
    """The reference index and the shipped reference set."""


class ShadowSettings(_ShadowFields):
    """The live shadow: which candidate, and how much work may wait for it."""


class Settings(_ModelFields, _BatcherFields, _InspectionFields, _QualityFields, _UploadFields,
               _JobFields, _AccessFields, _ConnectionFields, _PdfFields, _StorageFields,
               _ReferenceFields, _ShadowFields, BaseSettings):
    """Every ``AUTHENTIQ_*`` variable, validated once; each part receives its section."""

    model_config = SettingsConfigDict(env_prefix="AUTHENTIQ_", frozen=True)

    @property
    def model(self) -> ModelSettings:
        return ModelSettings.of(self)

    @property
    def batcher(self) -> BatcherSettings:
        return BatcherSettings.of(self)

    @property
    def inspection(self) -> InspectionSettings:
        return InspectionSettings.of(self)

    @property
    def quality(self) -> QualitySettings:
        return QualitySettings.of(self)

    @property
    def uploads(self) -> UploadSettings:
        return UploadSettings.of(self)

    @property
    def jobs(self) -> JobSettings:
        return JobSettings.of(self)

    @property
    def access(self) -> AccessSettings:
        return AccessSettings.of(self)

    @property
    def connections(self) -> ConnectionSettings:
        return ConnectionSettings.of(self)

    @property
    def pdf(self) -> PdfSettings:
        return PdfSettings.of(self)

    @property
    def storage(self) -> StorageSettings:
        return StorageSettings.of(self)

    @property
    def references(self) -> ReferenceSettings:
        return ReferenceSettings.of(self)

    @property
    def shadow(self) -> ShadowSettings:
        return ShadowSettings.of(self)


SECTIONS: dict[str, type[Section]] = {
    "model": ModelSettings, "batcher": BatcherSettings, "inspection": InspectionSettings,
    "quality": QualitySettings, "uploads": UploadSettings, "jobs": JobSettings,
    "access": AccessSettings, "connections": ConnectionSettings, "pdf": PdfSettings,
    "storage": StorageSettings, "references": ReferenceSettings, "shadow": ShadowSettings,
}
"""Each section's name on :class:`Settings` and its type (docs and tests go through these)."""
