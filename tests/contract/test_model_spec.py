from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from authentiq.contract.model_spec import ModelSpec, check_io, model_id, read_spec
from authentiq.errors import ModelContractError
from tests.conftest import FP32_MODEL, build_tiny_model, retrained, set_props, tiny_spec

pytestmark = pytest.mark.db_independent  # the PostgreSQL pass leaves it out


def test_props_round_trip() -> None:
    spec = tiny_spec()
    assert ModelSpec.from_props(spec.to_props()) == spec


def test_shipped_model_declares_the_contract() -> None:
    spec = read_spec(FP32_MODEL)
    assert spec.view_names == ("overall", "logo", "stitching", "hardware", "label", "interior")
    assert spec.required_views == spec.view_names[:5]
    assert spec.input_hw == (256, 384)
    assert spec.thresholds.authentic_below <= 0.5 <= spec.thresholds.counterfeit_above
    assert "synthetic" in spec.data_card.lower()
    assert len(spec.products) == 6


def test_missing_metadata_is_named(tmp_path: Path) -> None:
    props = tiny_spec().to_props()
    del props["authentiq.tile_size"], props["authentiq.views"]
    path = build_tiny_model(tmp_path / "m.onnx", props=props)
    with pytest.raises(ModelContractError, match=r"authentiq\.views, authentiq\.tile_size"):
        read_spec(path)


def test_missing_output_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelContractError, match="embedding"):
        read_spec(build_tiny_model(tmp_path / "m.onnx", drop_output="embedding"))


def test_inconsistent_metadata() -> None:
    props = tiny_spec().to_props()
    props["authentiq.grid"] = "[1, 1]"
    with pytest.raises(ModelContractError, match="fewer cells"):
        ModelSpec.from_props(props)
    props["authentiq.grid"] = "not json"
    with pytest.raises(ModelContractError, match="not JSON"):
        ModelSpec.from_props(props)


def test_not_onnx(tmp_path: Path) -> None:
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"nope")
    with pytest.raises(ModelContractError, match="not a readable ONNX"):
        read_spec(bad)
    with pytest.raises(ModelContractError, match="not found"):
        read_spec(tmp_path / "missing.onnx")


def test_check_io() -> None:
    with pytest.raises(ModelContractError, match="input 'views'"):
        check_io({"x"}, {"logits", "embedding", "cam"}, "m")


def test_model_id_is_the_graph_and_weights_not_the_metadata(tmp_path: Path) -> None:
    """Issue 18: a retrained model keeping its version got the old model's embeddings. The id
    is a hash of the graph: metadata rewrites (fit-temperature, a version) keep it, any weight
    change makes a new one."""
    base = build_tiny_model(tmp_path / "base.onnx")
    identity = model_id(base)
    assert len(identity) == 16 and int(identity, 16) >= 0
    assert model_id(build_tiny_model(tmp_path / "again.onnx")) == identity  # same graph, same id
    proto = onnx.load(str(base))
    set_props(proto, {"authentiq.model_version": "9.9.9",
                      "authentiq.calibration": '{"temperature": 1.7}'})
    onnx.save(proto, str(tmp_path / "meta.onnx"))
    assert read_spec(tmp_path / "meta.onnx").model_version == "9.9.9"
    assert model_id(tmp_path / "meta.onnx") == identity
    nudged = retrained(base, tmp_path / "nudged.onnx", nudge=1e-6)  # one tensor, a hair apart
    assert model_id(nudged) != identity
    with pytest.raises(ModelContractError, match="not found"):
        model_id(tmp_path / "absent.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(ModelContractError, match="not a readable ONNX file"):
        model_id(tmp_path / "junk.onnx")
