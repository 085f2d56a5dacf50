"""The report: what one inspection decided and why — typed once, here.

The inspector builds a :class:`Report`, the store saves ``report.model_dump(mode="json")`` (ids,
never URLs) and reads it back as a :class:`Report`, and the API returns it with the links it
makes from the ids (:mod:`authentiq.api.resources`). The report's JSON Schema is generated from
the API's model and published as ``api_schemas/report.v<REPORT_SCHEMA_VERSION>.schema.json``;
any change to it bumps :data:`REPORT_SCHEMA_VERSION` (a test and ``authentiq report-schema``
refuse a changed schema under an unchanged version).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

REPORT_SCHEMA_VERSION = "7"
SchemaVersion = Literal["2", "3", "4", "5", "6", "7"]
VerdictName = Literal["authentic", "counterfeit", "inconclusive"]
ReviewFinding = Literal["not_a_product"]  # what a reviewer may record beside an inconclusive verdict
GateFinding = Literal["not_a_product", "wrong_view", "duplicate_view", "misoriented_view",
                      "degraded_view"]
PhotoReason = Literal["too_small", "blurred", "underexposed", "overexposed", "glare",  # quality
                      "overcompressed", "upscaled", "stretched",
                      "not_a_product", "wrong_view", "duplicate_view", "misoriented_view",
                      "degraded_view"]  # the view gate's findings


class ReasonCode(StrEnum):
    """Every reason a report (or a reference's warnings) can give, by its stable code."""

    CLASSIFIER = "classifier"
    REFERENCE_SIMILARITY = "reference_similarity"
    NO_REFERENCES = "no_references"
    CLOSEST_OTHER_PRODUCT = "closest_other_product"
    FUSION_UNAVAILABLE = "fusion_unavailable"
    GATE_UNAVAILABLE = "gate_unavailable"
    SCORE_COUNTERFEIT = "score_counterfeit"
    SCORE_AUTHENTIC = "score_authentic"
    SCORE_UNCERTAIN = "score_uncertain"
    AUTHENTIC_NEEDS_REFERENCES = "authentic_needs_references"
    BELOW_MIN_SIMILARITY = "below_min_similarity"
    MODEL_MISMATCH = "model_mismatch"
    ATTENTION = "attention"
    RETAKE_REQUIRED = "retake_required"  # a required photo failed the quality check
    NOT_A_PRODUCT = "not_a_product"  # the view gate's findings (authentiq.pipeline.view_gate)
    WRONG_VIEW = "wrong_view"
    DUPLICATE_VIEW = "duplicate_view"
    MISORIENTED_VIEW = "misoriented_view"
    DEGRADED_VIEW = "degraded_view"
    # the per-view reference check (authentiq.pipeline.view_references): a photo unlike the same
    # view of the claimed product's references; the check could not run for these references
    UNLIKE_REFERENCES = "unlike_references"
    VIEW_CHECK_SKIPPED = "view_check_skipped"
    OPTIONAL_VIEW_SKIPPED = "optional_view_skipped"
    REVIEW_ADVISED = "review_advised"
    AUTOMATED_DECISION = "automated_decision"
    COUNTERFEIT_LOOKING = "counterfeit_looking"  # reference warnings (authentiq.pipeline.enrolment)
    CLOSER_TO_OTHER_PRODUCT = "closer_to_other_product"
    MODEL_AUTHENTIC = "model_authentic"  # stored before schema 2's score_* codes; never written now
    MODEL_COUNTERFEIT = "model_counterfeit"
    MODEL_UNCERTAIN = "model_uncertain"


class Reason(BaseModel):
    model_config = ConfigDict(extra="allow")
    code: ReasonCode
    detail: str
    view: str | None = None
    stance: Literal["against"] | None = Field(
        None, description="present when the reason's numbers argue against the stated verdict")


class GateCheck(BaseModel):
    """The view gate's facts about one photo (``authentiq.pipeline.view_gate``)."""

    distance: float = Field(description="distance ratio to its own view's fitted photos; "
                                        "≤ 1 looks like what the model knows")
    looks_like: str | None = Field(description="the view it resembles most")
    finding: GateFinding | None
    other_view: str | None = Field(description="the view a wrong_view or duplicate_view names")


class Retake(BaseModel):
    """A photo to take again, and why."""

    view: str
    reason: str = Field(description="a quality reason (blurred, glare, ...), a gate finding "
                                    "(not_a_product, wrong_view, duplicate_view, "
                                    "misoriented_view, degraded_view) or unlike_references "
                                    "(unlike the same view of the claimed product's genuine "
                                    "references)")
    message: str


class GateSummary(BaseModel):
    applied: bool = Field(description="false: the model has no view gate (reasons say so)")
    fitted_on: str | None


class ViewQuality(BaseModel):
    view: str
    usable: bool
    reason: PhotoReason | None
    message: str | None
    format: str
    width: int
    height: int
    sharpness: float
    brightness: float
    glare: float
    jpeg_quality: int | None = Field(None, description="the JPEG quality the photo was saved at, "
                                     "estimated from its quantization tables (null: not a JPEG, "
                                     "or a report before schema 7)")
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


class ViewReferenceMatch(BaseModel):
    """One photo against the same view of the claimed product's references."""

    view: str
    similarity: float = Field(description="cosine similarity of the photo's descriptor to the "
                                          "closest claimed reference's same view (the model's "
                                          "view_descriptors)")
    reference_id: str
    floor: float = Field(description="the view's floor for this many references")
    finding: Literal["unlike_references"] | None
    other_product: str | None = Field(description="brand/model whose references' same view is "
                                                  "closer, when that made the finding")
    other_similarity: float | None


class ViewReferenceCheck(BaseModel):
    """The per-view comparison with the claimed product's references."""

    status: Literal["checked", "no_references", "not_filled", "unavailable"] = Field(
        description="checked; no_references: the claimed product has none; not_filled: some of "
                    "its references have no per-view descriptors of this model's check yet "
                    "(`authentiq re-embed` adds them), so the check was skipped; unavailable: "
                    "the model carries no per-view check")
    lacking: int = Field(description="claimed references without per-view descriptors")
    matches: list[ViewReferenceMatch]


class ReferenceEvidence(BaseModel):
    """A copy of the reference comparison, kept by the report (valid after references go)."""

    model_version: str
    k: int
    claimed: ClaimedMatches
    other_products: list[ReferenceMatch]
    views: ViewReferenceCheck | None = None  # absent before schema 6


class Fusion(BaseModel):
    applied: bool
    p_classifier: float
    p_classifier_calibrated: float | None = None  # absent in schema 2
    temperature: float | None = None
    p_counterfeit: float
    thresholds: dict[str, object]


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
    model_id: str | None = Field(None, description=(
        "the model's identity: a content hash of its graph and weights (16 hex characters), "
        "the key of the model registry and of reference embeddings; absent before schema 7"))


class Heatmaps(BaseModel):
    classes: list[Literal["authentic", "counterfeit"]]
    colormap: str
    notice: str
    views: list[str] = Field(description="the views (and 'overview', the whole mosaic) with a "
                                         "heatmap of each class")

    def files(self) -> list[str]:
        """The file names of every heatmap image the report offers."""
        return [heatmap_file(cls, view) for cls in self.classes for view in self.views]


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
    verdict: VerdictName
    reason: str
    hash: str


class ReviewRecord(Review):
    """A review as recorded: the report's entry plus the key and the reviewer's note."""

    key_id: str | None = Field(description="the reviewing key (null: keys were not enforced)")
    key_name: str | None
    note: str | None = Field(description="free text the reviewer added; never the identity")
    finding: ReviewFinding | None = Field(
        None, description="not_a_product: the reviewer found that the photos show no product "
                          "(of any brand), so the item is neither authentic nor counterfeit; "
                          "the verdict is then inconclusive. Exported as its own training label "
                          "(`authentiq export-training-data`)")


class ReviewState(BaseModel):
    status: Literal["unreviewed", "confirmed", "overridden"]
    final_verdict: VerdictName
    version: int
    reviews: list[ReviewRecord]


class Report(BaseModel):
    """One inspection's report as stored; the API adds ``links`` and heatmap URLs."""

    schema_version: SchemaVersion = Field(
        description="7 for new reports; 6, 5, 4, 3 or 2 for reports stored by earlier releases. "
                    "7 added classifier.model_id (the model's content hash), the quality "
                    "reasons overcompressed, upscaled and stretched and views[].jpeg_quality; 6 "
                    "added references.views (each photo against the same view of the claimed "
                    "product's references) and the reason codes unlike_references and "
                    "view_check_skipped; 5 added heatmaps.views (the database upgrade gave "
                    "older reports theirs) and lists the reason codes; 3 lacks the gate's "
                    "misoriented_view and degraded_view findings; 2 was stored before the view "
                    "gate (it lacks retake, review_advised and gate, and its confidence is always "
                    "a number)")
    id: str
    created_at: str
    client_ref: str | None
    brand: str
    model: str
    verdict: VerdictName
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
    stored_files: list[str] = Field(description=(
        "files stored with the report: the photos as uploaded and, from schema 6, attention.npz "
        "(the model's attention map, from which the heatmaps are drawn when first asked for); "
        "reports of earlier schemas list their heatmap images here"))
    review: ReviewState | None = None  # current human review state (absent only in old exports)

    @property
    def flagged(self) -> bool:
        """A person should look (``review_advised`` is not empty): the review queue's flag."""
        return bool(self.review_advised)

    def stored(self) -> dict[str, object]:
        """The immutable body the store keeps: everything but the (changing) review state."""
        return self.model_dump(mode="json", exclude={"review"})

    def photo(self, view: str) -> str | None:
        """The stored file name of a view's uploaded photo (None: not uploaded)."""
        return photo_of(self.stored_files, view)


def photo_of(stored_files: list[str], view: str) -> str | None:
    """Among a report's stored files, the name of a view's uploaded photo (None: not uploaded)."""
    return next((f for f in stored_files if f != ATTENTION_FILE and f.split(".")[0] == view), None)


ATTENTION_FILE = "attention.npz"  # a report's stored attention map, from which heatmaps are drawn


def heatmap_file(cls: str, view: str) -> str:
    """A heatmap image's file name: a view, or ``overview`` for the whole mosaic."""
    return f"heatmap-{cls}-{view}.webp"


def statement(report_id: str) -> Statement:
    """The statement of reasons every report carries (EU DSA Art. 17 asks for one)."""
    return Statement(
        automated=True,
        text=("This decision was made by automated means — an image classifier and a comparison "
              "with enrolled genuine reference items — without human involvement. It rests on "
              "the photos submitted and on the facts and reasons listed in this report."),
        how_to_contest=(f"Ask the operator of this service for a human review, quoting report "
                        f"{report_id}. A reviewer can confirm or override the verdict; the "
                        "automated verdict and every review stay on record."))
