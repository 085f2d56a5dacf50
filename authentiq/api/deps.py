"""Typed access to what the lifespan owns (``request.app.state``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request

from authentiq.api.metrics import Metrics
from authentiq.services.container import Services
from authentiq.web.heatmap_images import HeatmapImages
from authentiq.web.pdf_cache import PdfCache


async def get_services(request: Request) -> AsyncIterator[Services]:
    """The services of the model this worker serves now, held until the request is done (a
    switch to another model closes the old one only after that: :mod:`authentiq.services.switch`)."""
    services: Services = request.app.state.services
    with services.users.held():
        yield services


def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def get_pdfs(request: Request) -> PdfCache:
    pdfs: PdfCache = request.app.state.pdfs
    return pdfs


def get_heatmaps(request: Request) -> HeatmapImages:
    heatmaps: HeatmapImages = request.app.state.heatmaps
    return heatmaps


ServicesDep = Annotated[Services, Depends(get_services)]
PdfsDep = Annotated[PdfCache, Depends(get_pdfs)]
HeatmapsDep = Annotated[HeatmapImages, Depends(get_heatmaps)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
