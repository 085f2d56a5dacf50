"""Stored files as responses: the media type of each stored photo or image, and the 404 every
file route documents."""

from __future__ import annotations

from typing import Any

from authentiq.api.uploads import PROBLEMS

MEDIA = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "heic": "image/heic"}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: PROBLEMS[422]}


def media_type(name: str) -> str:
    """The media type of a stored file, from its extension."""
    return MEDIA.get(name.rsplit(".", 1)[-1], "application/octet-stream")
