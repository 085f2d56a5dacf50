"""Import TensorRT lazily — ``tensorrt`` (data-centre GPUs) or ``tensorrt_rtx`` (RTX PCs), same API —
capture its log lines so that a failure can be reported with TensorRT's own words, and map its
data types to numpy's.

TensorRT keeps one logger per process: the first ``Builder``/``Runtime`` fixes it and later ones
with another logger only draw a warning. So there is one :class:`LogCapture` per imported
TensorRT module (:func:`process_logger`); a caller that wants the lines of its own operation takes
a :meth:`LogCapture.mark` before it and reads :meth:`LogCapture.tail` since that mark.
"""

from __future__ import annotations

import importlib
import itertools
import logging
import re
import threading
from collections import deque
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from authentiq.errors import BackendUnavailable

log = logging.getLogger("authentiq.tensorrt")
FLAVOURS = ("tensorrt", "tensorrt_rtx")  # preference order when both import
INSTALL_HINT = ('pip install "authentiq[tensorrt]" (TensorRT, data-centre GPUs) or '
                '"authentiq[tensorrt-rtx]" (TensorRT-RTX, RTX PCs)')
# TensorRT data types numpy can hold. BF16, FP8, FP4, INT4 and E8M0 have no numpy dtype:
# trt.nptype raises for them, and the model contract asks for float I/O anyway.
NUMPY_TYPES = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "UINT8": np.uint8,
               "INT32": np.int32, "INT64": np.int64, "BOOL": np.bool_}


@dataclass(frozen=True)
class TensorRT:
    module: Any  # the imported package; typed Any because its API is generated bindings
    flavour: str  # "tensorrt" | "tensorrt_rtx"
    version: str

    @property
    def rtx(self) -> bool:
        return self.flavour == "tensorrt_rtx"

    @property
    def label(self) -> str:
        return f"{self.flavour} {self.version}"


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


def version_tuple(version: str) -> tuple[int, ...]:
    """'10.8.0.43' → (10, 8, 0, 43); a suffix such as '.post1' is dropped."""
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0].split(".post")[0]))


def numpy_dtype(trt: TensorRT, trt_type: Any, tensor: str) -> np.dtype[Any]:
    """The numpy dtype of a TensorRT tensor type, or BackendUnavailable naming the tensor."""
    name = str(getattr(trt_type, "name", trt_type)).rsplit(".", 1)[-1]
    if name not in NUMPY_TYPES:
        raise BackendUnavailable(f"engine tensor {tensor!r} is {name}, which numpy cannot hold; "
                                 f"the model contract needs float32 (or float16) inputs and outputs")
    return np.dtype(NUMPY_TYPES[name])


class LogCapture:
    """Forwards TensorRT's log to Python logging and keeps the last lines, numbered."""

    def __init__(self, keep: int) -> None:
        self.lines: deque[tuple[int, str]] = deque(maxlen=keep)
        self._numbers = itertools.count()
        self._lock = threading.Lock()

    def record(self, level_name: str, msg: str) -> None:
        with self._lock:
            self.lines.append((next(self._numbers), f"[{level_name}] {msg}"))

    def mark(self) -> int:
        """The number the next line will get: :meth:`tail` from here shows one operation's lines."""
        with self._lock:
            return self.lines[-1][0] + 1 if self.lines else 0

    def tail(self, since: int = 0, n: int = 6) -> str:
        with self._lock:
            lines = [line for number, line in self.lines if number >= since]
        errors = [line for line in lines if line.startswith(("[ERROR]", "[INTERNAL_ERROR]"))]
        return " | ".join((errors or lines)[-n:]) or "(TensorRT logged nothing)"


_loggers: dict[int, Any] = {}
_loggers_lock = threading.Lock()


def process_logger(module: Any) -> Any:
    """The one ``ILogger`` this process gives ``module`` (a TensorRT flavour): a :class:`LogCapture`."""
    with _loggers_lock:
        if id(module) not in _loggers:
            _loggers[id(module)] = (module, _capture(module, keep=400))
        return _loggers[id(module)][1]


def _capture(module: Any, keep: int) -> Any:
    base = module.ILogger
    severity = base.Severity

    class Capture(base, LogCapture):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)
            LogCapture.__init__(self, keep)

        def log(self, level: Any, msg: str) -> None:
            if level == severity.VERBOSE:
                return
            self.record(level.name, msg)
            py_level = logging.ERROR if level in (severity.ERROR, severity.INTERNAL_ERROR) else \
                logging.WARNING if level == severity.WARNING else logging.DEBUG
            log.log(py_level, "%s", msg)

    return Capture()
