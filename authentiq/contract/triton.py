"""What a Triton model repository carries for AuthentiQ, shared by the export that writes it
(:mod:`authentiq.modelling.triton_export`) and the backend that serves from it
(:mod:`authentiq.inference.backends.triton`): the model contract rides in the config's ``parameters``, one
``authentiq.*`` key per metadata property, as strings."""

from __future__ import annotations

from typing import Any

from authentiq.contract.model_spec import ModelSpec

TRITON_HINT = "pip install 'authentiq[triton]'"


MODEL_ID_KEY = "authentiq.model_id"


def spec_parameters(spec: ModelSpec, model_id: str) -> dict[str, str]:
    """The ``parameters`` a config carries: the model's metadata properties and its id (the
    content hash of the exported ONNX file: the workers have no file to hash)."""
    return {**spec.to_props(), MODEL_ID_KEY: model_id}


def model_id_parameter(parameters: dict[str, Any]) -> str:
    """The exported model's id ("" for an export made before ids existed)."""
    return str(parameters.get(MODEL_ID_KEY, {}).get("string_value", ""))


def spec_from_parameters(parameters: dict[str, Any], source: str) -> ModelSpec:
    """The model contract back from a config's ``parameters`` (JSON form: {key: {string_value}})."""
    props = {k: v.get("string_value", "") for k, v in parameters.items()}
    return ModelSpec.from_props(props, source)
