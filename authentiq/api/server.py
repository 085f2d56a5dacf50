"""How ``authentiq serve`` runs uvicorn: limits that protect the service from slow clients.

uvicorn closes a connection idle *between* requests after ``timeout_keep_alive``, but nothing
closes one that trickles its request headers (slowloris: one byte every few seconds held 300
connections for 50 s in an attack run). Here:

- **header deadline**: a request's headers must be complete ``AUTHENTIQ_HEADER_TIMEOUT_S`` after
  its first byte (or after the connection opened); otherwise the connection is closed
  (:class:`GuardedH11Protocol`);
- **body deadline**: the whole body within ``AUTHENTIQ_BODY_TIMEOUT_S`` of the request's start,
  else 408 ``slow-upload`` (:class:`authentiq.api.limits.BodyLimitMiddleware`, so it holds under
  any server);
- **idle keep-alive** ``AUTHENTIQ_KEEP_ALIVE_S``; **connection cap** ``AUTHENTIQ_MAX_CONNECTIONS``
  (uvicorn's ``limit_concurrency``: past it, 503 at once); request headers at most 16 KiB.
"""

from __future__ import annotations

import copy
import functools
import logging
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from uvicorn.config import LOGGING_CONFIG

from authentiq.api.app import create_app
from authentiq.api.connections import GuardedH11Protocol
from authentiq.errors import AuthentiqError
from authentiq.settings import ConnectionSettings

log = logging.getLogger(__name__)
MAX_HEADER_BYTES = 16 * 1024
READY_CHECK = "/readyz?from=authentiq-serve"  # the path ReadyWatch asks, not access-logged


def uvicorn_options(connections: ConnectionSettings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` (picklable: worker processes receive them)."""
    return {
        "http": functools.partial(GuardedH11Protocol, header_timeout_s=connections.header_timeout_s),
        "timeout_keep_alive": connections.keep_alive_s,
        "limit_concurrency": connections.max_connections,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "timeout_graceful_shutdown": 30,
        # A worker answers the parent's health checks once Python has started and unpickled
        # its settings: seconds on a busy machine, where uvicorn's 5 s killed workers that were
        # merely starting ("Child process [...] died", over and over on 2 loaded CPUs).
        "timeout_worker_healthcheck": 30,
    }


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging configuration plus AuthentiQ's loggers at ``level`` (so start-up says
    which backend, model and references it serves without ``-v``), in every worker process.
    The per-request ``authentiq.access`` lines stay at debug: uvicorn's access log has the
    requests already."""
    numeric = "DEBUG" if level.lower() == "trace" else level.upper()
    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["authentiq"] = {"()": "uvicorn.logging.DefaultFormatter",
                                         "fmt": "%(levelprefix)s %(name)s: %(message)s"}
    config["handlers"]["authentiq"] = {"formatter": "authentiq", "class": "logging.StreamHandler",
                                       "stream": "ext://sys.stderr"}
    config["loggers"]["authentiq"] = {"handlers": ["authentiq"], "level": numeric,
                                      "propagate": False}
    config["loggers"]["authentiq.access"] = {
        "level": numeric if numeric == "DEBUG" else "WARNING"}
    config["filters"] = {"own_ready_checks": {"()": "authentiq.api.server.OwnReadyChecks"}}
    config["handlers"]["access"]["filters"] = ["own_ready_checks"]
    return config


class OwnReadyChecks(logging.Filter):
    """Leaves ``serve``'s own readiness checks (:class:`ReadyWatch`) out of the access log."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (isinstance(args, tuple) and len(args) > 2 and args[2] == READY_CHECK)


def ready_message(url: str, model: str, precision: str, backend: str, device: str,
                  references: int, workers: int = 1) -> str:
    """What `authentiq serve` (and so `make run`) prints once its URL answers."""
    processes = f", {workers} worker processes" if workers > 1 else ""
    return (f"AuthentiQ ready on {url}  ({model}, {precision} on {backend}/{device}, "
            f"{references} references{processes})\n"
            f"  kiosk {url}kiosk · review queue {url}review · API docs {url}docs")


class ReadyWatch:
    """With several worker processes, the parent serves nothing itself: this thread asks the
    URL's ``/readyz`` until a worker answers 200, then prints :func:`ready_message` from its
    answer (the URL answers from then on; later workers join as they finish starting)."""

    def __init__(self, url: str, workers: int, interval_s: float = 0.2) -> None:
        self.url, self.workers, self.interval_s = url, workers, interval_s
        self.announced = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="authentiq-ready", daemon=True)

    def __enter__(self) -> ReadyWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.wait(self.interval_s):
                try:
                    answer = client.get(self.url.rstrip("/") + READY_CHECK)
                except httpx.HTTPError:
                    continue  # not listening yet, or a worker is still starting
                if answer.status_code == 200:
                    r = answer.json()
                    print(ready_message(self.url, r["model"], r["precision"], r["backend"],
                                        r["device"], r["references"], self.workers), flush=True)
                    self.announced = True
                    return


STARTUP_FAILURE = 3  # uvicorn's exit status for a worker that cannot start


def worker_app() -> FastAPI:
    """The app of one worker process (``serve`` with several): ``create_app`` with the
    settings the parent put in the environment. A worker that cannot build its app exits with
    uvicorn's start-up failure status, on which the parent stops every worker and exits (on any
    other status it would restart the worker, forever, each failing the same way)."""
    try:
        return create_app()
    except AuthentiqError as exc:
        log.error("cannot start: %s; stopping the server", exc.detail)
    except Exception:  # a process boundary: whatever stops the app stops the server
        log.exception("this worker cannot start; stopping the server")
    sys.exit(STARTUP_FAILURE)


class AnnouncingServer(uvicorn.Server):
    """uvicorn's server that calls ``announce`` once it accepts connections (not before: a URL
    printed earlier answers "connection refused" for the first seconds)."""

    def __init__(self, config: uvicorn.Config, announce: Callable[[], None]) -> None:
        super().__init__(config)
        self._announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit:
            self._announce()


def browsable(host: str, port: int) -> str:
    """The URL a person on this machine opens for ``host``: a wildcard address is not one."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"
