"""Where photos and heatmaps live: a local folder (the default) or an S3-compatible bucket.

Both stores keep one folder (key prefix) per item — report, reference or job, named by its
32-hex id — and write an item's files all or nothing: the database row is written after the
files, and removed files follow a failed row (``ReportStore.save``). Several hosts share an S3
bucket (``AUTHENTIQ_BLOB_URL=s3://bucket/prefix``); several workers of one host may share the
folder. ``child`` gives the store of a kind of item below another's root (``references``,
``jobs``); ``folders`` lists only items, never children.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from authentiq.errors import ReportNotFound
from authentiq.settings import StorageSettings

HEX = frozenset("0123456789abcdef")


class Blobs(Protocol):
    def put_many(self, item_id: str, blobs: dict[str, bytes]) -> list[str]:
        """Write all files of one new item; on any failure none of them is left behind."""
        ...

    def get(self, item_id: str, name: str) -> bytes: ...

    def folders(self) -> list[tuple[str, float]]:
        """(id, last modification as a Unix time) of every item."""
        ...

    def delete(self, item_id: str) -> None: ...

    def child(self, name: str) -> Blobs: ...


def open_blobs(storage: StorageSettings) -> Blobs:
    if storage.blob_url:
        return S3Blobs.from_url(storage.blob_url)
    return BlobStore(storage.blob_dir)


def is_item(name: str) -> bool:
    return len(name) == 32 and all(c in HEX for c in name)


def check_key(item_id: str, name: str) -> None:
    if not item_id.isalnum() or not name or "/" in name or name.startswith("."):
        raise ValueError(f"invalid blob key {item_id}/{name}")


class BlobStore:
    """A local folder; files written atomically (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, item_id: str, name: str) -> Path:
        check_key(item_id, name)
        return self.root / item_id / name

    def put_many(self, item_id: str, blobs: dict[str, bytes]) -> list[str]:
        folder = self.root / item_id
        folder.mkdir(parents=True, exist_ok=False)
        try:
            for name, data in blobs.items():
                target = self._path(item_id, name)
                fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, target)
        except BaseException:
            self.delete(item_id)
            raise
        return sorted(blobs)

    def get(self, item_id: str, name: str) -> bytes:
        path = self._path(item_id, name)
        if not path.is_file():
            raise ReportNotFound(f"no stored file {name!r} for item {item_id}")
        return path.read_bytes()

    def folders(self) -> list[tuple[str, float]]:
        out = []
        for p in self.root.iterdir():
            try:
                if p.is_dir() and is_item(p.name):
                    out.append((p.name, p.stat().st_mtime))
            except FileNotFoundError:  # removed meanwhile (another worker's start-up sweep)
                continue
        return out

    def delete(self, item_id: str) -> None:
        shutil.rmtree(self.root / item_id, ignore_errors=True)

    def child(self, name: str) -> BlobStore:
        return BlobStore(self.root / name)


class S3Blobs:
    """An S3-compatible bucket (AWS S3, MinIO, Ceph, R2, ...) through boto3 ([s3] extra).

    Credentials, region and endpoint come from boto3's own chain: ``AWS_ACCESS_KEY_ID`` /
    ``AWS_SECRET_ACCESS_KEY`` (or a profile, or an instance role), ``AWS_DEFAULT_REGION``, and
    ``AWS_ENDPOINT_URL_S3`` for a store that is not AWS. Keys: ``<prefix>/<item id>/<file>``.
    """

    def __init__(self, bucket: str, prefix: str = "", client: Any = None) -> None:
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.client = client if client is not None else _client()

    @classmethod
    def from_url(cls, url: str) -> S3Blobs:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"AUTHENTIQ_BLOB_URL must look like s3://bucket/prefix, not {url!r}")
        return cls(parts.netloc, parts.path)

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def _objects(self, prefix: str) -> list[dict[str, Any]]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                      Prefix=prefix)
        return [obj for page in pages for obj in page.get("Contents", [])]

    def put_many(self, item_id: str, blobs: dict[str, bytes]) -> list[str]:
        for name in blobs:
            check_key(item_id, name)
        folder = self._key(item_id) + "/"
        if self.client.list_objects_v2(Bucket=self.bucket, Prefix=folder, MaxKeys=1).get("KeyCount"):
            raise FileExistsError(f"s3://{self.bucket}/{folder} already holds files")
        try:
            for name, data in blobs.items():
                self.client.put_object(Bucket=self.bucket, Key=self._key(item_id, name), Body=data)
        except BaseException:
            self.delete(item_id)
            raise
        return sorted(blobs)

    def get(self, item_id: str, name: str) -> bytes:
        check_key(item_id, name)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(item_id, name))
        except self.client.exceptions.NoSuchKey:
            raise ReportNotFound(f"no stored file {name!r} for item {item_id}") from None
        return bytes(response["Body"].read())

    def folders(self) -> list[tuple[str, float]]:
        """Walks every key below the prefix (children's too): meant for the start-up sweep."""
        root = self._key() + "/" if self.prefix else ""
        newest: dict[str, datetime] = {}
        for obj in self._objects(root):
            item, _, rest = obj["Key"][len(root):].partition("/")
            if rest and is_item(item):
                newest[item] = max(newest.get(item, obj["LastModified"]), obj["LastModified"])
        return [(item, when.timestamp()) for item, when in newest.items()]

    def delete(self, item_id: str) -> None:
        if not item_id.isalnum():
            raise ValueError(f"invalid blob item {item_id!r}")
        keys = [{"Key": obj["Key"]} for obj in self._objects(self._key(item_id) + "/")]
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
            self.client.delete_objects(Bucket=self.bucket,
                                       Delete={"Objects": keys[start:start + 1000], "Quiet": True})

    def child(self, name: str) -> S3Blobs:
        return S3Blobs(self.bucket, self._key(name), self.client)


def _client() -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:
        raise ImportError("AUTHENTIQ_BLOB_URL=s3://... needs boto3: pip install 'authentiq[s3]'"
                          ) from exc
    # Clients are thread-safe; the pool matches the threads that read and write at once.
    return boto3.client("s3", config=Config(max_pool_connections=32,
                                            retries={"max_attempts": 5, "mode": "standard"}))
