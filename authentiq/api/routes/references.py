"""``/v1/references``: enrol genuine reference items, find them, soft-delete them.

Once API keys exist these endpoints need the admin scope. References are shared by every tenant:
they describe genuine goods, not a client's submissions (docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from authentiq.api.auth import require
from authentiq.api.deps import ServicesDep
from authentiq.api.files import media_type
from authentiq.api.idempotent import IdempotencyKey, idempotent
from authentiq.api.resources import reference_out
from authentiq.api.schemas import Problem, Reference, ReferenceList
from authentiq.api.uploads import PROBLEMS, read_uploads, request_body_schema
from authentiq.contract.deadline import Deadline
from authentiq.storage.idempotency import fingerprint
from authentiq.storage.keys import Principal
from authentiq.storage.references import ReferenceStore
from authentiq.web.reference_photos import reference_photo

ADMIN = require("admin")  # one dependency: a route's own use of it is served from the cache
Admin = Annotated[Principal | None, ADMIN]
TEXT_FIELDS = {"brand": 128, "model": 128, "source": 128, "notes": 2000}
ERRORS: dict[int | str, dict[str, Any]] = {
    **PROBLEMS, **{code: {"model": Problem, "content": {"application/problem+json": {}}}
                   for code in (404, 409)}}


def create_router(view_names: list[str], required: list[str]) -> APIRouter:
    router = APIRouter(prefix="/v1/references", tags=["references"], dependencies=[ADMIN])
    fields = {
        "brand": {"type": "string", "maxLength": 128},
        "model": {"type": "string", "maxLength": 128},
        "source": {"type": "string", "maxLength": 128,
                   "description": "where the item comes from (boutique, supplier, audit id)"},
        "notes": {"type": "string", "maxLength": 2000},
    }

    @router.post(
        "", response_model=Reference, status_code=201, responses=ERRORS,
        summary="Enrol a genuine reference item",
        description=("One clean photo per view (multipart, field name = view name), brand and model "
                     "of a known product (`GET /v1/products`). Every photo must pass the quality "
                     "check (422 names the failing views); the same photos twice → 409 naming the "
                     "existing reference. A counterfeit-looking item is enrolled with a warning."),
        openapi_extra=request_body_schema(view_names, required, fields),
    )
    async def enrol(request: Request, response: Response, services: ServicesDep,
                    caller: Admin,
                    idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
        settings = services.settings
        uploads, form = await read_uploads(request, settings.uploads, TEXT_FIELDS)
        deadline = Deadline.from_timeout(settings.inspection.request_timeout_s)

        async def work(_: str | None) -> dict[str, Any]:
            row = await services.enroller.enrol(
                uploads, brand=form["brand"], model=form["model"],
                source=form.get("source") or None, notes=form.get("notes") or None,
                deadline=deadline)
            return reference_out(row, [services.backend.info.model_id])

        body, _ = await idempotent(
            services, response, caller, "references", idempotency_key,
            functools.partial(fingerprint, form, [(u.view, u.data) for u in uploads]), work,
            lambda ref_id: asyncio.to_thread(_one, services.references, ref_id))
        return body

    @router.get("", response_model=ReferenceList, responses={422: ERRORS[422]},
                summary="Find references (newest first, cursor pagination)")
    async def list_references(
        services: ServicesDep,
        brand: Annotated[str | None, Query(max_length=128)] = None,
        model: Annotated[str | None, Query(max_length=128)] = None,
        source: Annotated[str | None, Query(max_length=128)] = None,
        include_deleted: bool = False,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the "
                                                                           "previous page")] = None,
    ) -> dict[str, Any]:
        store = services.references
        rows, next_cursor = await asyncio.to_thread(
            store.find, brand=brand, model=model, source=source, include_deleted=include_deleted,
            limit=limit, cursor=cursor)
        total = await asyncio.to_thread(store.count, brand=brand, model=model, source=source,
                                        include_deleted=include_deleted)
        versions = await asyncio.to_thread(store.embedded_with, [r.id for r in rows])
        items = [reference_out(r, versions.get(r.id, [])) for r in rows]
        return {"items": items, "count": len(items), "total": total, "next_cursor": next_cursor}

    @router.get("/{reference_id}", response_model=Reference, responses={404: ERRORS[404]},
                summary="Get one reference")
    async def get_reference(reference_id: str, services: ServicesDep) -> dict[str, Any]:
        return await asyncio.to_thread(_one, services.references, reference_id)

    @router.delete("/{reference_id}", response_model=Reference,
                   responses={404: ERRORS[404], 422: ERRORS[422]},
                   summary="Soft-delete a reference (kept for audit, no longer compared with)")
    async def delete_reference(
        reference_id: str, services: ServicesDep,
        reason: Annotated[str, Query(min_length=3, max_length=2000,
                                     description="why it is withdrawn; recorded for audit")],
    ) -> dict[str, Any]:
        store = services.references
        await asyncio.to_thread(store.delete, reference_id, reason)
        await asyncio.to_thread(services.index.sync, force=True)
        return await asyncio.to_thread(_one, store, reference_id)

    @router.get("/{reference_id}/views/{view}", responses={404: ERRORS[404]},
                response_class=Response, summary="Download a reference photo")
    async def get_reference_photo(reference_id: str, view: str, services: ServicesDep) -> Response:
        name, data = await asyncio.to_thread(reference_photo, services.references, reference_id, view)
        return Response(data, media_type=media_type(name))

    return router


def _one(store: ReferenceStore, reference_id: str) -> dict[str, Any]:
    row = store.get(reference_id)
    return reference_out(row, store.embedded_with([row.id]).get(row.id, []))
