"""``POST /v1/inspections``: photos of one item in, verdict and stored report out."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response
from fastapi.responses import JSONResponse

from authentiq.api.auth import Submitter, home, key_id_of, visible
from authentiq.api.deps import MetricsDep, ServicesDep
from authentiq.api.idempotent import IdempotencyKey, idempotent
from authentiq.api.resources import job_out, report_out
from authentiq.api.schemas import Job, Report
from authentiq.api.uploads import PROBLEMS, client_of, in_flight, read_uploads, request_body_schema
from authentiq.contract.deadline import Deadline
from authentiq.errors import (
    ClientClosedRequest,
)
from authentiq.inference.batcher import Priority
from authentiq.pipeline.inspection import Upload
from authentiq.pipeline.preprocess import supported_formats
from authentiq.services.container import Services
from authentiq.storage.idempotency import fingerprint
from authentiq.storage.jobs import MAX_TIMEOUT_S
from authentiq.storage.keys import Principal

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
        caller: Submitter, background: BackgroundTasks,
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
            return report_out(await cancel_on_disconnect(request, services.inspector.inspect(
                uploads, brand=fields["brand"], model=fields["model"],
                client_ref=fields.get("client_ref") or None, priority=chosen, deadline=deadline,
                key_id=key_id_of(caller), tenant_id=home(caller), report_id=report_id,
                client=client)))

        async def replay(report_id: str) -> dict[str, Any]:
            return report_out(await asyncio.to_thread(services.store.get, report_id,
                                                      tenant=visible(caller)))

        request_print = functools.partial(fingerprint, fields, [(u.view, u.data) for u in uploads])
        with in_flight(services, client):
            body, replayed = await idempotent(services, response, caller, "inspections",
                                              idempotency_key, request_print, work, replay,
                                              reserve=True)
        if not replayed:
            metrics.verdicts.labels(body["verdict"]).inc()
            if services.shadow is not None:  # runs once the response is sent, never before
                background.add_task(services.shadow.offer, body["id"], home(caller), uploads)
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
        return job_out(row)

    async def replay(job_id: str) -> dict[str, Any]:
        return job_out(await asyncio.to_thread(services.jobs.get, job_id, tenant=visible(caller)))

    request_print = functools.partial(fingerprint, {**fields, "mode": "async"},
                                      [(u.view, u.data) for u in uploads])
    body, replayed = await idempotent(services, Response(), caller, "inspections", idempotency_key,
                                      request_print, work, replay, reserve=True)
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
