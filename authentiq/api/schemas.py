"""Response models: what the API documents in OpenAPI and promises to clients."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class Reason(BaseModel):
    model_config = ConfigDict(extra="allow")
    code: str
    detail: str
    view: str | None = None


class ViewResult(BaseModel):
    view: str
    usable: bool
    reason: Literal["too_small", "blurred", "underexposed", "overexposed", "glare"] | None
    message: str | None
    format: str
    width: int
    height: int
    sharpness: float
    brightness: float
    glare: float
    attention: float


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
    views: dict[str, str] = {}


class Report(BaseModel):
    id: str
    created_at: str
    client_ref: str | None
    brand: str
    model: str
    verdict: Literal["authentic", "counterfeit", "inconclusive"]
    probabilities: Probabilities
    reasons: list[Reason]
    views: list[ViewResult]
    missing_views: list[str]
    classifier: Classifier
    timings: dict[str, float]
    links: Links
    stored_files: list[str]


class ReportList(BaseModel):
    items: list[Report]
    count: int


class Ready(BaseModel):
    ready: bool
    model: str
    precision: str
    backend: str
    device: str
    engine_id: str
    database: bool


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    view: str | None = None
