"""What each worker process of ``authentiq serve`` receives from the parent: the HTTP protocol
(with a deadline on request headers) and the socket it listens on.

Both are unpickled in a new worker before uvicorn starts answering the parent's health checks,
so this module imports nothing heavy: an import that takes seconds there (FastAPI, the app) on a
busy machine got workers killed as hung ("Child process [...] died") before they had started.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger(__name__)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request's headers."""

    def __init__(self, *args: Any, header_timeout_s: float = 10.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout_s = header_timeout_s
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        no_delay(transport.get_extra_info("socket"))
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:
            if self._header_timer is None:
                self._arm()  # the first bytes of a request whose headers are not complete yet
        else:
            self._disarm()  # headers complete: the body deadline (middleware) takes over

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.info("closed a connection from %s: request headers incomplete after %.0f s",
                     self.client or "?", self.header_timeout_s)
            self.transport.close()



def no_delay(sock: Any) -> None:
    """Send small writes at once (TCP_NODELAY) on an accepted TCP connection.

    asyncio sets it only on sockets whose ``proto`` is IPPROTO_TCP, which those accepted from a
    socket made with ``socket.socket(family)`` (uvicorn's own bind and ours; proto 0) are not.
    Without it a response's second write (the body after the headers) waited for the client's
    delayed ACK: +40 ms on every request of a keep-alive connection."""
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class WorkerSocket(socket.socket):
    """``serve``'s listening address as each worker process receives it (Linux SO_REUSEPORT).

    With one socket shared by every worker, the worker whose event loop wakes first accepts
    every connection waiting (asyncio accepts up to the backlog at a time), and a keep-alive
    connection stays with the worker that accepted it: a burst of clients lands on a few
    workers while the others idle. So the parent binds this socket only to hold the port (it
    never listens: a socket that does not listen gets no connections), and a worker process
    unpickling it gets a socket of its own, bound to the same address: the kernel then spreads
    new connections evenly over the workers' own accept queues, and a worker that dies takes
    only its own queue with it."""

    def __reduce__(self) -> tuple[Callable[..., WorkerSocket], tuple[int, Any]]:
        return reuse_port_socket, (self.family, self.getsockname())


def reuse_port_socket(family: int, address: Any) -> WorkerSocket:
    """A socket bound to ``address`` with SO_REUSEPORT: the parent's (port 0 picks a free port,
    which every worker then binds), and each worker's own."""
    sock = WorkerSocket(family=family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def can_reuse_port() -> bool:
    """SO_REUSEPORT spreads connections over the sockets that share a port on Linux; elsewhere
    (macOS, the BSDs) the option exists but gives every connection to one socket."""
    return sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


def refuse_if_served(family: int, address: tuple[str, int]) -> None:
    """Raise OSError (address in use) when something already listens on ``address``. A socket
    with SO_REUSEPORT may join a port that another server of the same user serves, and the
    kernel would then split connections between the two (an old server left running, a second
    start by mistake); a socket without it, as here, cannot bind while anything listens there.
    SO_REUSEADDR keeps connections of a server just stopped (TIME_WAIT) from counting."""
    with socket.socket(family=family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)


def listening_socket(config: uvicorn.Config, reuse_port: bool) -> socket.socket:
    """The socket ``serve`` hands its worker processes: a :class:`WorkerSocket` where the
    platform spreads connections with SO_REUSEPORT and ``reuse_port`` asks for it, else
    uvicorn's one shared socket. Raises OSError when the address cannot be bound."""
    if not (reuse_port and can_reuse_port()):
        return config.bind_socket()
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    if config.port:
        refuse_if_served(family, (config.host, config.port))
    sock = reuse_port_socket(family, (config.host, config.port))
    port = sock.getsockname()[1]
    log.info("listening on %s:%d, a socket per worker (SO_REUSEPORT)", config.host, port)
    return sock
