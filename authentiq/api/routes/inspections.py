"""``POST /v1/inspections``: photos of one item in, verdict and stored report out."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from authentiq.api.auth import Submitter, home, key_id_of, visible
from authentiq.api.deps import MetricsDep, ServicesDep
from authentiq.api.idempotent import IdempotencyKey, idempotent
from authentiq.api.schemas import Job, Problem, Report
from authentiq.batcher import Priority
from authentiq.deadline import Deadline
from authentiq.errors import (
    ClientClosedRequest,
    EmptyFile,
    FileTooLarge,
    InvalidField,
    TooManyFiles,
    UnsupportedMediaType,
)
from authentiq.idempotency import fingerprint
from authentiq.inspection import Upload
from authentiq.jobs import MAX_TIMEOUT_S, job_view
from authentiq.keys import Principal
from authentiq.preprocess import supported_formats
from authentiq.services import Services
from authentiq.settings import UploadSettings
from authentiq.text import check_text

TEXT_FIELDS = {"brand": 128, "model": 128, "client_ref": 128}
MULTILINE_FIELDS = frozenset({"notes"})  # a reference's notes may have several lines
PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {"application/problem+json": {}}}
    for code in (409, 413, 415, 422, 503, 504)
}
T = TypeVar("T")
TIMEOUT_MS = (
    "Deadline in milliseconds from the request's arrival. sync: if it passes while the photos "
    "wait to be decoded or the item waits for inference, the answer is 504 deadline-exceeded at "
    "that moment and nothing runs; capped at the server's request timeout "
    "(AUTHENTIQ_REQUEST_TIMEOUT_S, default 30 s), which is also the default. async: the job must "
    "be done by then, its time in the job queue included: a job still waiting, decoding or "
    "queued for inference at its deadline fails with deadline-exceeded (the job's error; its "
    "webhook event is inspection.failed) and nothing runs; the job's deadline_at says when. "
    "Capped at 24 h; default: none. Once its inference has started, an inspection completes.")


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
                if value.size is not None and value.size > limits.max_file_bytes:
                    raise FileTooLarge(f"the {name} photo is {value.size:,} bytes; the limit is "
                                       f"{limits.max_file_bytes:,}", view=name)
                data = await value.read(limits.max_file_bytes + 1)
                if len(data) > limits.max_file_bytes:
                    raise FileTooLarge(f"the {name} photo exceeds {limits.max_file_bytes:,} bytes",
                                       view=name)
                if not data:
                    raise EmptyFile(f"the {name} photo is empty (0 bytes)", view=name)
                uploads.append(Upload(name, data))
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


async def parse_form(request: Request, *, max_files: int, max_fields: int) -> FormData:
    """The multipart (or urlencoded) form; a malformed body is 422 like every other fault in
    the upload, not Starlette's 400 (one answer for one fault on every upload route)."""
    try:
        return await request.form(max_files=max_files, max_fields=max_fields)
    except HTTPException as exc:  # Starlette's wrapping of multipart parser errors
        if "Too many files" in str(exc.detail):
            raise TooManyFiles(f"at most {max_files} files per request") from exc
        raise InvalidField(f"malformed multipart body: {exc.detail}") from exc


def create_router(view_names: list[str], required: list[str]) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["inspections"])

    @router.post(
        "/inspections", response_model=Report, status_code=201,
        responses={**PROBLEMS, 202: {"model": Job, "description": "mode=async: accepted; the job "
                                     "is stored and runs shortly (Location: /v1/jobs/{id})"}},
        summary="Inspect one item",
        description=("Upload one photo per view (multipart, field name = view name) with the "
                     "claimed brand and model. Accepted formats: "
                     f"{', '.join(supported_formats())}. Returns the verdict and the stored "
                     "report (201), or with mode=async a job (202) whose end is posted to the "
                     "key's webhook and can be polled at /v1/jobs/{id}."),
        openapi_extra=request_body_schema(view_names, required),
    )
    async def create_inspection(
        request: Request, response: Response, services: ServicesDep, metrics: MetricsDep,
        caller: Submitter,
        mode: Annotated[Literal["sync", "async"], Query(
            description="sync: answer with the report; async: answer 202 with a job at once "
                        "(stored before the answer, so it survives a restart)")] = "sync",
        priority: Annotated[Priority | None, Query(
            description="interactive (a person waits: kiosk, auditor) is batched ahead of bulk "
                        "(machine-to-machine backlog). Default: interactive for sync, bulk for "
                        "async")] = None,
        timeout_ms: Annotated[int | None, Query(ge=1, description=TIMEOUT_MS)] = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Any:
        settings = services.settings
        deadline = request_deadline(mode, timeout_ms, settings.inspection.request_timeout_s)
        uploads, fields = await read_uploads(request, settings.uploads)
        if mode == "async":
            return await submit_job(services, caller, uploads, fields, priority or Priority.BULK,
                                    idempotency_key, deadline)
        chosen = priority or Priority.INTERACTIVE
        client = client_of(request)

        async def work(report_id: str | None) -> dict[str, Any]:
            return await cancel_on_disconnect(request, services.inspector.inspect(
                uploads, brand=fields["brand"], model=fields["model"],
                client_ref=fields.get("client_ref") or None, priority=chosen, deadline=deadline,
                key_id=key_id_of(caller), tenant_id=home(caller), report_id=report_id,
                client=client))

        async def replay(report_id: str) -> dict[str, Any]:
            return await asyncio.to_thread(services.store.get, report_id, tenant=visible(caller))

        with in_flight(services, client):
            body, replayed = await idempotent(
                services, response, caller, "inspections", idempotency_key,
                fingerprint(fields, [(u.view, u.data) for u in uploads]), work, replay, reserve=True)
        if not replayed:
            metrics.verdicts.labels(body["verdict"]).inc()
        return body

    return router


def request_deadline(mode: Literal["sync", "async"], timeout_ms: int | None,
                     request_timeout_s: float) -> Deadline | None:
    """The request's one deadline, from its arrival (now): see ``TIMEOUT_MS``."""
    if mode == "async":
        return None if timeout_ms is None else Deadline.from_timeout(min(timeout_ms / 1000,
                                                                         MAX_TIMEOUT_S))
    return Deadline.from_timeout(request_timeout_s if timeout_ms is None else
                                 min(timeout_ms / 1000, request_timeout_s))


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


async def submit_job(services: Services, caller: Principal | None, uploads: list[Upload],
                     fields: dict[str, str], priority: Priority, idempotency_key: str | None,
                     deadline: Deadline | None) -> JSONResponse:
    """Check what is cheap to check now (views, product), store the job with its deadline,
    answer 202."""
    services.inspector.check_views([u.view for u in uploads])
    services.inspector.check_product(fields["brand"], fields["model"])

    async def work(job_id: str | None) -> dict[str, Any]:
        row = await asyncio.to_thread(
            services.jobs.submit, uploads, brand=fields["brand"], model=fields["model"],
            client_ref=fields.get("client_ref") or None, priority=priority,
            key_id=key_id_of(caller), tenant_id=home(caller), job_id=job_id, deadline=deadline)
        services.runner.wake()
        return job_view(row)

    async def replay(job_id: str) -> dict[str, Any]:
        return job_view(await asyncio.to_thread(services.jobs.get, job_id, tenant=visible(caller)))

    body, replayed = await idempotent(
        services, Response(), caller, "inspections", idempotency_key,
        fingerprint({**fields, "mode": "async"}, [(u.view, u.data) for u in uploads]), work, replay,
        reserve=True)
    headers = {"Location": body["links"]["self"]}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(body, status_code=202, headers=headers)


async def cancel_on_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Run ``work``; cancel it if the client disconnects first (its queued inference is dropped).

    Once the body has been read, the ASGI server's next ``receive`` message is ``http.disconnect``.
    """
    task = asyncio.ensure_future(work)
    gone = asyncio.Event()

    async def watch() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        gone.set()
        task.cancel()

    watcher = asyncio.create_task(watch())
    try:
        return await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if gone.is_set() and (current is None or not current.cancelling()):
            raise ClientClosedRequest("the client disconnected while its inspection ran; "
                                      "its queued work was dropped") from None
        raise
    finally:
        watcher.cancel()
