"""Typed access to what the lifespan owns (``request.app.state``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from authentiq.api.metrics import Metrics
from authentiq.services.container import Services
from authentiq.web.pdf_cache import PdfCache


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def get_pdfs(request: Request) -> PdfCache:
    pdfs: PdfCache = request.app.state.pdfs
    return pdfs


ServicesDep = Annotated[Services, Depends(get_services)]
PdfsDep = Annotated[PdfCache, Depends(get_pdfs)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
