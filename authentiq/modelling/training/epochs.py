"""Epoch checkpoints: training resumes from the last finished epoch of an interrupted run.

After every epoch the model, optimiser, learning-rate schedule and random states go to one file
(replaced atomically) with a fingerprint of what was trained on; a run with the same
configuration and items resumes after that epoch, any other starts afresh (and says why).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from authentiq.modelling import datasets
from authentiq.modelling.progress import Progress
from authentiq.modelling.training import require_torch

EPOCH_CHECKPOINT = "last_epoch.pt"


def fingerprint(config: dict[str, Any], train_set: datasets.TileSet, val_set: datasets.TileSet) -> str:
    """What an epoch checkpoint must match to be resumed: the configuration (not where the
    output goes, nor the version name) and the items, in order."""
    kept = {k: v for k, v in config.items()
            if k not in ("model_version", "model_name", "data_card", "workers", "cache", "device")}
    h = hashlib.sha256(json.dumps(kept, sort_keys=True).encode())
    for ts in (train_set, val_set):
        h.update("\n".join(ts.items).encode())
        h.update(ts.labels.tobytes())
    return h.hexdigest()[:16]


def save(path: Path, fingerprint: str, epoch: int, model: Any, opt: Any, sched: Any,
         rng: np.random.Generator, history: list[dict[str, float]]) -> None:
    torch = require_torch()
    tmp = path.with_suffix(".tmp")
    torch.save({"fingerprint": fingerprint, "epoch": epoch, "model": model.state_dict(),
                "optimiser": opt.state_dict(), "schedule": sched.state_dict(),
                "numpy_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                "history": history}, tmp)
    tmp.replace(path)  # an interrupted save leaves the previous epoch's file whole


def resume(path: Path, fingerprint: str, model: Any, opt: Any, sched: Any,
           rng: np.random.Generator, history: list[dict[str, float]], progress: Progress,
           epochs: int) -> int:
    """The epoch to start from: after the last saved one when ``path`` matches, else 0."""
    if not path.is_file():
        return 0
    torch = require_torch()
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as exc:
        progress.note(f"  {path.name} unreadable ({exc}): training from the start")
        return 0
    if state.get("fingerprint") != fingerprint or not 0 < state.get("epoch", 0) <= epochs:
        progress.note(f"  {path.name} was made with other settings or items: training from the start")
        return 0
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimiser"])
    sched.load_state_dict(state["schedule"])
    rng.bit_generator.state = state["numpy_rng"]
    torch.set_rng_state(state["torch_rng"])
    history.extend(state["history"])
    epoch = int(state["epoch"])
    progress.note(f"  resuming from epoch {epoch} of {epochs} ({path.name})")
    return epoch
