"""Who is calling: API keys (``Authorization: Bearer`` or ``X-API-Key``) and, for the auditor
pages, a signed session cookie set by ``/login``. ``require(scope)`` guards a route."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import Depends, Request

from authentiq.keys import (
    SESSION_COOKIE,
    Forbidden,
    Principal,
    Scope,
    Unauthorized,
    principal_of,
    session_key_id,
)
from authentiq.services import Services

log = logging.getLogger("authentiq.access")


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.headers.get("x-api-key") or None


async def authenticate(request: Request, services: Services, *scopes: Scope) -> Principal | None:
    """None when keys are not enforced; else the caller (holding any of ``scopes``), or 401/403."""
    ring = services.keys
    enforced = await asyncio.to_thread(lambda: ring.enforced) if ring.stale else ring.enforced
    if not enforced:
        return None
    key = presented_key(request)
    principal: Principal | None
    if key is not None:
        principal = await asyncio.to_thread(ring.verify, key)
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        key_id = session_key_id(services.session_secret, cookie) if cookie else None
        principal = await asyncio.to_thread(principal_of, ring.engine, key_id) if key_id else None
    if principal is None:
        raise Unauthorized("send an API key: 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
    if not any(principal.allows(scope) for scope in scopes):
        raise Forbidden(f"key {principal.key_id} lacks the {' or '.join(scopes)} scope "
                        f"(it has {', '.join(sorted(principal.scopes))})")
    # Per key: past its rate, 429 + Retry-After before any work is done.
    await asyncio.to_thread(services.rate_limiter.hit, f"key:{principal.key_id}", principal.rate_limit)
    request.state.key_id = principal.key_id
    log.info("%s %s key=%s", request.method, request.url.path, principal.key_id)
    return principal


def require(*scopes: Scope) -> Any:
    """A route dependency: the caller must hold one of ``scopes`` (admin holds all)."""
    async def dependency(request: Request) -> Principal | None:
        return await authenticate(request, request.app.state.services, *scopes)

    dependency.__name__ = "require_" + "_or_".join(scopes)
    return Depends(dependency)


def key_id_of(request: Request) -> str | None:
    return getattr(request.state, "key_id", None)


