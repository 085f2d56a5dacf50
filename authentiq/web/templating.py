"""The auditor pages' and the customer page's templates, and the headers every page sends."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

from authentiq.web.report_view import when

WEB = Path(__file__).resolve().parent
STATIC = WEB / "static"
templates = Jinja2Templates(directory=WEB / "templates")
templates.env.filters["when"] = when
HEADERS = {"Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                      "img-src 'self'; form-action 'self'; frame-ancestors 'none'",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
