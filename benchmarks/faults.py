"""Fault injection on loopback, for the soak benchmark and the reliability tests.

* :class:`TcpProxy` — sits between the service and its database; ``cut()`` drops every open
  connection and refuses new ones (the database "goes away"), ``restore()`` lets them through.
* :class:`WebhookReceiver` — a real HTTP endpoint that records what it is sent and can be told
  to fail (answer 500) for a while.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._closed = False
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()

    def cut(self) -> None:
        self._open.clear()
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def restore(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._open.is_set():
                client.close()  # the database is "down": connection refused/reset
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._pairs.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@dataclass
class Received:
    delivery_id: str
    event: str
    signature: str
    body: bytes
    status: int  # what the receiver answered

    @property
    def payload(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.body)
        return result


@dataclass
class WebhookReceiver:
    """``fail_next`` requests are answered 500; while ``failing`` is set, every one is."""

    fail_next: int = 0
    failing: bool = False
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    fail = receiver.failing or receiver.fail_next > 0
                    receiver.fail_next = max(0, receiver.fail_next - 1)
                    status = 500 if fail else 204
                    receiver.received.append(Received(
                        self.headers.get("AuthentiQ-Delivery", ""),
                        self.headers.get("AuthentiQ-Event", ""),
                        self.headers.get("AuthentiQ-Signature", ""), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        threading.Thread(target=self._server.serve_forever, name="webhook-receiver",
                         daemon=True).start()

    def accepted(self) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.status < 300]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
