"""Response models: what the API documents in OpenAPI and promises to clients."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from authentiq.contract import report
from authentiq.contract.report import Reason, Review, ViewQuality


class Links(BaseModel):
    self: str
    page: str | None = None
    pdf: str | None = None
    views: dict[str, str] = {}


class Heatmaps(report.Heatmaps):
    images: dict[str, dict[str, str]]  # class → view (or "overview") → URL of a WebP


class ReviewState(BaseModel):
    status: Literal["unreviewed", "confirmed", "overridden"]
    final_verdict: Literal["authentic", "counterfeit", "inconclusive"]
    version: int
    reviews: list[Review]  # who decided; the recorded key and note are in ReviewRecord


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    decision: Literal["confirm", "override"]
    verdict: Literal["authentic", "counterfeit", "inconclusive"] | None = None
    finding: Literal["not_a_product"] | None = Field(None, description=(
        "not_a_product: the photos show no product (of any brand), so the item is neither "
        "authentic nor counterfeit; only with the verdict inconclusive (an override to it, or "
        "a confirmation of it). Exported as its own training label"))
    reason: str = Field(min_length=3, max_length=4000, description="why; mandatory, kept on record")
    note: str | None = Field(None, max_length=200, description=(
        "free text kept beside the review, e.g. the person behind a shared key. The reviewer "
        "on record is always the authenticated key"))
    reviewer: str | None = Field(None, max_length=200, description=(
        "deprecated: kept as the note when no note is given; never the identity"))
    expected_version: int = Field(ge=0, description="review.version of the report as you read it; "
                                                    "409 if it changed meanwhile")


class Report(report.Report):
    """A stored report with its links (JSON Schema: ``api_schemas/report.v5.schema.json``)."""

    heatmaps: Heatmaps
    review: ReviewState | None = None  # type: ignore[assignment]  # (absent only in old exports)
    links: Links


class ReportSummary(BaseModel):
    id: str
    created_at: str | None
    client_ref: str | None
    brand: str
    model: str
    initial_verdict: Literal["authentic", "counterfeit", "inconclusive"]
    final_verdict: Literal["authentic", "counterfeit", "inconclusive"]
    # the latest review's finding: not_a_product (the photos show no product), else None
    final_finding: Literal["not_a_product"] | None = None
    review_status: Literal["unreviewed", "confirmed", "overridden"]
    flagged: bool
    confidence: float | None
    p_counterfeit: float
    key_id: str | None
    version: int
    model_id: str | None = None  # the model that decided; None before report schema 7
    links: Links


class ReportList(BaseModel):
    items: list[ReportSummary]
    count: int  # on this page
    total: int  # matching the filters
    next_cursor: str | None


class Reference(BaseModel):
    id: str
    brand: str
    model: str
    created_at: str
    source: str | None
    notes: str | None
    content_hash: str
    views: list[ViewQuality]
    p_counterfeit: float | None
    warnings: list[Reason]
    embedded_with: list[str]  # the ids of the models that embedded it (before ids: name@version)
    deleted_at: str | None
    deleted_reason: str | None
    links: Links


class ReferenceList(BaseModel):
    items: list[Reference]
    count: int  # on this page
    total: int  # matching the filters
    next_cursor: str | None


class Product(BaseModel):
    brand: str
    model: str
    overrides: dict[str, float]
    thresholds: dict[str, Any]
    references: int
    trained_on: bool


class ProductList(BaseModel):
    items: list[Product]
    count: int


class Ready(BaseModel):
    ready: bool
    model: str  # name@version
    model_id: str  # the served model's content hash (contract.model_spec.model_id)
    promoted_release: str | None  # the registry's promoted release (None: nothing promoted)
    model_promoted: bool  # the served model belongs to it; false: not ready, inspections 503
    model_error: str | None = None  # why not, and what to do
    precision: str
    backend: str
    device: str
    engine_id: str
    database: bool
    references: int
    fusion: bool
    view_gate: bool  # the model carries the view gate (out-of-distribution, wrong and duplicate views)
    calibrated: bool  # the model carries a confidence temperature
    backend_error: str | None = None  # why the backend can serve nothing more (restart needed)


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    view: str | None = None


class JobLinks(BaseModel):
    self: str
    report: str | None


class Job(BaseModel):
    """An async inspection (``mode=async``): queued → running → succeeded | failed."""

    id: str = Field(description="also the id of the report it makes")
    status: Literal["queued", "running", "succeeded", "failed"]
    brand: str
    model: str
    client_ref: str | None
    priority: Literal["interactive", "bulk"]
    attempts: int = Field(description="runs started (more than 1 after a worker crash)")
    created_at: str
    updated_at: str
    finished_at: str | None
    deadline_at: str | None = Field(description="with ?timeout_ms: a job that has not reached "
                                                "inference by then fails with deadline-exceeded")
    report_id: str | None
    verdict: Literal["authentic", "counterfeit", "inconclusive"] | None
    error: dict[str, Any] | None = Field(description="the problem (RFC 9457) if it failed")
    links: JobLinks


class DeliveryAttempt(BaseModel):
    at: str
    url: str | None = Field(None, description="where it was sent: the key's webhook at that "
                                              "moment (absent from attempts logged before it was recorded)")
    status_code: int | None
    error: str | None
    ms: float


class Delivery(BaseModel):
    """One webhook event: same id and body on every attempt."""

    id: str
    job_id: str
    event: Literal["inspection.completed", "inspection.failed"]
    url: str = Field(description="where the latest attempt went; every attempt goes to the key's "
                                 "webhook as it is then")
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: str | None
    last_status_code: int | None
    last_error: str | None
    created_at: str
    delivered_at: str | None
    log: list[DeliveryAttempt]


class JobWithDeliveries(Job):
    deliveries: list[Delivery]


class DeliveryList(BaseModel):
    items: list[Delivery]
