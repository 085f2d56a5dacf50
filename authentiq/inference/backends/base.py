"""What every inference backend offers the batcher and the API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from authentiq.contract.model_spec import OPTIONAL_OUTPUTS, OUTPUT_NAMES, ModelSpec


@dataclass(frozen=True)
class Outputs:
    """One batch of model outputs, float32, batch-first."""

    logits: np.ndarray  # [B, 2]
    embedding: np.ndarray  # [B, D]
    cam: np.ndarray  # [B, 2, h, w]
    view_scores: np.ndarray | None = None  # [B, cells, views]; None: the model has no view gate
    view_features: np.ndarray | None = None  # [B, cells, D]: the gate's per-cell features
    # [B, cells, D]: per-cell descriptors the per-view reference check compares; None: no check
    view_descriptors: np.ndarray | None = None

    @classmethod
    def named(cls, outputs: Mapping[str, np.ndarray]) -> Outputs:
        """From a backend's outputs by name (the optional ones may be absent)."""
        return cls(*(np.asarray(outputs[name], np.float32) for name in OUTPUT_NAMES),
                   *(None if outputs.get(name) is None else np.asarray(outputs[name], np.float32)
                     for name in OPTIONAL_OUTPUTS))

    def __len__(self) -> int:
        return int(self.logits.shape[0])

    def _optional(self) -> list[np.ndarray | None]:
        return [getattr(self, name) for name in OPTIONAL_OUTPUTS]

    def row(self, i: int) -> Outputs:
        return Outputs(self.logits[i:i + 1], self.embedding[i:i + 1], self.cam[i:i + 1],
                       *(None if a is None else a[i:i + 1] for a in self._optional()))

    @staticmethod
    def concat(parts: list[Outputs]) -> Outputs:
        """Batches run one after another → one batch (an optional output only if every part
        has it)."""
        def joined(arrays: list[np.ndarray | None]) -> np.ndarray | None:
            present = [a for a in arrays if a is not None]
            return np.concatenate(present) if present and len(present) == len(arrays) else None
        optional = [p._optional() for p in parts]
        return Outputs(np.concatenate([p.logits for p in parts]),
                       np.concatenate([p.embedding for p in parts]),
                       np.concatenate([p.cam for p in parts]),
                       *(joined([o[k] for o in optional]) for k in range(len(OPTIONAL_OUTPUTS))))


@dataclass(frozen=True)
class BackendInfo:
    name: str  # "onnxruntime" | "tensorrt" | "tensorrt_rtx" | "triton"
    device: str  # e.g. "cpu", "cuda:0"
    precision: str  # the model's flavour: fp32 | int8-cpu | int8-trt
    engine_id: str  # what exactly runs: model file + its sha256 prefix
    max_batch_size: int
    # the model's identity (contract.model_spec.model_id: a hash of its graph and weights);
    # reference embeddings, the registry and reports are keyed by it
    model_id: str = ""


class Backend(Protocol):
    spec: ModelSpec
    info: BackendInfo

    def run(self, views: np.ndarray, *, deadline: float | None = None) -> Outputs:
        """Run one batch ``[B, 3, H, W]`` float32; thread-safe. ``deadline`` (``time.monotonic()``)
        is when the batch's last caller gives up; a remote backend sends the time left."""
        ...

    def failure(self) -> str | None:
        """Why this backend can serve nothing more in this process, or None while it can."""
        ...

    def close(self) -> None: ...
