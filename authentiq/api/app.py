"""``create_app(settings)``: the FastAPI application; its lifespan owns every heavy resource."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from authentiq import __version__
from authentiq.api import problems
from authentiq.api.limits import BodyLimitMiddleware
from authentiq.api.metrics import Metrics, MetricsMiddleware
from authentiq.api.resources import webhook_body
from authentiq.api.routes import (
    capture,
    compared,
    docs,
    health,
    jobs,
    pages,
    products,
    references,
    reports,
    share,
)
from authentiq.api.routes.inspections import create_router
from authentiq.inference.select import model_contract
from authentiq.services.container import Services, open_services
from authentiq.services.switch import ServedModel
from authentiq.settings import Settings
from authentiq.web.heatmap_images import HeatmapImages
from authentiq.web.pdf_cache import PdfCache
from authentiq.web.reference_photos import photo_or_none
from authentiq.web.templating import STATIC

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    # Read only the model's contract here (cheap, no session): the OpenAPI body lists its views.
    spec = model_contract(settings.model)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        def serve(services: Services) -> None:  # at start, and after each switch of model
            app.state.services = services

        served = ServedModel(lambda switching: open_services(
            settings, observer=metrics, event_body=webhook_body, registry=True,
            switching=switching), serve, drain_s=settings.inspection.request_timeout_s)
        async with served as services:
            blobs = services.store.blobs  # the same store whatever the model
            heatmaps = HeatmapImages(blobs.child("heatmaps"), blobs)
            pdfs = PdfCache(blobs.child("pdf"), blobs, settings.pdf, heatmaps,
                            reference_photo=lambda reference_id, view: photo_or_none(
                                app.state.services.references, reference_id, view))
            app.state.metrics, app.state.served = metrics, served
            app.state.pdfs, app.state.heatmaps = pdfs, heatmaps
            if _loopback(settings.access.public_base_url):
                log.warning("share links and QR codes point at %s, which only this machine can "
                            "open: set AUTHENTIQ_PUBLIC_BASE_URL to where customers reach the "
                            "service", settings.access.public_base_url)
            info = services.backend.info
            log.info("ready: %s (model %s) %s on %s (%s), %d references",
                     services.backend.spec.version_key, info.model_id, info.precision, info.name,
                     info.device, services.index.size)
            try:
                yield
            finally:
                pdfs.close()
                heatmaps.close()

    app = FastAPI(
        title="AuthentiQ",
        version=__version__,
        summary="Counterfeit detection for luxury goods",
        description=("Upload photos of one item, get a verdict (authentic / counterfeit / "
                     "inconclusive) with reasons and a stored report. Errors are RFC 9457 "
                     "problem details (application/problem+json)."),
        lifespan=lifespan,
        docs_url=None, redoc_url=None,  # served by routes/docs.py without a CDN
    )
    problems.install(app)
    problems.document(app)
    app.include_router(create_router(list(spec.view_names), list(spec.required_views)))
    app.include_router(jobs.router)
    app.include_router(capture.router)
    app.include_router(reports.router)
    app.include_router(compared.router)
    app.include_router(share.api)
    app.include_router(share.public)
    app.include_router(references.create_router(list(spec.view_names), list(spec.required_views)))
    app.include_router(products.router)
    app.include_router(pages.router)
    app.include_router(docs.router)
    app.mount(docs.ASSETS_URL, docs.assets(), name="docs-assets")  # before /static: it is inside
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(health.router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.uploads.max_request_bytes,
                       timeout_s=settings.connections.body_timeout_s)
    cors_origins = settings.access.cors_origins
    if cors_origins:  # kiosks served from another origin; never "*"
        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins),
                           allow_methods=["GET", "POST", "PUT", "DELETE"],
                           allow_headers=["Authorization", "X-API-Key", "Idempotency-Key",
                                          "Content-Type"],
                           expose_headers=["Retry-After", "Idempotent-Replayed"], max_age=600)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == "localhost" or host == "::1" or host.startswith("127.")
