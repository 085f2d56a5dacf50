"""The socket `authentiq serve` hands its workers (authentiq.api.connections): a socket per
worker on one port, never a port another server already serves, and connections that send small
writes at once."""

from __future__ import annotations

import asyncio
import pickle
import socket
from multiprocessing.reduction import ForkingPickler

import pytest
import uvicorn
from uvicorn.server import ServerState

from authentiq.api.connections import (
    GuardedH11Protocol,
    WorkerSocket,
    can_reuse_port,
    listening_socket,
)

pytestmark = [pytest.mark.db_independent,  # the PostgreSQL pass leaves it out
              pytest.mark.skipif(not can_reuse_port(), reason="SO_REUSEPORT spreads on Linux only")]


def config(port: int) -> uvicorn.Config:
    return uvicorn.Config("authentiq.api.server:worker_app", host="127.0.0.1", port=port)


def test_each_worker_unpickles_a_socket_of_its_own_on_the_parents_port() -> None:
    with listening_socket(config(0), reuse_port=True) as parent:
        assert isinstance(parent, WorkerSocket)
        port = parent.getsockname()[1]
        workers = [pickle.loads(ForkingPickler.dumps(parent)) for _ in range(2)]
        try:
            assert [w.getsockname()[1] for w in workers] == [port, port]
            assert len({parent.fileno(), *(w.fileno() for w in workers)}) == 3
            for w in workers:
                w.listen()  # both listen: the kernel spreads connections over them
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass
        finally:
            for w in workers:
                w.close()


@pytest.mark.parametrize("other_reuses_port", [True, False])
def test_a_port_another_server_listens_on_is_refused(other_reuses_port: bool) -> None:
    """With SO_REUSEPORT a second server of the same user could join a port already served,
    and the kernel would split clients between the two: serve refuses instead."""
    with socket.socket() as other:
        if other_reuses_port:  # as another `authentiq serve` would have it
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        with pytest.raises(OSError) as refused:
            listening_socket(config(other.getsockname()[1]), reuse_port=True)
        assert "in use" in str(refused.value)


def test_a_port_freed_a_moment_ago_is_taken() -> None:
    """A server just stopped leaves connections in TIME_WAIT: the next start still binds."""
    with socket.socket() as old:
        old.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        old.bind(("127.0.0.1", 0))
        old.listen()
        port = old.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            served, _ = old.accept()
            served.close()  # the server side closes first: its end waits in TIME_WAIT
            client.recv(1)
    with listening_socket(config(port), reuse_port=True) as again:
        assert again.getsockname()[1] == port


@pytest.mark.parametrize("reuse_port", [True, False])
def test_accepted_connections_send_small_writes_at_once(reuse_port: bool) -> None:
    """asyncio sets TCP_NODELAY only where the listening socket's proto is IPPROTO_TCP, and
    neither serve's socket nor uvicorn's own is: a response's body, written after its headers,
    then waited for the client's delayed ACK (40 ms a request on a keep-alive connection)."""
    cfg = config(0)
    cfg.load()
    with listening_socket(cfg, reuse_port=reuse_port) as sock:
        sock.listen()
        with socket.create_connection(sock.getsockname(), timeout=5):
            accepted, _ = sock.accept()

    async def serve_it() -> int:
        loop = asyncio.get_running_loop()
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0  # as accepted
        transport, _ = await loop.connect_accepted_socket(
            lambda: GuardedH11Protocol(cfg, ServerState(), {}), accepted)
        try:
            return accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        finally:
            transport.close()

    assert asyncio.run(serve_it()) != 0
