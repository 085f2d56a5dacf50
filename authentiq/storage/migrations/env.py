"""Alembic environment: runs on the connection that :func:`authentiq.storage.db.upgrade` hands over
(``config.attributes["connection"]``), inside its transaction; no alembic.ini is needed.

New revisions: ``python -m authentiq.storage.db revision "what changed"`` autogenerates one against a
scratch database at head; read it before committing it."""

from typing import Any, Literal

from alembic import context
from sqlmodel.sql import sqltypes

from authentiq.storage.tables import metadata


def render_item(kind: str, item: Any, autogen_context: Any) -> str | Literal[False]:
    """Migrations name plain SQLAlchemy types, not SQLModel's decorators, so that they keep
    working whatever SQLModel does later."""
    if kind == "type" and isinstance(item, sqltypes.AutoString):
        return f"sa.String(length={item.length})"
    if kind == "type" and isinstance(item, sqltypes.UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata(), render_item=render_item,
                  render_as_batch=connection.dialect.name == "sqlite", compare_type=True,
                  user_module_prefix="sa.")
with context.begin_transaction():
    context.run_migrations()
