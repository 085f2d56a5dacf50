"""Response models: what the API documents in OpenAPI and promises to clients."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Reason(BaseModel):
    model_config = ConfigDict(extra="allow")
    code: str
    detail: str
    view: str | None = None
    stance: Literal["against"] | None = Field(
        None, description="present when the reason's numbers argue against the stated verdict")


class GateCheck(BaseModel):
    """The view gate's facts about one photo (``authentiq.view_gate``)."""

    distance: float = Field(description="distance ratio to its own view's fitted photos; "
                                        "≤ 1 looks like what the model knows")
    looks_like: str | None = Field(description="the view it resembles most")
    finding: Literal["not_a_product", "wrong_view", "duplicate_view", "misoriented_view",
                     "degraded_view"] | None
    other_view: str | None = Field(description="the view a wrong_view or duplicate_view names")


class Retake(BaseModel):
    """A photo to take again, and why."""

    view: str
    reason: str = Field(description="a quality reason (blurred, glare, ...) or a gate finding "
                                    "(not_a_product, wrong_view, duplicate_view, "
                                    "misoriented_view, degraded_view)")
    message: str


class GateSummary(BaseModel):
    applied: bool = Field(description="false: the model has no view gate (reasons say so)")
    fitted_on: str | None


class ViewQuality(BaseModel):
    view: str
    usable: bool
    reason: Literal["too_small", "blurred", "underexposed", "overexposed", "glare",
                    "not_a_product", "wrong_view", "duplicate_view", "misoriented_view",
                    "degraded_view"] | None
    message: str | None
    format: str
    width: int
    height: int
    sharpness: float
    brightness: float
    glare: float
    gate: GateCheck | None = None  # None: the photo was unusable, or the model has no gate


class ViewResult(ViewQuality):
    attention: float


class ReferenceMatch(BaseModel):
    id: str
    brand: str
    model: str
    similarity: float


class ClaimedMatches(BaseModel):
    brand: str
    model: str
    count: int
    best: float | None
    mean_top_k: float | None
    matches: list[ReferenceMatch]


class ReferenceEvidence(BaseModel):
    """A copy of the reference comparison, kept by the report (valid after references go)."""

    model_version: str
    k: int
    claimed: ClaimedMatches
    other_products: list[ReferenceMatch]


class Fusion(BaseModel):
    applied: bool
    p_classifier: float
    p_classifier_calibrated: float | None = None  # absent in schema 2
    temperature: float | None = None
    p_counterfeit: float
    thresholds: dict[str, Any]


class Probabilities(BaseModel):
    authentic: float
    counterfeit: float


class Classifier(BaseModel):
    name: str
    version: str
    precision: str
    backend: str
    device: str
    engine_id: str
    thresholds: dict[str, float]


class Links(BaseModel):
    self: str
    page: str | None = None
    pdf: str | None = None
    views: dict[str, str] = {}


class Heatmaps(BaseModel):
    classes: list[Literal["authentic", "counterfeit"]]
    colormap: str
    notice: str
    images: dict[str, dict[str, str]]  # class → view (or "overview") → URL of a WebP


class Statement(BaseModel):
    automated: bool
    text: str
    how_to_contest: str


class Submitter(BaseModel):
    key_id: str | None


class Review(BaseModel):
    seq: int
    created_at: str
    reviewer: str  # the authenticated key, "<name> (key <id>)" (report schema v3 unchanged)
    decision: Literal["confirm", "override"]
    previous_verdict: str
    verdict: Literal["authentic", "counterfeit", "inconclusive"]
    reason: str
    hash: str


class ReviewRecord(Review):
    """A review as recorded: the report's entry plus the key and the reviewer's note."""

    key_id: str | None = Field(description="the reviewing key (null: keys were not enforced)")
    key_name: str | None
    note: str | None = Field(description="free text the reviewer added; never the identity")


class ReviewState(BaseModel):
    status: Literal["unreviewed", "confirmed", "overridden"]
    final_verdict: Literal["authentic", "counterfeit", "inconclusive"]
    version: int
    reviews: list[Review]


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    decision: Literal["confirm", "override"]
    verdict: Literal["authentic", "counterfeit", "inconclusive"] | None = None
    reason: str = Field(min_length=3, max_length=4000, description="why; mandatory, kept on record")
    note: str | None = Field(None, max_length=200, description=(
        "free text kept beside the review, e.g. the person behind a shared key. The reviewer "
        "on record is always the authenticated key"))
    reviewer: str | None = Field(None, max_length=200, description=(
        "deprecated: kept as the note when no note is given; never the identity"))
    expected_version: int = Field(ge=0, description="review.version of the report as you read it; "
                                                    "409 if it changed meanwhile")


class Report(BaseModel):
    """A stored report (JSON Schema: ``api_schemas/report.v4.schema.json``)."""

    schema_version: Literal["2", "3", "4"] = Field(
        description="4 for new reports; 3 for those stored before the gate's misoriented_view and "
                    "degraded_view findings (otherwise the same); 2 for those stored before the "
                    "view gate (they lack retake, review_advised and gate, and their confidence "
                    "is always a number)")
    id: str
    created_at: str
    client_ref: str | None
    brand: str
    model: str
    verdict: Literal["authentic", "counterfeit", "inconclusive"]
    confidence: float | None = Field(
        description="the calibrated probability of the automated verdict; null when inconclusive")
    probabilities: Probabilities
    reasons: list[Reason]
    retake: list[Retake] = Field([], description="photos to take again (empty: none)")
    review_advised: list[str] = Field([], description="why the report is in the review queue")
    gate: GateSummary | None = None
    fusion: Fusion
    references: ReferenceEvidence
    views: list[ViewResult]
    missing_views: list[str]
    classifier: Classifier
    heatmaps: Heatmaps
    submitted_by: Submitter
    statement_of_reasons: Statement
    timings: dict[str, float]
    links: Links
    stored_files: list[str]
    review: ReviewState | None = None  # current human review state (absent only in old exports)


class ReportSummary(BaseModel):
    id: str
    created_at: str | None
    client_ref: str | None
    brand: str
    model: str
    initial_verdict: Literal["authentic", "counterfeit", "inconclusive"]
    final_verdict: Literal["authentic", "counterfeit", "inconclusive"]
    review_status: Literal["unreviewed", "confirmed", "overridden"]
    flagged: bool
    confidence: float | None
    p_counterfeit: float
    key_id: str | None
    version: int
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
    embedded_with: list[str]
    deleted_at: str | None
    deleted_reason: str | None
    links: Links


class ReferenceList(BaseModel):
    items: list[Reference]
    count: int
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
    model: str
    precision: str
    backend: str
    device: str
    engine_id: str
    database: bool
    references: int
    fusion: bool
    view_gate: bool  # the model carries the view gate (out-of-distribution, wrong and duplicate views)
    calibrated: bool  # the model carries a confidence temperature


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
