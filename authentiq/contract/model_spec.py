"""The model contract: what an ONNX file must declare for the server to use it.

Inputs/outputs: ``views`` float32 [B, 3, H, W] in; ``logits`` [B, 2], ``embedding`` [B, D]
(L2-normalised) and ``cam`` [B, 2, h, w] out. ``metadata_props`` carry the keys in
:data:`REQUIRED_KEYS` (JSON values where structured). :func:`read_spec` validates all of it and
names whatever is missing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from authentiq.errors import ModelContractError

INPUT_NAME = "views"
OUTPUT_NAMES = ("logits", "embedding", "cam")
# Optional outputs of the view gate (authentiq.modelling.training.gate adds them;
# authentiq.pipeline.view_gate reads them): per-cell pooled features [B, cells, D] and, for
# every cell, the squared Mahalanobis distance of its features to each view's fitted
# distribution [B, cells, views]. A model without ``view_scores`` is served with the gate off,
# and its reports say so. A model with the gate's alteration head
# (GateParams.alteration_thresholds) has two more columns in ``view_scores``: the cell's own
# view's orientation and degradation logits [B, cells, views + 2]. The per-view reference check
# (authentiq.modelling.training.view_check adds it; authentiq.pipeline.view_references reads it)
# adds ``view_descriptors [B, cells, D]``: each cell's square-rooted ``view_features`` in a frame
# where genuine photos of one product vary as little as possible (whitened by the within-product
# scatter fitted on genuine items), compared by cosine similarity with the same view of the
# claimed product's references (ModelSpec.view_check holds the floors).
VIEW_FEATURES = "view_features"
VIEW_SCORES = "view_scores"
VIEW_DESCRIPTORS = "view_descriptors"
# in the order :class:`~authentiq.inference.backends.base.Outputs` holds them
OPTIONAL_OUTPUTS = (VIEW_SCORES, VIEW_FEATURES, VIEW_DESCRIPTORS)
PREFIX = "authentiq."
REQUIRED_KEYS = ("views", "grid", "tile_size", "mean", "std", "classes", "embedding_size",
                 "model_name", "model_version")


class ViewSpec(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    required: bool = True


class Thresholds(BaseModel):
    """Counterfeit probability bands: below ``authentic_below`` → authentic, at or above
    ``counterfeit_above`` → counterfeit, between → inconclusive."""

    model_config = ConfigDict(frozen=True)
    authentic_below: float = Field(0.5, ge=0, le=1)
    counterfeit_above: float = Field(0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.authentic_below > self.counterfeit_above:
            raise ValueError("authentic_below must not exceed counterfeit_above")
        return self


class FusionParams(BaseModel):
    """How the classifier and the reference comparison combine (``authentiq fit-fusion``).

    ``p_fused = sigmoid(intercept + w_logit · logit(p_classifier) + w_similarity · s)`` where ``s``
    is the mean similarity of the ``k`` closest genuine references of the claimed product. The
    band applies to ``p_fused``; ``min_similarity`` is the closest-reference similarity below
    which an item is never called authentic; an other product's reference closer than the claimed
    product's best by ``mismatch_margin`` is reported as a model mismatch.
    """

    model_config = ConfigDict(frozen=True)
    intercept: float
    w_logit: float
    w_similarity: float
    k: int = Field(5, ge=1, le=100)
    authentic_below: float = Field(ge=0, le=1)
    counterfeit_above: float = Field(ge=0, le=1)
    min_similarity: float = Field(ge=-1, le=1)
    mismatch_margin: float = Field(ge=0, le=2)
    fitted_on: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> FusionParams:
        if self.authentic_below > self.counterfeit_above:
            raise ValueError("authentic_below must not exceed counterfeit_above")
        return self


class GateParams(BaseModel):
    """Thresholds of the out-of-distribution and view gate (``authentiq fit-gate``).

    A photo in the slot of view ``v`` has the *distance ratio* ``r_u = view_scores[cell, u] /
    thresholds[u]`` to every view ``u``; ``r_v <= 1`` means it looks like the ``v`` photos the
    model was fitted on. ``thresholds`` apply to a full inspection, ``single_photo_thresholds`` to
    one photo checked alone (``/v1/quality``: blank neighbours shift the features a little). A
    photo whose own ratio exceeds ``wrong_view_ratio`` times its best other view's is in the
    wrong slot; two photos whose 16 × 16 grey thumbnails correlate at ``duplicate_correlation`` or
    more are the same photo. A photo whose alteration logit exceeds ``alteration_thresholds[v]``
    was mirrored or turned (orientation) or ruined by compression, upscaling or stretching
    (degradation) after it was taken.
    """

    model_config = ConfigDict(frozen=True)
    thresholds: dict[str, float]
    single_photo_thresholds: dict[str, float]
    wrong_view_ratio: float = Field(1.5, gt=1)
    duplicate_correlation: float = Field(0.95, gt=0, le=1)
    # With the alteration head: per view, the [orientation, degradation] logit a photo as taken
    # stays under (``view_scores``' two last columns); None: the model has no head.
    alteration_thresholds: dict[str, tuple[float, float]] | None = None
    single_photo_alteration_thresholds: dict[str, tuple[float, float]] | None = None
    quantile: float = Field(ge=0.5, lt=1)
    fitted_on: str = ""


class ViewCheckParams(BaseModel):
    """The per-view reference check (``authentiq fit-view-check``).

    Each usable photo's ``view_descriptors`` row (the model computes it: square-rooted
    ``view_features`` whitened by the within-product scatter of genuine photos) is compared, by
    cosine similarity, with the same view of the claimed product's enrolled references; the
    closest counts. A view is *unlike the references* when that similarity is below
    ``floors[view]``, or below ``loose[view]`` while another product's references of that view
    are closer by more than ``margins[view]`` (at least 0). Every table holds one value per entry
    of ``counts`` (references of the claimed product with that view): the closest of n
    references is more similar the larger n, so each count has its own floor; a count between
    two entries takes the lower entry's (fewer false alarms), one beyond the last the last's.
    ``features_id`` names the whitening in the graph: references keep it with their
    descriptors, and descriptors made by another whitening are not compared (``re-embed``).
    """

    model_config = ConfigDict(frozen=True)
    features_id: str = Field(min_length=1, max_length=64)
    components: int = Field(ge=0, description="within-product directions whitened one by one")
    counts: tuple[int, ...] = Field(min_length=1)
    floors: dict[str, tuple[float, ...]]
    loose: dict[str, tuple[float, ...]]
    margins: dict[str, tuple[float, ...]]
    quantile: float = Field(gt=0, lt=0.5, description="floors: this quantile of genuine photos")
    loose_quantile: float = Field(gt=0, lt=1)
    margin_quantile: float = Field(gt=0.5, lt=1)
    fitted_on: str = ""

    @model_validator(mode="after")
    def _tables(self) -> ViewCheckParams:
        if list(self.counts) != sorted(set(self.counts)) or self.counts[0] < 1:
            raise ValueError("counts must be ascending, distinct and at least 1")
        for name in ("floors", "loose", "margins"):
            table: dict[str, tuple[float, ...]] = getattr(self, name)
            if any(len(row) != len(self.counts) for row in table.values()):
                raise ValueError(f"{name} needs one value per count {list(self.counts)}")
        if not (set(self.floors) == set(self.loose) == set(self.margins)):
            raise ValueError("floors, loose and margins must name the same views")
        return self

    def at(self, view: str, count: int) -> tuple[float, float, float]:
        """(floor, loose floor, margin) for a view of a product with ``count`` references."""
        i = max(sum(c <= count for c in self.counts) - 1, 0)
        return self.floors[view][i], self.loose[view][i], self.margins[view][i]


class Calibration(BaseModel):
    """Temperature scaling of the classifier's logits (``authentiq fit-temperature``):
    ``p = softmax(logits / temperature)[counterfeit]``, fitted on held-out items."""

    model_config = ConfigDict(frozen=True)
    temperature: float = Field(gt=0)
    fitted_on: str = ""


class ModelSpec(BaseModel):
    model_config = ConfigDict(frozen=True)
    views: tuple[ViewSpec, ...] = Field(min_length=1)
    grid: tuple[int, int]  # rows, cols
    tile_size: int = Field(ge=16, le=1024)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    classes: tuple[str, str]
    embedding_size: int = Field(ge=1)
    model_name: str
    model_version: str
    precision: str = "fp32"
    thresholds: Thresholds = Thresholds()
    products: tuple[tuple[str, str], ...] = ()  # (brand, model) pairs it was trained on
    fusion: FusionParams | None = None  # absent: verdicts rest on the classifier alone
    gate: GateParams | None = None  # absent: no out-of-distribution gate (reports say so)
    calibration: Calibration | None = None  # absent: the classifier's softmax is taken as is
    # absent: photos are not compared view by view with the references (reports say so)
    view_check: ViewCheckParams | None = None
    data_card: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        rows, cols = self.grid
        if rows * cols < len(self.views):
            raise ValueError(f"grid {rows}x{cols} has fewer cells than the {len(self.views)} views")
        names = [v.name for v in self.views]
        if len(set(names)) != len(names):
            raise ValueError(f"view names repeat: {names}")
        if self.classes != ("authentic", "counterfeit"):
            raise ValueError(f"classes must be ('authentic', 'counterfeit'), got {self.classes}")
        if any(s <= 0 for s in self.std):
            raise ValueError("std values must be positive")
        if self.gate is not None:
            for table in (self.gate.thresholds, self.gate.single_photo_thresholds):
                if set(table) != set(names) or any(t <= 0 for t in table.values()):
                    raise ValueError(f"gate thresholds must be positive, one per view {names}")
            altered = (self.gate.alteration_thresholds, self.gate.single_photo_alteration_thresholds)
            if (altered[0] is None) != (altered[1] is None) or any(
                    t is not None and set(t) != set(names) for t in altered):
                raise ValueError(f"alteration thresholds must come in both tables, one pair per "
                                 f"view {names}")
        if self.view_check is not None and set(self.view_check.floors) != set(names):
            raise ValueError(f"view check floors must name every view {names}")
        return self

    @property
    def version_key(self) -> str:
        """What reference embeddings are tagged with: vectors from another key never mix."""
        return f"{self.model_name}@{self.model_version}"

    @property
    def input_hw(self) -> tuple[int, int]:
        return self.grid[0] * self.tile_size, self.grid[1] * self.tile_size

    @property
    def view_names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.views)

    @property
    def required_views(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.views if v.required)

    def to_props(self) -> dict[str, str]:
        data = self.model_dump(mode="json")
        return {PREFIX + k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}

    @classmethod
    def from_props(cls, props: dict[str, str], source: str = "model") -> ModelSpec:
        missing = [PREFIX + k for k in REQUIRED_KEYS if PREFIX + k not in props]
        if missing:
            raise ModelContractError(f"{source}: metadata_props lacks {', '.join(missing)}")
        raw: dict[str, Any] = {}
        for key, value in props.items():
            if not key.startswith(PREFIX):
                continue
            name = key[len(PREFIX):]
            if name in cls.model_fields:
                raw[name] = value if cls.model_fields[name].annotation is str else _json(
                    key, value, source)
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ModelContractError(f"{source}: invalid metadata: {exc}") from exc


def _json(key: str, value: str, source: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ModelContractError(f"{source}: metadata {key} is not JSON: {value[:80]!r}") from exc


def read_spec(path: Path) -> ModelSpec:
    """Read and validate the contract of an ONNX file (graph I/O and metadata)."""
    import onnx

    if not path.is_file():
        raise ModelContractError(f"model file not found: {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others; any of them means unusable
        raise ModelContractError(f"{path}: not a readable ONNX file: {exc}") from exc
    check_io(
        {i.name for i in model.graph.input}, {o.name for o in model.graph.output}, str(path)
    )
    return ModelSpec.from_props({p.key: p.value for p in model.metadata_props}, str(path))


MODEL_ID_CHARS = 16


def model_id(path: Path) -> str:
    """The model's identity: a content hash of its graph — nodes and weights (initializers,
    external data included) — never of its metadata, so a metadata-only rewrite
    (``fit-temperature``, a new version string) keeps the id and any weight change makes a new
    one. SHA-256 of the serialised graph, the first 16 hex characters."""
    import onnx

    if not path.is_file():
        raise ModelContractError(f"model file not found: {path}")
    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:  # onnx raises DecodeError and others; any of them means unusable
        raise ModelContractError(f"{path}: not a readable ONNX file: {exc}") from exc
    return hashlib.sha256(graph.SerializeToString()).hexdigest()[:MODEL_ID_CHARS]


def check_io(inputs: set[str], outputs: set[str], source: str) -> None:
    problems = []
    if INPUT_NAME not in inputs:
        problems.append(f"input '{INPUT_NAME}' (has {sorted(inputs)})")
    missing = [o for o in OUTPUT_NAMES if o not in outputs]
    if missing:
        problems.append(f"outputs {missing} (has {sorted(outputs)})")
    if problems:
        raise ModelContractError(f"{source}: the model lacks " + " and ".join(problems))


def softmax_fake(logits: np.ndarray) -> np.ndarray:
    """The counterfeit probability of each row of the model's ``logits`` output ([B, 2])."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e[:, 1] / e.sum(axis=1), dtype=np.float64)
