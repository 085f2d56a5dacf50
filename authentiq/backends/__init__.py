"""Inference backends behind one small interface (:class:`authentiq.backends.base.Backend`)."""

from __future__ import annotations

from authentiq.backends.base import Backend, BackendInfo, Outputs

__all__ = ["Backend", "BackendInfo", "Outputs"]
