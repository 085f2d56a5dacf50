"""Every table of the service in one metadata: what the migrations are checked against
(``tests/test_migrations.py``) and what ``alembic revision --autogenerate`` compares with."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlmodel import SQLModel

import authentiq.db
import authentiq.idempotency
import authentiq.jobs
import authentiq.keys
import authentiq.references
import authentiq.reports
import authentiq.sessions
import authentiq.share_links
import authentiq.tenants
import authentiq.webhooks  # noqa: F401  (importing a module registers its tables)


def metadata() -> MetaData:
    return SQLModel.metadata
