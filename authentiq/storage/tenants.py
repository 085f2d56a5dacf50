"""Tenants: the marketplaces and store chains that share one AuthentiQ.

Every API key belongs to one tenant, and so does everything a key makes: reports, async jobs,
webhook deliveries, idempotency claims, share links. Reads are scoped in the stores' queries:
a caller sees its own tenant's items, and an id of another tenant's item answers exactly like an
id that does not exist (404). A key with the ``auditor`` scope sees every tenant.

Genuine references and products are **not** tenant data: they describe genuine goods, not any
client's submissions, and every tenant's items are compared with the same references (the admin
scope manages them).

A tenant id is a short slug (``marketplace-eu``); the ``default`` tenant always exists and holds
what was stored before tenants existed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from authentiq.contract.text import check_text
from authentiq.errors import AuthentiqError, InvalidField, UnknownTenant

DEFAULT_TENANT = "default"
TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

# What a caller may see: one tenant's id, or None for every tenant (an auditor key, or an API
# that is not enforcing keys: a fresh install, or AUTHENTIQ_AUTH=off behind a gateway).
Visible = str | None


class TenantRow(SQLModel, table=True):
    __tablename__ = "tenants"
    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=128)
    created_at: datetime


def check_tenant_id(tenant_id: str) -> str:
    if not TENANT_ID.match(tenant_id):
        raise InvalidField(f"a tenant id is 1-63 lower-case letters, digits and '-' starting with a "
                           f"letter or digit, like 'marketplace-eu'; got {tenant_id!r}",
                           field="tenant")
    return tenant_id


def create_tenant(engine: Engine, tenant_id: str, name: str | None = None) -> TenantRow:
    check_tenant_id(tenant_id)
    row = TenantRow(id=tenant_id, name=check_text(name or tenant_id, "name", 128),
                    created_at=datetime.now(UTC))
    with Session(engine) as session:
        session.add(row)
        try:
            session.commit()
        except IntegrityError:
            raise AuthentiqError(f"tenant {tenant_id!r} exists already") from None
        session.refresh(row)
    return row


def list_tenants(engine: Engine) -> list[TenantRow]:
    with Session(engine) as session:
        return list(session.exec(select(TenantRow).order_by(col(TenantRow.created_at))))


def require_tenant(engine: Engine, tenant_id: str) -> TenantRow:
    with Session(engine) as session:
        row = session.get(TenantRow, tenant_id)
    if row is None:
        raise UnknownTenant(f"no tenant {tenant_id!r}; create it with `authentiq tenants create "
                            f"{tenant_id}`")
    return row
