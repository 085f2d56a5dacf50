"""``/v1/reports/{id}/references/{reference_id}/views/{view}``: a photo of a genuine reference
the report was compared with, for whoever may read the report (the auditor page and the kiosk
show the closest references beside the item; ``/v1/references`` itself is for admins).
Only the report's own matches are served: another reference id is 404, as is another tenant's
report."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import Response

from authentiq.api.auth import Reader, visible
from authentiq.api.deps import ServicesDep
from authentiq.api.files import NOT_FOUND, media_type
from authentiq.errors import ReferenceNotFound
from authentiq.web.reference_photos import reference_photo, was_compared

router = APIRouter(prefix="/v1/reports", tags=["reports"])


@router.get("/{report_id}/references/{reference_id}/views/{view}", responses=NOT_FOUND,
            response_class=Response,
            summary="A photo of a genuine reference this report was compared with")
async def compared_photo(report_id: str, reference_id: str, view: str, services: ServicesDep,
                         caller: Reader) -> Response:
    report = await asyncio.to_thread(services.store.get, report_id, tenant=visible(caller))
    if not was_compared(report, reference_id):
        raise ReferenceNotFound(f"report {report_id} was not compared with reference {reference_id}")
    name, data = await asyncio.to_thread(reference_photo, services.references, reference_id, view)
    return Response(data, media_type=media_type(name),
                    headers={"Cache-Control": "private, max-age=86400, immutable"})
