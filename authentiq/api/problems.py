"""RFC 9457 problem details: every error leaves the API as ``application/problem+json``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match

from authentiq.errors import PROBLEM_BASE, AuthentiqError, ClientClosedRequest, DatabaseUnavailable

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"
DB_RETRY_AFTER_S = 5
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=int(body["status"]), media_type=MEDIA_TYPE, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(AuthentiqError)
    async def _domain(request: Request, exc: AuthentiqError) -> JSONResponse:
        if isinstance(exc, ClientClosedRequest):
            log.info("client went away: %s %s (%s)", request.method, request.url.path, exc.detail)
        return problem_response(exc.to_problem(instance=request.url.path), headers=exc.headers or None)

    @app.exception_handler(ClientDisconnect)
    async def _disconnect(request: Request, exc: ClientDisconnect) -> JSONResponse:
        """An upload aborted mid-body: one log line and a 499 in the metrics, not a traceback
        and a 500 (nobody receives this answer)."""
        return await _domain(request, ClientClosedRequest("the client disconnected while its "
                                                          "request body was being read"))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
        return problem_response({"type": PROBLEM_BASE + "invalid-request", "title": "Invalid request",
                                 "status": 422, "detail": detail, "errors": errors,
                                 "instance": request.url.path})

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        headers = dict(exc.headers) if exc.headers else {}
        if exc.status_code == 405:
            # Starlette names the methods of the first route whose path matched; a path served by
            # several routes (GET and POST /v1/references) allows all of theirs (RFC 9110 §15.5.6)
            headers["Allow"] = ", ".join(allowed_methods(app, request))
        return problem_response({"type": PROBLEM_BASE + slug, "title": str(exc.detail),
                                 "status": exc.status_code, "detail": str(exc.detail),
                                 "instance": request.url.path}, headers=headers or None)

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        if not outage(exc):
            raise exc  # a bug, not an outage: the 500 handler below logs it
        log.error("database unavailable on %s %s: %s", request.method, request.url.path,
                  str(exc.orig).strip().splitlines()[0] if exc.orig else exc)
        return problem_response(DatabaseUnavailable(
            "the database did not answer; nothing was stored. Retry shortly (with the same "
            "Idempotency-Key, if you sent one)", retry_after=DB_RETRY_AFTER_S,
        ).to_problem(instance=request.url.path), headers={"Retry-After": str(DB_RETRY_AFTER_S)})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response({"type": PROBLEM_BASE + "internal-error", "title": "Internal error",
                                 "status": 500, "detail": "An unexpected error occurred; it was logged.",
                                 "instance": request.url.path})


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """Every method some route serves at the request's path: each candidate method is matched
    against the router as a request of its own (routers may be nested, so the routes' own
    ``methods`` are not all visible from the top)."""
    allowed = []
    for method in HTTP_METHODS:
        scope = {**request.scope, "type": "http", "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in app.router.routes):
            allowed.append(method)
    return allowed


def outage(exc: DBAPIError) -> bool:
    """The database is unreachable or busy (worth a retry), as opposed to a broken query."""
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return True
    message = str(exc.orig or "").lower()
    return isinstance(exc, OperationalError) and not message.startswith(("no such table",
                                                                        "no such column"))


def document(app: FastAPI) -> None:
    """Make the OpenAPI document say what the handlers above do: request validation errors
    (422) and unparsable bodies (400) are problem details, not FastAPI's default JSON."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, summary=app.summary,
                             description=app.description, routes=app.routes)
        problem = {"content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                responses = operation.get("responses", {})
                if "422" in responses:
                    responses["422"] = {"description": "Invalid request (RFC 9457 problem)", **problem}
                if "requestBody" in operation:
                    responses.setdefault("400", {"description": "Unparsable body", **problem})
        for path, item in schema.get("paths", {}).items():
            if not path.startswith("/v1/"):
                continue
            for operation in item.values():  # every /v1 route is guarded by a key and its rate
                responses = operation.setdefault("responses", {})
                for code, what in (("401", "API key missing, unknown or revoked"),
                                   ("403", "API key lacks the scope"),
                                   ("429", "Rate limit passed (Retry-After)"),
                                   ("503", "Overloaded, shutting down or database unavailable "
                                           "(Retry-After)")):
                    responses.setdefault(code, {"description": what, **problem})
        components = schema.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            components.pop(unused, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
