"""Prometheus metrics: request counts and latency per route and status, plus inference batches.

Each app owns its registry (no process-global state), exposed at ``/metrics``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter("authentiq_http_requests", "HTTP requests",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("authentiq_http_request_duration_seconds", "HTTP latency",
                                 ["method", "route", "status"], registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.verdicts = Counter("authentiq_verdicts", "Inspection verdicts", ["verdict"],
                                registry=self.registry)
        self.batch_size = Histogram("authentiq_batch_size", "Inference batch size",
                                    registry=self.registry, buckets=(1, 2, 4, 8, 16, 32, 64))


class MetricsMiddleware:
    """Pure ASGI middleware (no body buffering) labelling by route template, not raw path."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def _send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            route = _route(scope)
            labels = (scope["method"], route, str(status))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(time.perf_counter() - started)


def _route(scope: Scope) -> str:
    """The matched route's template (``/v1/reports/{report_id}``), so labels stay bounded."""
    route = scope.get("route")  # set by the router once it matched
    if route is not None:
        return str(getattr(route, "path", "unmatched"))
    return "unmatched"
