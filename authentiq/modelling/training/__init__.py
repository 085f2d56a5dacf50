"""Training tools (``authentiq train``); PyTorch comes from the ``[train]`` extra."""

from __future__ import annotations

from types import ModuleType


def require_torch() -> ModuleType:
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            "PyTorch is not installed; training needs it: pip install \"authentiq[train]\""
        ) from exc
    return torch
