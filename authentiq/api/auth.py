"""Who is calling: API keys (``Authorization: Bearer`` or ``X-API-Key``) and, for the auditor
pages, a sign-in session (a cookie set by ``/login``). ``require(scope)`` guards a route and
hands it the caller, whose tenant scopes every read and write.

A session is narrower than the key that opened it: it carries at most the review (and auditor)
scope, never admin or submit, and on the API it only reads (GET/HEAD), so that the pages can show
a report's photos and heatmaps. Everything a session changes goes through the pages' forms,
which check the origin and a CSRF token (``api/routes/pages.py``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import Depends, Request

from authentiq.errors import Forbidden, Unauthorized
from authentiq.services.container import Services
from authentiq.storage.keys import Principal, Scope
from authentiq.storage.sessions import COOKIE
from authentiq.storage.tenants import DEFAULT_TENANT, Visible

log = logging.getLogger("authentiq.access")
READS = frozenset({"GET", "HEAD"})


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.headers.get("x-api-key") or None


async def authenticate(request: Request, services: Services, *scopes: Scope,
                       page: bool = False) -> Principal | None:
    """None when keys are not enforced; else the caller (holding any of ``scopes``), or 401/403.
    ``page``: an auditor page or its form (a session may change things there, nowhere else)."""
    ring = services.keys
    enforced = await asyncio.to_thread(lambda: ring.enforced) if ring.stale else ring.enforced
    if not enforced:
        return None
    key = presented_key(request)
    principal: Principal | None = None
    if key is not None:
        principal = await asyncio.to_thread(ring.verify, key)
    elif (token := request.cookies.get(COOKIE)) is not None:
        if not page and request.method not in READS:
            raise Unauthorized("a sign-in session only reads through the API; send an API key "
                               "to change anything")
        principal = await asyncio.to_thread(services.sessions.principal, token)
    if principal is None:
        raise Unauthorized("send an API key: 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
    if not any(principal.allows(scope) for scope in scopes):
        via = " through a sign-in session" if key is None else ""
        raise Forbidden(f"key {principal.key_id} lacks the {' or '.join(scopes)} scope{via} "
                        f"(it has {', '.join(sorted(principal.scopes))})")
    # Per key: past its rate, 429 + Retry-After before any work is done.
    await asyncio.to_thread(services.rate_limiter.hit, f"key:{principal.key_id}", principal.rate_limit)
    request.state.principal = principal
    log.info("%s %s key=%s tenant=%s", request.method, request.url.path, principal.key_id,
             principal.tenant_id)
    return principal


def require(*scopes: Scope) -> Any:
    """A route dependency: the caller must hold one of ``scopes`` (admin holds all but auditor)."""
    async def dependency(request: Request) -> Principal | None:
        return await authenticate(request, request.app.state.services, *scopes)

    dependency.__name__ = "require_" + "_or_".join(scopes)
    return Depends(dependency)


def visible(caller: Principal | None) -> Visible:
    """The tenant whose items ``caller`` sees; None: every tenant (an auditor, or keys not
    enforced: a fresh install, or AUTHENTIQ_AUTH=off behind a gateway that decides)."""
    return None if caller is None else caller.visible


def home(caller: Principal | None) -> str:
    """The tenant what ``caller`` makes belongs to."""
    return DEFAULT_TENANT if caller is None else caller.tenant_id


def key_id_of(caller: Principal | None) -> str | None:
    return None if caller is None else caller.key_id


Submitter = Annotated[Principal | None, require("submit")]
Reader = Annotated[Principal | None, require("submit", "review")]
Reviewer = Annotated[Principal | None, require("review")]
