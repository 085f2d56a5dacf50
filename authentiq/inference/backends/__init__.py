"""Inference backends behind one small interface (:class:`authentiq.inference.backends.base.Backend`)."""

from __future__ import annotations

from authentiq.inference.backends.base import Backend, BackendInfo, Outputs

__all__ = ["Backend", "BackendInfo", "Outputs"]
