"""Async jobs and their webhook deliveries: ``GET /v1/jobs/{id}``, the delivery log, redelivery.

Reading needs ``submit`` or ``review``, redelivering ``submit``. A key sees its tenant's jobs
and deliveries (an auditor key, or an open API, sees all); another
tenant's id answers 404, exactly like an unknown one.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response

from authentiq.api.auth import Reader, Submitter, visible
from authentiq.api.deps import ServicesDep
from authentiq.api.idempotent import IdempotencyKey, idempotent
from authentiq.api.resources import delivery_out, job_out
from authentiq.api.schemas import Delivery, DeliveryList, JobWithDeliveries, Problem
from authentiq.storage.idempotency import fingerprint

router = APIRouter(prefix="/v1", tags=["jobs"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "content": {"application/problem+json": {}}}}
HEX_ID = r"^[0-9a-f]{32}$"

@router.get("/jobs/{job_id}", response_model=JobWithDeliveries, responses=NOT_FOUND,
            summary="An async inspection's state, with its webhook deliveries")
async def get_job(job_id: Annotated[str, Path(pattern=HEX_ID)], services: ServicesDep,
                  caller: Reader) -> dict[str, Any]:
    def load() -> dict[str, Any]:
        row = services.jobs.get(job_id, tenant=visible(caller))
        deliveries = services.deliveries.list(tenant=row.tenant_id, job_id=job_id)
        return {**job_out(row), "deliveries": [delivery_out(d) for d in deliveries]}

    return await asyncio.to_thread(load)


@router.get("/webhooks/deliveries", response_model=DeliveryList,
            summary="The webhook delivery log, newest first")
async def deliveries(
    services: ServicesDep, caller: Reader,
    job_id: Annotated[str | None, Query(pattern=HEX_ID)] = None,
    status: Literal["pending", "delivered", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    rows = await asyncio.to_thread(services.deliveries.list, tenant=visible(caller),
                                   job_id=job_id, status=status, limit=limit)
    return {"items": [delivery_out(r) for r in rows]}


@router.post("/webhooks/deliveries/{delivery_id}/redeliver", response_model=Delivery,
             status_code=202, responses=NOT_FOUND,
             summary="Send a delivery again now (same id and body; one more attempt)")
async def redeliver_one(delivery_id: Annotated[str, Path(pattern=HEX_ID)], services: ServicesDep,
                        caller: Submitter, response: Response,
                        idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    tenant = visible(caller)

    async def work(_: str | None) -> dict[str, Any]:
        row = await asyncio.to_thread(services.deliveries.redeliver, delivery_id, tenant=tenant)
        services.dispatcher.wake()
        return delivery_out(row)

    async def replay(_: str) -> dict[str, Any]:
        return delivery_out(await asyncio.to_thread(services.deliveries.get, delivery_id,
                                                    tenant=tenant))

    body, _ = await idempotent(services, response, caller, "redeliver", idempotency_key,
                               functools.partial(fingerprint, {"delivery": delivery_id}, []), work, replay)
    return body
