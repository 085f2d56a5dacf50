"""Typed access to what the lifespan owns (``request.app.state.services``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from authentiq.api.metrics import Metrics
from authentiq.backends.base import Backend
from authentiq.batcher import Batcher
from authentiq.inspection import Inspector
from authentiq.reports import ReportStore
from authentiq.settings import Settings


@dataclass
class Services:
    settings: Settings
    backend: Backend
    batcher: Batcher
    store: ReportStore
    inspector: Inspector
    metrics: Metrics


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
