"""Prometheus metrics: request counts and latency per route and status, plus the batcher's queue,
batches and rejections (``Metrics`` is the batcher's observer), and the drift series of every
stored report (:mod:`authentiq.api.drift`).

Each app owns its registry (no process-global state), exposed at ``/metrics``. Under
``authentiq serve --workers N`` the workers share prometheus_client's multiprocess directory
(``PROMETHEUS_MULTIPROC_DIR``, set by ``serve`` before it starts them): every worker writes its
values there and ``/metrics``, whichever worker answers, sums them all (counters and histograms
over every worker that ever ran, the queue-depth gauge over the live ones).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authentiq.api.drift import DriftMetrics
from authentiq.contract.report import Report
from authentiq.inference.batcher import Priority

# Request methods counted by name; any other a client sends is "other" (each new label value is
# a new series, on disk under several workers: 3,000 made-up methods grew a scrape to 7.7 MB).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
SHARED_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own switch to multiprocess mode
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        # read once; prometheus_client read it when first imported (before any metric existed)
        self.shared_dir = os.environ.get(SHARED_DIR_ENV) or None
        if self.shared_dir is not None:
            forget_dead_workers(Path(self.shared_dir))
        self.requests = Counter("authentiq_http_requests", "HTTP requests",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("authentiq_http_request_duration_seconds", "HTTP latency",
                                 ["method", "route", "status"], registry=self.registry,
                                 buckets=LATENCY_BUCKETS)
        self.verdicts = Counter("authentiq_verdicts", "Inspection verdicts", ["verdict"],
                                registry=self.registry)
        self.batch_size = Histogram("authentiq_batch_size", "Requests per inference batch",
                                    registry=self.registry,
                                    buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128, 256))
        self.batch_seconds = Histogram("authentiq_batch_duration_seconds",
                                       "Batch execution time (collate + backend + split)",
                                       registry=self.registry, buckets=LATENCY_BUCKETS)
        self.queue_wait = Histogram("authentiq_queue_wait_seconds",
                                    "Time from queueing to the start of the request's batch",
                                    ["priority"], registry=self.registry, buckets=LATENCY_BUCKETS)
        self.queue_depth_gauge = Gauge("authentiq_queue_depth", "Requests waiting in the batcher",
                                       ["priority"], registry=self.registry,
                                       multiprocess_mode="livesum")
        self.rejections = Counter("authentiq_batcher_rejections",
                                  "Requests the batcher refused or dropped, by reason "
                                  "(queue_full, deadline, cancelled, shutting_down)",
                                  ["reason"], registry=self.registry)
        self.jobs = Counter("authentiq_jobs", "Async jobs ended, by status (succeeded, failed)",
                            ["status"], registry=self.registry)
        self.webhooks = Counter("authentiq_webhook_attempts", "Webhook delivery attempts by outcome "
                                "(delivered, retry, failed)", ["outcome"], registry=self.registry)
        self.shadow = Counter("authentiq_shadow_inspections", "Inspections the live shadow's "
                              "candidate (AUTHENTIQ_SHADOW_MODEL) scored, by outcome: agree, "
                              "disagree (with the served verdict), refused (by the candidate), "
                              "failed, dropped (its queue was full)", ["outcome"],
                              registry=self.registry)
        self.drift = DriftMetrics(self.registry)
        for priority in Priority:
            self.queue_depth_gauge.labels(priority.value).set(0)
        for reason in ("queue_full", "deadline", "cancelled", "shutting_down"):
            self.rejections.labels(reason)  # exported as 0 from the start, for dashboards

    def exposition(self) -> bytes:
        """The text ``/metrics`` answers: this app's registry, or every worker's values."""
        if self.shared_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.shared_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    # BatchObserver
    def queue_depth(self, priority: Priority, depth: int) -> None:
        self.queue_depth_gauge.labels(priority.value).set(depth)

    def batch_done(self, size: int, seconds: float, waits: list[tuple[Priority, float]]) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)
        for priority, wait in waits:
            self.queue_wait.labels(priority.value).observe(wait)

    def rejected(self, reason: str) -> None:
        self.rejections.labels(reason).inc()

    # the rest of ServiceObserver
    def job_finished(self, status: str) -> None:
        self.jobs.labels(status).inc()

    def webhook_attempt(self, outcome: str) -> None:
        self.webhooks.labels(outcome).inc()

    def shadow_outcome(self, outcome: str) -> None:
        self.shadow.labels(outcome).inc()

    def report_made(self, report: Report, product: str | None) -> None:
        self.drift.observe(report, product)


def forget_dead_workers(shared_dir: Path) -> None:
    """Drop the live gauges of workers that are gone (uvicorn restarts a worker that died, with
    a new pid): their last queue depth must not stay in the sum. Their counters stay."""
    for path in shared_dir.glob("gauge_live*_*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            mark_process_dead(int(pid), str(shared_dir))  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process of that pid
        return True
    return True


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
            method = scope["method"] if scope["method"] in METHODS else "other"  # the client's word
            labels = (method, route, str(status))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.latency.labels(*labels).observe(time.perf_counter() - started)


def _route(scope: Scope) -> str:
    """The matched route's template (``/v1/reports/{report_id}``), so labels stay bounded."""
    route = scope.get("route")  # set by the router once it matched
    if route is not None:
        return str(getattr(route, "path", "unmatched"))
    return "unmatched"
