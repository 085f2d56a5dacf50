"""One exception hierarchy for the whole service.

Every error a client can cause or see is an :class:`AuthentiqError`; the API maps it to an
RFC 9457 ``application/problem+json`` body in one handler (``authentiq.api.problems``). ``slug``
becomes the stable ``type`` URI, ``status`` the HTTP status and ``title`` the short summary.
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_BASE = "https://authentiq.dev/problems/"


class AuthentiqError(Exception):
    """Base of every domain error. Subclasses set ``slug``, ``status`` and ``title``."""

    slug: ClassVar[str] = "internal-error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, *, view: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.view = view
        self.extra = extra

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers the response must carry (``Retry-After`` for overload)."""
        retry_after = self.extra.get("retry_after")
        return {"Retry-After": str(retry_after)} if retry_after is not None else {}

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.slug

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.view is not None:
            body["view"] = self.view
        body.update(self.extra)
        return body


# --- upload and image problems -------------------------------------------------------------


class UnsupportedMediaType(AuthentiqError):
    slug, status, title = "unsupported-media-type", 415, "Not a supported image"


class EmptyFile(AuthentiqError):
    slug, status, title = "empty-file", 422, "Empty file"


class CorruptImage(AuthentiqError):
    slug, status, title = "corrupt-image", 422, "Corrupt or truncated image"


class FileTooLarge(AuthentiqError):
    slug, status, title = "file-too-large", 413, "File too large"


class RequestTooLarge(AuthentiqError):
    slug, status, title = "request-too-large", 413, "Request too large"


class ImageTooLarge(AuthentiqError):
    slug, status, title = "image-too-large", 413, "Image has too many pixels"


class TooManyFiles(AuthentiqError):
    slug, status, title = "too-many-files", 422, "Too many files"


class DuplicateView(AuthentiqError):
    slug, status, title = "duplicate-view", 422, "View uploaded twice"


class UnknownView(AuthentiqError):
    slug, status, title = "unknown-view", 422, "Unknown view name"


class MissingView(AuthentiqError):
    slug, status, title = "missing-view", 422, "Required view missing"


class UnknownProduct(AuthentiqError):
    slug, status, title = "unknown-product", 422, "Brand or model not supported"


class InvalidField(AuthentiqError):
    slug, status, title = "invalid-field", 422, "Invalid or missing form field"


class ClientClosedRequest(AuthentiqError):
    """The client went away before its request was read or answered (nginx's 499): nobody
    receives the answer; it is logged in one line and counted as 499, not as a server error."""

    slug, status, title = "client-closed-request", 499, "Client closed the request"


class SlowUpload(AuthentiqError):
    """The body did not arrive within ``AUTHENTIQ_BODY_TIMEOUT_S`` (a slow or stalled client)."""

    slug, status, title = "slow-upload", 408, "Request body too slow"


# --- resources ------------------------------------------------------------------------------


class ReportNotFound(AuthentiqError):
    slug, status, title = "report-not-found", 404, "Report not found"


class ReviewConflict(AuthentiqError):
    """The report was reviewed meanwhile: ``expected_version`` is not its current version."""

    slug, status, title = "review-conflict", 409, "Report changed meanwhile"


class DatabaseSchemaError(AuthentiqError):
    slug, status, title = "database-schema", 500, "Database schema is out of date"


class DatabaseNotFound(AuthentiqError):
    """A command that only reads was pointed at an SQLite file that does not exist (a typo in
    ``--database-url``, say): it would otherwise create an empty database and report nothing."""

    slug, status, title = "database-not-found", 500, "No database at that path"


class ReferenceNotFound(AuthentiqError):
    slug, status, title = "reference-not-found", 404, "Reference not found"


class DuplicateReference(AuthentiqError):
    """The same photo set is already a live reference (``reference_id`` names it)."""

    slug, status, title = "duplicate-reference", 409, "Already enrolled"


class ReferenceRejected(AuthentiqError):
    """A reference must be a clean record: every photo must pass the quality check."""

    slug, status, title = "reference-rejected", 422, "Reference photos rejected"


# --- model and backend ----------------------------------------------------------------------


class ModelContractError(AuthentiqError):
    """The ONNX file does not honour the model contract (missing input/output/metadata)."""

    slug, status, title = "model-contract", 500, "Model does not follow the contract"


class CandidateMismatch(AuthentiqError):
    """A shadow's candidate model cannot score what the served model scored (other views)."""

    slug, status, title = "candidate-mismatch", 422, "Candidate model does not fit"


class BackendUnavailable(AuthentiqError):
    slug, status, title = "backend-unavailable", 503, "Inference backend unavailable"


class QueueFull(AuthentiqError):
    """The batcher's queue is at ``max_queue_size``; carries ``retry_after`` (seconds)."""

    slug, status, title = "queue-full", 503, "Inference queue full"


class ShuttingDown(AuthentiqError):
    slug, status, title = "shutting-down", 503, "Service is shutting down"


class DatabaseUnavailable(AuthentiqError):
    slug, status, title = "database-unavailable", 503, "Database unavailable"


class DeadlineExceeded(AuthentiqError):
    """The request's deadline passed before its batch could start; it was never executed."""

    slug, status, title = "deadline-exceeded", 504, "Deadline exceeded"


class InferenceFailed(AuthentiqError):
    slug, status, title = "inference-failed", 500, "Inference failed"


class CalibrationError(AuthentiqError):
    slug, status, title = "calibration-error", 500, "Calibration failed"


class DatasetError(AuthentiqError):
    slug, status, title = "dataset-error", 500, "Dataset is unusable"


class TrainingExportFailed(AuthentiqError):
    """``export-training-data`` stopped part-way; the items written before are whole and listed."""

    slug, status, title = "training-export-failed", 500, "Training data export failed"


# --- access, jobs, engines, exports and the other parts: one class per failure they report ---


class TooManyInFlight(AuthentiqError):
    """A client already has ``AUTHENTIQ_MAX_IN_FLIGHT_PER_CLIENT`` requests running."""

    slug, status, title = "too-many-in-flight", 429, "Too many requests in flight"


class CrossSiteRequest(AuthentiqError):
    slug, status, title = "cross-site-request", 403, "Form posted from another origin"


class BackendFailed(BackendUnavailable):
    """The backend can run nothing more in this process (a sticky CUDA error): every batch is
    refused at once and ``/readyz`` answers 503 until the process is restarted."""

    slug, status, title = "backend-failed", 503, "Inference backend failed; restart required"


# CUDA errors after which the process's context is lost (every later call fails the same way).
CUDA_STICKY_ERRORS = frozenset({
    "cudaErrorIllegalAddress", "cudaErrorLaunchTimeout", "cudaErrorHardwareStackError",
    "cudaErrorIllegalInstruction", "cudaErrorMisalignedAddress", "cudaErrorInvalidAddressSpace",
    "cudaErrorInvalidPc", "cudaErrorLaunchFailure", "cudaErrorECCUncorrectable", "cudaErrorAssert",
    "cudaErrorTensorMemoryLeak", "cudaErrorContained",
})


class CudaError(BackendUnavailable):
    slug, status, title = "cuda-error", 503, "CUDA error"

    @property
    def sticky(self) -> bool:
        """True when the process's CUDA context is lost: nothing but a restart helps."""
        return self.extra.get("cuda_error") in CUDA_STICKY_ERRORS


class ClientError(AuthentiqError):
    slug, status, title = "client-error", 400, "Request failed"


class EngineBuildFailed(AuthentiqError):
    slug, status, title = "engine-build-failed", 500, "Engine build failed"


class EngineMismatch(AuthentiqError):
    slug, status, title = "engine-mismatch", 503, "Engine plan does not match this system"


class IdempotencyKeyReused(AuthentiqError):
    slug, status, title = "idempotency-key-reused", 422, "Idempotency key reused with another body"


class IdempotencyInProgress(AuthentiqError):
    slug, status, title = "idempotency-in-progress", 409, "The first request is still running"


class JobNotFound(AuthentiqError):
    slug, status, title = "job-not-found", 404, "No such job"


class JobCrashed(AuthentiqError):
    slug, status, title = "job-crashed", 500, "Job crashed repeatedly"


class Unauthorized(AuthentiqError):
    slug, status, title = "unauthorized", 401, "API key missing or invalid"

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="authentiq"'}


class Forbidden(AuthentiqError):
    slug, status, title = "forbidden", 403, "API key lacks the scope"


class PdfBusy(AuthentiqError):
    slug, status, title = "pdf-busy", 503, "Too many PDFs being rendered"


class RateLimited(AuthentiqError):
    slug, status, title = "rate-limited", 429, "Too many requests"


class ShareLinkNotFound(AuthentiqError):
    slug, status, title = "share-link-not-found", 404, "No such share link"


class UnknownTenant(AuthentiqError):
    slug, status, title = "unknown-tenant", 422, "No such tenant"


class ExportFailed(AuthentiqError):
    slug, status, title = "export-failed", 500, "Export failed"


class DeliveryNotFound(AuthentiqError):
    slug, status, title = "delivery-not-found", 404, "No such webhook delivery"


class ModelNotFound(AuthentiqError):
    slug, status, title = "model-not-found", 404, "No such model in the registry"


class ModelRefused(AuthentiqError):
    """``models register`` of a model whose acceptance failed or is missing (without --force),
    a promotion or rollback that cannot be done (embeddings missing, nothing to return to)."""

    slug, status, title = "model-refused", 409, "Model refused"


class ModelNotPromoted(AuthentiqError):
    """This worker's model is not the promoted one, and it could not switch to it (no file of
    the promoted release on this host yet): it refuses to inspect until a later try to switch, or
    a restart, succeeds; carries ``retry_after``."""

    slug, status, title = "model-not-promoted", 503, "This worker's model is no longer promoted"
