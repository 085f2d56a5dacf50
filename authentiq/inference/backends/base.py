"""What every inference backend offers the batcher and the API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from authentiq.contract.model_spec import ModelSpec


@dataclass(frozen=True)
class Outputs:
    """One batch of model outputs, float32, batch-first."""

    logits: np.ndarray  # [B, 2]
    embedding: np.ndarray  # [B, D]
    cam: np.ndarray  # [B, 2, h, w]
    view_scores: np.ndarray | None = None  # [B, cells, views]; None: the model has no view gate

    def __len__(self) -> int:
        return int(self.logits.shape[0])

    def row(self, i: int) -> Outputs:
        scores = None if self.view_scores is None else self.view_scores[i:i + 1]
        return Outputs(self.logits[i:i + 1], self.embedding[i:i + 1], self.cam[i:i + 1], scores)

    @staticmethod
    def concat(parts: list[Outputs]) -> Outputs:
        """Batches run one after another → one batch."""
        scores = [p.view_scores for p in parts if p.view_scores is not None]
        return Outputs(np.concatenate([p.logits for p in parts]),
                       np.concatenate([p.embedding for p in parts]),
                       np.concatenate([p.cam for p in parts]),
                       np.concatenate(scores) if len(scores) == len(parts) else None)


@dataclass(frozen=True)
class BackendInfo:
    name: str  # "onnxruntime" | "tensorrt" | "tensorrt_rtx" | "triton"
    device: str  # e.g. "cpu", "cuda:0"
    precision: str  # the model's flavour: fp32 | int8-cpu | int8-trt
    engine_id: str  # what exactly runs: model file + its sha256 prefix
    max_batch_size: int


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
