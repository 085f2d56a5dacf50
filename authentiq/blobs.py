"""Image blobs on the local file system, written atomically (temp file + rename)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from authentiq.errors import ReportNotFound

HEX = frozenset("0123456789abcdef")


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, report_id: str, name: str) -> Path:
        if not report_id.isalnum() or "/" in name or name.startswith("."):
            raise ValueError(f"invalid blob key {report_id}/{name}")
        return self.root / report_id / name

    def put_many(self, report_id: str, blobs: dict[str, bytes]) -> list[str]:
        """Write all blobs of one report; on any failure none of them is left behind."""
        folder = self.root / report_id
        folder.mkdir(parents=True, exist_ok=False)
        try:
            for name, data in blobs.items():
                target = self._path(report_id, name)
                fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, target)
        except BaseException:
            self.delete(report_id)
            raise
        return sorted(blobs)

    def get(self, report_id: str, name: str) -> bytes:
        path = self._path(report_id, name)
        if not path.is_file():
            raise ReportNotFound(f"no stored file {name!r} for report {report_id}")
        return path.read_bytes()

    def folders(self) -> list[tuple[str, float]]:
        """(id, modification time) of every item folder (ids are 32 hex digits; other folders,
        such as the reference store's root inside the report store's, are not items)."""
        return [(p.name, p.stat().st_mtime) for p in self.root.iterdir()
                if p.is_dir() and len(p.name) == 32 and all(c in HEX for c in p.name)]

    def delete(self, report_id: str) -> None:
        shutil.rmtree(self.root / report_id, ignore_errors=True)
