"""Calibration for real (ONNX Runtime quantisation) on the shipped FP32 model and a few items."""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx
import pytest

from authentiq.contract.model_spec import read_spec
from authentiq.errors import CalibrationError, ModelContractError
from authentiq.modelling.calibrate import calibrate
from tests.conftest import FP32_MODEL, REPO, build_tiny_model

pytestmark = pytest.mark.db_independent  # the PostgreSQL pass leaves it out

CALIB = REPO / "calibration_data" / "items"


def test_shipped_calibration_set() -> None:
    items = [p for p in CALIB.iterdir() if p.is_dir()]
    assert len(items) * 6 >= 256 and all(len(list(p.glob("*.jpg"))) == 6 for p in items)


@pytest.mark.slow
def test_one_pass_two_flavours(tmp_path: Path) -> None:
    data = tmp_path / "calib"
    for item in sorted(CALIB.iterdir())[:8]:
        if item.is_dir():
            shutil.copytree(item, data / item.name)
    out = calibrate(FP32_MODEL, data, tmp_path / "out")
    assert set(out) == {"int8-trt", "int8-cpu"}
    for flavour, path in out.items():
        spec = read_spec(path)
        assert spec.precision == flavour
        assert path.stat().st_size < FP32_MODEL.stat().st_size / 2
    trt = onnx.load(str(out["int8-trt"]))
    inits = {i.name: i for i in trt.graph.initializer}
    dq_types = set()
    for node in trt.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in inits:
            dq_types.add(inits[node.input[0]].data_type)
    assert dq_types == {onnx.TensorProto.INT8}, "TensorRT flavour must have int8 weights and no int32 bias"
    zero_points = [inits[n.input[2]] for n in trt.graph.node
                   if n.op_type == "QuantizeLinear" and len(n.input) > 2 and n.input[2] in inits]
    assert zero_points and all(not onnx.numpy_helper.to_array(z).any() for z in zero_points)
    cpu = onnx.load(str(out["int8-cpu"]))
    cpu_inits = {i.name: i for i in cpu.graph.initializer}
    act_types = {cpu_inits[n.input[2]].data_type for n in cpu.graph.node
                 if n.op_type == "QuantizeLinear" and n.input[2] in cpu_inits}
    assert act_types == {onnx.TensorProto.UINT8}
    stem = next(n for n in trt.graph.node if n.op_type == "Conv")
    assert "views" in stem.input, "the stem convolution stays float"


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="no calibration items"):
        calibrate(FP32_MODEL, tmp_path, tmp_path / "out")
    with pytest.raises(CalibrationError, match="not found"):
        calibrate(FP32_MODEL, tmp_path / "absent", tmp_path / "out")


def test_corrupt_image_is_named(tmp_path: Path) -> None:
    item = tmp_path / "calib" / "item-1"
    item.mkdir(parents=True)
    (item / "logo.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(CalibrationError, match=r"logo\.jpg"):
        calibrate(FP32_MODEL, tmp_path / "calib", tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.onnx"))


def test_model_breaking_the_contract(tmp_path: Path) -> None:
    broken = build_tiny_model(tmp_path / "b.onnx", drop_output="cam")
    with pytest.raises(ModelContractError, match="cam"):
        calibrate(broken, CALIB, tmp_path / "out")
