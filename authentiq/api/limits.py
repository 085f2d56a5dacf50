"""Request body limits enforced while the body streams in, not after it is all in memory: its
size, and the time it may take to arrive."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authentiq.api.problems import MEDIA_TYPE
from authentiq.errors import RequestTooLarge, SlowUpload


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413: at once from Content-Length, or as soon as the
    streamed body (chunked uploads) passes the limit. A body still incomplete ``timeout_s`` after
    the request started is refused with 408 ``slow-upload`` (a slow or stalled client holds a
    connection and a parser, not a worker, for at most that long)."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float | None = None) -> None:
        self.app, self.max_bytes, self.timeout_s = app, max_bytes, timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send, int(declared))
            return
        seen, complete = 0, False
        loop = asyncio.get_running_loop()
        deadline = None if self.timeout_s is None else loop.time() + self.timeout_s

        async def _receive() -> Message:
            nonlocal seen, complete
            if complete or deadline is None:
                message = await receive()  # after the body: waiting for a disconnect is fine
            else:
                try:
                    message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
                except TimeoutError:
                    raise SlowUpload(f"the request body did not arrive within {self.timeout_s:g} s "
                                     f"({seen:,} bytes came)") from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if seen > self.max_bytes:
                    raise RequestTooLarge(
                        f"the request body passed the limit of {self.max_bytes:,} bytes")
            return message

        await self.app(scope, _receive, send)

    async def _refuse(self, scope: Scope, send: Send, size: int) -> None:
        import json

        err = RequestTooLarge(f"the request body of {size:,} bytes exceeds the limit of "
                              f"{self.max_bytes:,} bytes")
        body = json.dumps(err.to_problem(instance=scope.get("path"))).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", MEDIA_TYPE.encode()),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
