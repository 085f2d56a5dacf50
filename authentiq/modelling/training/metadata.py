"""Write one ``authentiq.<name>`` entry of a model's metadata (fitted parameters), in place."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from authentiq.contract.model_spec import PREFIX


def set_prop(proto: Any, name: str, params: BaseModel) -> None:
    """Set ``authentiq.<name>`` on an ONNX ModelProto to ``params`` as JSON."""
    key, value = PREFIX + name, json.dumps(params.model_dump(mode="json"))
    for prop in proto.metadata_props:
        if prop.key == key:
            prop.value = value
            return
    proto.metadata_props.add(key=key, value=value)


def save_atomic(proto: Any, path: Path) -> None:
    """Replace ``path`` with ``proto`` in one rename (a reader never sees half a model)."""
    import onnx

    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".onnx", delete=False) as tmp:
        onnx.save(proto, tmp.name)
    os.chmod(tmp.name, mode)  # the temporary file's 0600 would hide the model from other users
    Path(tmp.name).replace(path)


def write_prop(path: Path, name: str, params: BaseModel) -> None:
    import onnx

    proto = onnx.load(str(path))
    set_prop(proto, name, params)
    save_atomic(proto, path)
