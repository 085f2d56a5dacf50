"""What the shipped default model keys on, through the service's own backend and stitching."""

from __future__ import annotations

import numpy as np
import pytest

from authentiq.contract.model_spec import softmax_fake
from authentiq.inference.backends.onnxruntime import OnnxRuntimeBackend
from authentiq.modelling.datasets import HELD_OUT_SEED_BASE
from authentiq.modelling.synthetic import make_item
from authentiq.pipeline.preprocess import decode_view
from authentiq.pipeline.stitch import build_input, cell_of
from tests.conftest import ENGINES

pytestmark = pytest.mark.db_independent  # the PostgreSQL pass leaves it out

SEEDS = [HELD_OUT_SEED_BASE + 5000 + i for i in range(4)]


@pytest.fixture(scope="module")
def backends() -> dict[str, OnnxRuntimeBackend]:
    return {f: OnnxRuntimeBackend(ENGINES / f"authentiq-default.{f}.onnx", intra_op_threads=2)
            for f in ("fp32", "int8-cpu", "int8-trt")}


def mosaic(backend: OnnxRuntimeBackend, views: dict[str, bytes]) -> np.ndarray:
    spec = backend.spec
    return build_input(spec, {v: decode_view(b, tile_size=spec.tile_size).tile for v, b in views.items()})


def view_share(backend: OnnxRuntimeBackend, cam: np.ndarray, view: str) -> float:
    fake = np.maximum(cam[1], 0)
    r, c = cell_of(backend.spec, view)
    h, w = fake.shape[0] // 2, fake.shape[1] // 3
    return float(fake[r * h:(r + 1) * h, c * w:(c + 1) * w].sum() / max(fake.sum(), 1e-9))


@pytest.mark.parametrize("seed", SEEDS)
def test_stitch_pitch_alone_is_caught_and_cam_points_at_stitching(backends, seed: int) -> None:  # type: ignore[no-untyped-def]
    b = backends["int8-cpu"]
    genuine = b.run(mosaic(b, make_item(seed, counterfeit=False).views)[None])
    fake = b.run(mosaic(b, make_item(seed, defects=["stitch_pitch"]).views)[None])
    assert softmax_fake(genuine.logits)[0] < b.spec.thresholds.authentic_below
    assert softmax_fake(fake.logits)[0] >= b.spec.thresholds.counterfeit_above
    shares = {v: view_share(b, fake.cam[0], v) for v in b.spec.view_names}
    assert max(shares, key=lambda v: shares[v]) == "stitching", shares


@pytest.mark.parametrize("defect, view", [("serial_format", "label"), ("hardware_tone", "hardware"),
                                          ("pattern_misaligned", "overall")])
def test_other_defects_point_at_their_view(backends, defect: str, view: str) -> None:  # type: ignore[no-untyped-def]
    b = backends["int8-cpu"]
    out = b.run(mosaic(b, make_item(SEEDS[0], defects=[defect]).views)[None])
    shares = {v: view_share(b, out.cam[0], v) for v in b.spec.view_names}
    assert max(shares, key=lambda v: shares[v]) == view, shares


def test_int8_flavours_agree_with_fp32(backends) -> None:  # type: ignore[no-untyped-def]
    """Tolerance: |Δ p(counterfeit)| ≤ 0.15 per item and the same decision at 0.5 on ≥ 90% of
    items; CAM correlation ≥ 0.9. Measured on 2,000 held-out items: accuracy within 0.1 point."""
    items = [make_item(HELD_OUT_SEED_BASE + 7000 + i) for i in range(12)]
    x = np.stack([mosaic(backends["fp32"], it.views) for it in items])
    ref = backends["fp32"].run(x)
    p_ref = softmax_fake(ref.logits)
    for flavour in ("int8-cpu", "int8-trt"):
        out = backends[flavour].run(x)
        p = softmax_fake(out.logits)
        assert np.abs(p - p_ref).max() <= 0.15, flavour
        assert ((p >= 0.5) == (p_ref >= 0.5)).mean() >= 0.9, flavour
        corr = np.corrcoef(out.cam[:, 1].ravel(), ref.cam[:, 1].ravel())[0, 1]
        assert corr >= 0.9, (flavour, corr)
        norms = np.linalg.norm(out.embedding, axis=1)
        np.testing.assert_allclose(norms, 1.0, atol=1e-3)
