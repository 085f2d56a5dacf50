"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from authentiq.api.deps import MetricsDep, ServicesDep
from authentiq.api.schemas import Ready

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Model loaded, backend usable and database reachable",
            responses={200: {"model": Ready}, 503: {"model": Ready, "description": "not ready"}})
async def readyz(services: ServicesDep) -> JSONResponse:
    db_ok = await asyncio.to_thread(services.store.ping)
    if db_ok:  # the reference count as the database has it (another process may have enrolled)
        await asyncio.to_thread(services.index.sync)
    info, spec, models = services.backend.info, services.backend.spec, services.models
    if db_ok:  # a promotion since the last poll shows at once here
        await asyncio.to_thread(models.refresh)
        models.poke()
    backend_error = services.backend.failure()  # e.g. a sticky CUDA error: restart the process
    ready = db_ok and backend_error is None and models.refusal is None
    body = {"ready": ready, "model": spec.version_key, "model_id": info.model_id,
            "promoted_release": models.promoted_release,
            "model_promoted": models.refusal is None, "model_error": models.refusal,
            "backend_error": backend_error,
            "precision": info.precision, "backend": info.name, "device": info.device,
            "engine_id": info.engine_id, "database": db_ok,
            "references": services.index.size, "fusion": spec.fusion is not None,
            "view_gate": spec.gate is not None, "calibrated": spec.calibration is not None}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(metrics: MetricsDep) -> Response:
    # Off the event loop: under several workers this merges every worker's files from disk.
    return Response(await asyncio.to_thread(metrics.exposition), media_type=CONTENT_TYPE_LATEST)
