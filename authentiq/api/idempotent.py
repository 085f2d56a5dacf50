"""``Idempotency-Key`` for every POST that creates something (see :mod:`authentiq.storage.idempotency`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Header, Response

from authentiq.api.auth import home
from authentiq.services.container import Services
from authentiq.storage.idempotency import check_key
from authentiq.storage.keys import Principal

IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key",
    description="retry safely: the same key and body within 24 h returns the original result "
                "(header Idempotent-Replayed: true) without running again; the same key with "
                "another body is 422; a concurrent duplicate waits for the first")]


async def idempotent(services: Services, response: Response, caller: Principal | None, scope: str,
                     key: str | None,
                     fingerprint: Callable[[], str],
                     work: Callable[[str | None], Awaitable[dict[str, Any]]],
                     replay: Callable[[str], Awaitable[dict[str, Any]]],
                     result_id: Callable[[dict[str, Any]], str] = lambda r: str(r["id"]),
                     *, reserve: bool = False) -> tuple[dict[str, Any], bool]:
    """Run ``work`` once per key of the caller's tenant; returns ``(result, replayed)``. ``work``
    gets the id its result must have (``reserve``; see :meth:`Idempotency.run`) or None: its own
    choice. ``replay`` must load the result within the caller's tenant. ``fingerprint`` (of the
    request) is computed only when there is a key: hashing six photos is not free."""
    if key is None:
        return await work(None), False
    claim = f"{home(caller)}:{scope}:{check_key(key)}"
    body, replayed = await services.idempotency.run(claim, await asyncio.to_thread(fingerprint),
                                                    work, replay, result_id, reserve=reserve)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return body, replayed
