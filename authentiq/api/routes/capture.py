"""What a capture client (the kiosk page, a phone app) needs: the views to photograph with a
hint for each and an instant per-photo quality check (the QR code of a result is a share link's:
``api/routes/share.py``).

Once API keys exist these need the ``submit`` scope, like inspections.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.datastructures import UploadFile

from authentiq.api.auth import require
from authentiq.api.deps import ServicesDep
from authentiq.api.uploads import PROBLEMS, client_of, in_flight, parse_form, read_photo
from authentiq.contract.deadline import Deadline
from authentiq.contract.report import ViewQuality
from authentiq.errors import InvalidField, UnknownView, UnsupportedMediaType
from authentiq.inference.batcher import Priority
from authentiq.pipeline.inspection import Upload, view_result, with_gate

router = APIRouter(prefix="/v1", tags=["capture"], dependencies=[require("submit")])
HINTS = {
    "overall": "The whole item, front on, filling most of the frame. Plain background, even light.",
    "logo": "The logo or monogram, straight on and close, filling the frame. No flash glare.",
    "stitching": "A seam close up: several stitches sharp and in focus, lit from the side.",
    "hardware": "A buckle, clasp or zip pull with its engraving readable. Tilt to avoid reflections.",
    "label": "The inside label or date code, close and sharp enough to read every character.",
    "interior": "The lining, close enough to see its weave or pattern.",
}
GENERIC_HINT = "Fill the frame with this detail, in focus, evenly lit, without glare."
MAX_LONG_EDGE = 1600


class ViewGuide(BaseModel):
    name: str
    required: bool
    hint: str


class CaptureGuide(BaseModel):
    views: list[ViewGuide]
    max_long_edge: int


@router.get("/views", response_model=CaptureGuide, summary="The views to photograph, in order")
async def views(services: ServicesDep) -> dict[str, Any]:
    spec = services.backend.spec
    return {"views": [{"name": v.name, "required": v.required, "hint": HINTS.get(v.name, GENERIC_HINT)}
                      for v in spec.views],
            "max_long_edge": MAX_LONG_EDGE}


@router.post("/quality", response_model=ViewQuality, responses=PROBLEMS,
             summary="Check one photo at once (the inspection's own quality check and view gate)",
             openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {
                 "schema": {"type": "object", "required": ["view", "photo"], "properties": {
                     "view": {"type": "string"}, "photo": {"type": "string", "format": "binary"}}}}}}})
async def quality(request: Request, services: ServicesDep) -> ViewQuality:
    limits, spec = services.settings.uploads, services.backend.spec
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UnsupportedMediaType("send multipart/form-data with fields 'view' and 'photo'")
    form = await parse_form(request, max_files=1, max_fields=2)
    try:
        view, photo = form.get("view"), form.get("photo")
        if not isinstance(view, str) or view not in spec.view_names:
            raise UnknownView(f"view must be one of {', '.join(spec.view_names)}", view=str(view))
        if not isinstance(photo, UploadFile):
            raise InvalidField("send the photo as a file field named 'photo'", field="photo")
        data = await read_photo(photo, view, limits.max_file_bytes)
    finally:
        await form.close()  # removes spooled temporary files

    inspector = services.inspector
    client = client_of(request)
    deadline = Deadline.from_timeout(services.settings.inspection.request_timeout_s)
    with in_flight(services, client):
        run = await inspector.run([Upload(view, data)], priority=Priority.INTERACTIVE,
                                  deadline=deadline, client=client)
    prepared = run.prepared[view]
    gate = run.gate(single=True)  # the inspection's own view gate, for one photo alone
    return with_gate(view_result(view, prepared.decoded, prepared.quality),
                     gate.get(view) if gate is not None else None)
