"""Request body limit enforced while the body streams in, not after it is all in memory."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authentiq.api.problems import MEDIA_TYPE
from authentiq.errors import RequestTooLarge


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413: at once from Content-Length, or as soon as the
    streamed body (chunked uploads) passes the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send, int(declared))
            return
        seen = 0

        async def _receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
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
