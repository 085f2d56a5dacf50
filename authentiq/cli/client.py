"""The ``authentiq inspect`` client: post photos to a running server (httpx)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from authentiq.errors import ClientError


def parse_photo_args(photos: list[str]) -> list[tuple[str, Path]]:
    """``view=path`` or a bare ``path`` (view = file name without extension)."""
    out = []
    for arg in photos:
        view, sep, path = arg.partition("=")
        p = Path(path if sep else arg)
        name = view if sep else p.stem.lower()
        if not p.is_file():
            raise ClientError(f"no such file: {p}")
        out.append((name, p))
    return out


def inspect_photos(url: str, photos: list[str], *, brand: str, model: str,
                   client_ref: str | None = None, timeout: float = 60.0,
                   api_key: str | None = None) -> dict[str, Any]:
    pairs = parse_photo_args(photos)
    headers = {"X-API-Key": api_key} if api_key else {}
    files = [(view, (path.name, path.read_bytes())) for view, path in pairs]
    data = {"brand": brand, "model": model, **({"client_ref": client_ref} if client_ref else {})}
    try:
        response = httpx.post(url.rstrip("/") + "/v1/inspections", files=files, data=data,
                              headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise ClientError(f"cannot reach {url} ({exc}); is the server running there? Another "
                          "address: --url or AUTHENTIQ_URL") from exc
    if response.status_code >= 400:
        try:
            problem = response.json()
            detail = f"{problem.get('title')}: {problem.get('detail')}"
        except ValueError:
            detail = response.text[:300]
        raise ClientError(f"server answered {response.status_code}: {detail}")
    result: dict[str, Any] = response.json()
    return result
