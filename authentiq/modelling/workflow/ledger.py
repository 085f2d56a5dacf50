"""``OUT/stages.json``: which stages of ``authentiq train`` finished, on what inputs.

Each stage's fingerprint hashes the fingerprint of the stage before it with the stage's own
settings, so a change anywhere (the photos, the split, an option) redoes that stage and every
later one, and nothing before it. A stage is recorded only once it has finished; its record
keeps what it found (figures, fitted-on notes) for the stages and the card after it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

LEDGER_FILE = "stages.json"
FORMAT = "authentiq-stages/1"


def digest(*parts: object) -> str:
    """A short stable hash of JSON-able parts."""
    text = json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Ledger:
    """The stages recorded in one output folder."""

    def __init__(self, out: Path) -> None:
        self.path = out / LEDGER_FILE
        self.data: dict[str, Any] = {"format": FORMAT, "stages": {}}
        if self.path.is_file():
            try:
                loaded = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                loaded = None  # unreadable: every stage runs again, and the file is rewritten
            if isinstance(loaded, dict) and loaded.get("format") == FORMAT:
                self.data = loaded

    @property
    def stages(self) -> dict[str, Any]:
        stages: dict[str, Any] = self.data["stages"]
        return stages

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def put(self, key: str, value: Any) -> None:
        """Keep ``key``; written with the next :meth:`save` or stage recorded."""
        self.data[key] = value

    def save(self) -> None:
        self._write()

    def done(self, stage: str, fingerprint: str) -> dict[str, Any] | None:
        """The stage's record if it finished with this fingerprint, else None."""
        record = self.stages.get(stage)
        if isinstance(record, dict) and record.get("fingerprint") == fingerprint:
            return record
        return None

    def finish(self, stage: str, fingerprint: str, seconds: float, **found: Any) -> dict[str, Any]:
        record = {"fingerprint": fingerprint, "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                       time.gmtime()),
                  "seconds": round(seconds, 1), **found}
        self.stages[stage] = record
        self._write()
        return record

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=self.path.parent, suffix=".json", delete=False,
                                         encoding="utf-8") as tmp:
            json.dump(self.data, tmp, indent=1, ensure_ascii=False)
            tmp.write("\n")
        os.chmod(tmp.name, 0o644)
        Path(tmp.name).replace(self.path)


def folder_fingerprint(root: Path, names: list[str], folders: list[Path]) -> str:
    """The dataset as training reads it: labels.csv and splits.json bytes, and every file of the
    items (name, size, modification time), in item order."""
    h = hashlib.sha256()
    for extra in ("labels.csv", "splits.json"):
        path = root / extra
        if path.is_file():
            h.update(extra.encode() + path.read_bytes())
    for name, folder in zip(names, folders, strict=True):
        h.update(name.encode())
        for path in sorted(folder.iterdir()):
            if path.is_file():
                st = path.stat()
                h.update(f"{path.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]
