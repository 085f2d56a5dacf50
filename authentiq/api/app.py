"""``create_app(settings)``: the FastAPI application; its lifespan owns every heavy resource."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI

from authentiq import __version__
from authentiq.api import problems
from authentiq.api.deps import Services
from authentiq.api.limits import BodyLimitMiddleware
from authentiq.api.metrics import Metrics, MetricsMiddleware
from authentiq.api.routes import health, reports
from authentiq.api.routes.inspections import create_router
from authentiq.backends.select import open_backend
from authentiq.batcher import Batcher, BatcherConfig
from authentiq.blobs import BlobStore
from authentiq.inspection import Inspector
from authentiq.model_spec import read_spec
from authentiq.reports import ReportStore
from authentiq.settings import Settings

log = logging.getLogger(__name__)


def batcher_config(settings: Settings) -> BatcherConfig:
    return BatcherConfig(
        max_batch_size=settings.max_batch_size,
        preferred_batch_sizes=settings.preferred_batch_sizes,
        max_queue_delay_s=settings.max_queue_delay_ms / 1000,
        max_queue_size=settings.max_queue_size,
        instances=settings.batcher_instances,
        adaptive=settings.adaptive_batching,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    # Read only the model's contract here (cheap, no session): the OpenAPI body lists its views.
    spec = read_spec(settings.model_path)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        backend = open_backend(settings)
        store = ReportStore(settings.database_url, BlobStore(settings.blob_dir))
        pool = ThreadPoolExecutor(settings.preprocess_workers, thread_name_prefix="authentiq-cpu")
        batcher = Batcher(backend, batcher_config(settings), observer=metrics)
        await batcher.start()
        inspector = Inspector(settings, backend.spec, backend.info, batcher, store, pool)
        app.state.services = Services(settings, backend, batcher, store, inspector, metrics)
        log.info("ready: %s %s on %s", backend.spec.model_name, backend.info.precision,
                 backend.info.name)
        try:
            yield
        finally:
            await batcher.close()  # finishes every accepted request first
            pool.shutdown(wait=True)
            backend.close()
            store.close()

    app = FastAPI(
        title="AuthentiQ",
        version=__version__,
        summary="Counterfeit detection for luxury goods",
        description=("Upload photos of one item, get a verdict (authentic / counterfeit / "
                     "inconclusive) with reasons and a stored report. Errors are RFC 9457 "
                     "problem details (application/problem+json)."),
        lifespan=lifespan,
    )
    problems.install(app)
    app.include_router(create_router(list(spec.view_names), list(spec.required_views)))
    app.include_router(reports.router)
    app.include_router(health.router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
