"""Every table of the service in one metadata: what the migrations are checked against
(``tests/storage/test_migrations.py``) and what ``alembic revision --autogenerate`` compares with."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlmodel import SQLModel

import authentiq.storage.db
import authentiq.storage.idempotency
import authentiq.storage.jobs
import authentiq.storage.keys
import authentiq.storage.models
import authentiq.storage.references
import authentiq.storage.reports
import authentiq.storage.sessions
import authentiq.storage.shadow_results
import authentiq.storage.share_links
import authentiq.storage.tenants
import authentiq.storage.webhooks  # noqa: F401  (importing a module registers its tables)


def metadata() -> MetaData:
    return SQLModel.metadata
