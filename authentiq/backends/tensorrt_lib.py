"""Import TensorRT lazily — ``tensorrt`` (data-centre GPUs) or ``tensorrt_rtx`` (RTX PCs), same API —
and capture its log lines so that a failure can be reported with TensorRT's own words."""

from __future__ import annotations

import importlib
import logging
from collections import deque
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from authentiq.errors import BackendUnavailable

log = logging.getLogger("authentiq.tensorrt")
FLAVOURS = ("tensorrt", "tensorrt_rtx")  # preference order when both import
INSTALL_HINT = ('pip install "authentiq[tensorrt]" (TensorRT, data-centre GPUs) or '
                '"authentiq[tensorrt-rtx]" (TensorRT-RTX, RTX PCs)')


@dataclass(frozen=True)
class TensorRT:
    module: Any  # the imported package; typed Any because its API is generated bindings
    flavour: str  # "tensorrt" | "tensorrt_rtx"
    version: str


def import_tensorrt(flavour: str | None = None) -> TensorRT:
    """The preferred TensorRT flavour that imports, or BackendUnavailable saying how to install one."""
    if flavour is not None and flavour not in FLAVOURS:
        raise ValueError(f"unknown TensorRT flavour {flavour!r}; one of {', '.join(FLAVOURS)}")
    problems = []
    for name in [flavour] if flavour else FLAVOURS:
        try:
            module: ModuleType = importlib.import_module(name)
        except ImportError as exc:  # includes missing shared libraries
            problems.append(f"{name}: {exc}")
            continue
        return TensorRT(module, name, str(module.__version__))
    raise BackendUnavailable(f"TensorRT is not installed ({'; '.join(problems)}); {INSTALL_HINT}")


def capturing_logger(trt: TensorRT, keep: int = 200) -> Any:
    """A ``trt.ILogger`` that forwards to Python logging and keeps the last lines (``.lines``)."""
    base = trt.module.ILogger
    severity = base.Severity

    class Capture(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)
            self.lines: deque[str] = deque(maxlen=keep)

        def log(self, level: Any, msg: str) -> None:
            if level == severity.VERBOSE:
                return
            self.lines.append(f"[{level.name}] {msg}")
            py_level = logging.ERROR if level in (severity.ERROR, severity.INTERNAL_ERROR) else \
                logging.WARNING if level == severity.WARNING else logging.DEBUG
            log.log(py_level, "%s", msg)

        def tail(self, n: int = 6) -> str:
            errors = [line for line in self.lines if line.startswith(("[ERROR]", "[INTERNAL_ERROR]"))]
            return " | ".join((errors or list(self.lines))[-n:]) or "(TensorRT logged nothing)"

    return Capture()
