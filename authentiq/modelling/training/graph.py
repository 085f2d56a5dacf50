"""ONNX graph surgery shared by the view gate and the alteration head: both live under one
name prefix, so a refit removes the previous gate whole before adding the new one."""

from __future__ import annotations

from typing import Any

from authentiq.contract.model_spec import VIEW_FEATURES, VIEW_SCORES

PREFIX = "view_gate/"


def strip_gate(graph: Any) -> None:
    """Remove a previous gate (nodes, initialisers, outputs) so that a refit replaces it."""
    keep = [n for n in graph.node if not n.name.startswith(PREFIX)]
    del graph.node[:]
    graph.node.extend(keep)
    inits = [i for i in graph.initializer if not i.name.startswith(PREFIX)]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    outs = [o for o in graph.output if o.name not in (VIEW_FEATURES, VIEW_SCORES)]
    del graph.output[:]
    graph.output.extend(outs)
