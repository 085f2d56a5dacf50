"""What every upload route shares: the multipart body read within its limits (one answer for
one fault on every route), its OpenAPI description, and fair admission per client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import Request
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from authentiq.api.auth import key_id_of
from authentiq.api.schemas import Problem
from authentiq.contract.text import check_text
from authentiq.errors import EmptyFile, FileTooLarge, InvalidField, TooManyFiles, UnsupportedMediaType
from authentiq.pipeline.inspection import Upload
from authentiq.services.container import Services
from authentiq.settings import UploadSettings

TEXT_FIELDS = {"brand": 128, "model": 128, "client_ref": 128}
MULTILINE_FIELDS = frozenset({"notes"})  # a reference's notes may have several lines
PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {"application/problem+json": {}}}
    for code in (409, 413, 415, 422, 503, 504)
}


def request_body_schema(view_names: list[str], required: list[str],
                        fields: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """OpenAPI for the multipart body; the view fields come from the served model."""
    props: dict[str, Any] = {
        v: {"type": "string", "format": "binary",
            "description": f"photo of the {v} view ({'required' if v in required else 'optional'})"}
        for v in view_names
    }
    props.update(fields if fields is not None else {
        "brand": {"type": "string", "maxLength": 128, "description": "claimed brand"},
        "model": {"type": "string", "maxLength": 128, "description": "claimed model"},
        "client_ref": {"type": "string", "maxLength": 128,
                       "description": "your own item id, to find the report later"},
    })
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "properties": props, "required": [*required, "brand", "model"]}}}}}


async def read_uploads(request: Request, limits: UploadSettings,
                       text_fields: dict[str, int] = TEXT_FIELDS) -> tuple[list[Upload], dict[str, str]]:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        raise UnsupportedMediaType(
            f"send multipart/form-data (one file per view), not {content_type or 'no content type'!r}")
    form = await parse_form(request, max_files=limits.max_files, max_fields=len(text_fields) + 4)
    try:
        fields: dict[str, str] = {}
        uploads: list[Upload] = []
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                uploads.append(Upload(name, await read_photo(value, name, limits.max_file_bytes)))
            elif name in text_fields:
                if name in fields:
                    raise InvalidField(f"field {name!r} given more than once", field=name)
                fields[name] = check_text(value.strip(), name, text_fields[name],
                                          multiline=name in MULTILINE_FIELDS)
            else:
                raise InvalidField(
                    f"unexpected text field {name!r}; photos must be sent as files named after "
                    f"their view", field=name)
    finally:
        await form.close()  # removes spooled temporary files
    for name in ("brand", "model"):
        if not fields.get(name):
            raise InvalidField(f"form field {name!r} is required", field=name)
    if not uploads:
        raise InvalidField("no photos: send one file per view, named after the view")
    return uploads, fields


async def read_photo(photo: UploadFile, view: str, max_bytes: int) -> bytes:
    """The file's bytes; 413 past ``max_bytes`` (read no further), 422 when empty."""
    if photo.size is not None and photo.size > max_bytes:
        raise FileTooLarge(f"the {view} photo is {photo.size:,} bytes; the limit is {max_bytes:,}",
                           view=view)
    data = await photo.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise FileTooLarge(f"the {view} photo exceeds {max_bytes:,} bytes", view=view)
    if not data:
        raise EmptyFile(f"the {view} photo is empty (0 bytes)", view=view)
    return data


async def parse_form(request: Request, *, max_files: int, max_fields: int) -> FormData:
    """The multipart (or urlencoded) form; a malformed body is 422 like every other fault in
    the upload, not Starlette's 400 (one answer for one fault on every upload route)."""
    try:
        return await request.form(max_files=max_files, max_fields=max_fields)
    except HTTPException as exc:  # Starlette's wrapping of multipart parser errors
        if "Too many files" in str(exc.detail):
            raise TooManyFiles(f"at most {max_files} files per request") from exc
        raise InvalidField(f"malformed multipart body: {exc.detail}") from exc



def client_of(request: Request) -> str:
    """Whom work is shared fairly between: the API key, or the address while keys are off."""
    key_id = key_id_of(getattr(request.state, "principal", None))
    if key_id is not None:
        return f"key:{key_id}"
    return f"addr:{request.client.host}" if request.client else "addr:?"


@contextmanager
def in_flight(services: Services, client: str) -> Iterator[None]:
    """Count one running request of ``client``; past its share, 429 + Retry-After at once."""
    services.in_flight.enter(client)
    try:
        yield
    finally:
        services.in_flight.leave(client)
