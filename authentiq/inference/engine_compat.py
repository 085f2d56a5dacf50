"""Where a TensorRT plan may run: which GPUs, and which TensorRT version may load it.

A plan records where it runs (``runs_on``) when it is built; a host checks that record against
its own GPU and TensorRT instead of asking for a plan built on its exact system, so portable plans
are found where they are valid:

- TensorRT, hardware compatibility ``none``: the GPU model it was built on (name + compute
  capability) — TensorRT tunes kernels for that device;
- TensorRT, ``same_compute_capability`` (TensorRT ≥ 10.9): every GPU of that compute capability;
- TensorRT, ``ampere_plus``: every GPU of compute capability 8.0 or later;
- TensorRT-RTX: the compute capabilities its ahead-of-time build targets by default — 8.0, 8.6,
  8.9 and 12.x — with or without a GPU on the building machine (it has no other modes).

Versions: a plan loads in the TensorRT that built it (all four version parts, as TensorRT's
"expecting library version X got Y" says), or — built ``version_compatible`` — in that version or a
later one, whose runtime must then allow the plan's embedded host code (``engine_host_code_allowed``;
Triton: ``--backend-config=tensorrt,version-compatible=true``).
"""

from __future__ import annotations

import re
from typing import Any

from authentiq.inference.backends.cuda import Gpu
from authentiq.inference.backends.tensorrt_lib import TensorRT, version_tuple

RTX_COMPUTE_CAPABILITIES = ("8.0", "8.6", "8.9", "12.x")  # TensorRT-RTX's default AOT targets
SAME_CC_SINCE = (10, 9)  # HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY first appears there


def cc_text(gpu: Gpu) -> str:
    return "{}.{}".format(*gpu.compute_capability)


def runs_on(trt: TensorRT, gpu: Gpu | None, hardware_compatibility: str) -> dict[str, Any]:
    """Where a plan built now, here, with this option runs (recorded in its sidecar)."""
    if trt.rtx:
        return {"kind": "compute_capabilities", "compute_capabilities": list(RTX_COMPUTE_CAPABILITIES)}
    if hardware_compatibility == "ampere_plus":
        return {"kind": "ampere_plus", "min_compute_capability": "8.0"}
    if gpu is None:
        raise ValueError("TensorRT builds for the GPU it runs on; there is none")
    if hardware_compatibility == "same_compute_capability":
        return {"kind": "compute_capability", "compute_capability": cc_text(gpu)}
    return {"kind": "device", "gpu": gpu.name, "compute_capability": cc_text(gpu)}


def target_tag(trt: TensorRT, gpu: Gpu | None, hardware_compatibility: str) -> str:
    """The part of a plan's file name that says where it runs: one plan per target in a folder."""
    target = runs_on(trt, gpu, hardware_compatibility)
    kind = target["kind"]
    if kind == "compute_capabilities":
        return "portable"
    if kind == "ampere_plus":
        return "ampere-plus"
    sm = "sm" + _sm(target["compute_capability"])
    if kind == "compute_capability":
        return sm
    return f"{slug(target['gpu'])}-{sm}"


def admits(target: dict[str, Any], gpu: Gpu) -> str | None:
    """None when a plan recorded as running on ``target`` runs on ``gpu``, else why not."""
    cc = cc_text(gpu)
    kind = target.get("kind")
    if kind == "device":
        if target.get("gpu") == gpu.name and target.get("compute_capability") == cc:
            return None
        return (f"the plan is for {target.get('gpu')} (sm_{_sm(target.get('compute_capability'))}) "
                f"only; this is {gpu.label}")
    if kind == "compute_capability":
        return None if target.get("compute_capability") == cc else \
            f"the plan is for compute capability {target.get('compute_capability')}; {gpu.label} is {cc}"
    if kind == "ampere_plus":
        return None if gpu.compute_capability >= (8, 0) else \
            f"the plan is for Ampere or later (8.0+); {gpu.label} is {cc}"
    if kind == "compute_capabilities":
        listed = target.get("compute_capabilities", [])
        if cc in listed or f"{gpu.compute_capability[0]}.x" in listed:
            return None
        return f"the plan runs on compute capabilities {', '.join(listed)}; {gpu.label} is {cc}"
    return f"the plan's sidecar names no known target ({target!r})"


def version_admits(plan_tensorrt: str, runtime_tensorrt: str, version_compatible: bool) -> str | None:
    """None when a plan built by ``plan_tensorrt`` ("flavour version") loads in
    ``runtime_tensorrt``, else why not."""
    plan_flavour, _, plan_version = plan_tensorrt.partition(" ")
    flavour, _, version = runtime_tensorrt.partition(" ")
    if plan_flavour != flavour:
        return f"the plan was built by {plan_tensorrt}; this is {runtime_tensorrt}"
    built, here = version_tuple(plan_version), version_tuple(version)
    if built == here:
        return None
    if version_compatible and built >= (8, 6) and here > built:
        return None
    rule = "the same or a later version (version-compatible plan)" if version_compatible else \
        "exactly that version (build with --version-compat to load in later versions)"
    return f"the plan was built by {plan_tensorrt} and loads in {rule}; this is {runtime_tensorrt}"


def describe(target: dict[str, Any]) -> str:
    kind = target.get("kind")
    if kind == "device":
        return f"{target.get('gpu')} (sm_{_sm(target.get('compute_capability'))}) only"
    if kind == "compute_capability":
        return f"compute capability {target.get('compute_capability')}"
    if kind == "ampere_plus":
        return "compute capability 8.0 and later (Ampere+)"
    return "compute capabilities " + ", ".join(target.get("compute_capabilities", []))


def _sm(cc: object) -> str:
    return str(cc).replace(".", "")


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "gpu"
