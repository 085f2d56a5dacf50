"""ONNX graph surgery shared by the view gate and the alteration head: both live under one
name prefix, so a refit removes the previous gate whole before adding the new one. The per-view
reference check's descriptors (``authentiq fit-view-check``) are computed from the gate's
features, under their own prefix: refitting the gate removes them too (and their metadata), so
the check must be fitted again after the gate."""

from __future__ import annotations

from typing import Any

from authentiq.contract.model_spec import PREFIX as METADATA_PREFIX
from authentiq.contract.model_spec import VIEW_DESCRIPTORS, VIEW_FEATURES, VIEW_SCORES

PREFIX = "view_gate/"
CHECK_PREFIX = "view_check/"


def strip_gate(graph: Any) -> None:
    """Remove a previous gate (nodes, initialisers, outputs) so that a refit replaces it, and the
    view check's descriptors built on its features."""
    _strip(graph, PREFIX, (VIEW_FEATURES, VIEW_SCORES))
    strip_view_check(graph)


def strip_view_check(graph: Any, proto: Any = None) -> None:
    """Remove the view check's descriptors (and, given the model ``proto``, its metadata)."""
    _strip(graph, CHECK_PREFIX, (VIEW_DESCRIPTORS,))
    if proto is not None:
        keep = [p for p in proto.metadata_props if p.key != METADATA_PREFIX + "view_check"]
        del proto.metadata_props[:]
        proto.metadata_props.extend(keep)


def _strip(graph: Any, prefix: str, outputs: tuple[str, ...]) -> None:
    keep = [n for n in graph.node if not n.name.startswith(prefix)]
    del graph.node[:]
    graph.node.extend(keep)
    inits = [i for i in graph.initializer if not i.name.startswith(prefix)]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    outs = [o for o in graph.output if o.name not in outputs]
    del graph.output[:]
    graph.output.extend(outs)
