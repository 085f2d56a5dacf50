"""Customer share links: a signed, expiring, revocable, read-only link to one report's summary.

The kiosk's QR code and "Full report" link point at ``<AUTHENTIQ_PUBLIC_BASE_URL>/r/<token>``;
whoever holds the link sees the customer-facing summary (verdict, reasons, photos, heatmaps)
and nothing internal. The token reads ``<link id>.<expiry, unix s>.<HMAC>``: the HMAC (a server
secret shared by every worker) refuses a forged or altered token without a database read, the
expiry is inside what is signed, and the row (looked up by the id) says whether a review key
revoked it. A link belongs to its report's tenant; creating, listing and revoking are scoped
like every other read.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from authentiq.errors import ShareLinkNotFound
from authentiq.storage.tenants import Visible

MAC_HEX = 32  # 128 bits of HMAC-SHA256: unguessable, and a QR code stays small


class ShareLinkRow(SQLModel, table=True):
    __tablename__ = "share_links"
    id: str = Field(primary_key=True, max_length=32)
    report_id: str = Field(foreign_key="reports.id", index=True, max_length=32)
    tenant_id: str = Field(index=True, max_length=64)
    created_at: datetime
    expires_at: datetime
    created_by: str | None = Field(default=None, max_length=24)  # key id
    revoked_at: datetime | None = None
    revoked_by: str | None = Field(default=None, max_length=24)


@dataclass(frozen=True)
class ShareLinks:
    engine: Engine
    secret: bytes
    lifetime: timedelta

    def token(self, row: ShareLinkRow) -> str:
        expires = int(_aware(row.expires_at).timestamp())
        return f"{row.id}.{expires}.{self._mac(row.id, expires)}"

    def _mac(self, link_id: str, expires: int) -> str:
        message = f"share.{link_id}.{expires}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()[:MAC_HEX]

    def create(self, report_id: str, tenant_id: str, key_id: str | None) -> ShareLinkRow:
        """A new link to ``report_id`` (the caller checked it may see the report)."""
        now = datetime.now(UTC).replace(microsecond=0)
        row = ShareLinkRow(id=secrets.token_hex(16), report_id=report_id, tenant_id=tenant_id,
                           created_at=now, expires_at=now + self.lifetime, created_by=key_id)
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(row)
            session.commit()
        return row

    def resolve(self, token: str) -> ShareLinkRow:
        """The live link ``token`` names; 404 for a forged, expired, revoked or unknown one
        (all alike: the holder learns nothing more than "not available")."""
        gone = ShareLinkNotFound("this link is not valid: it expired or was withdrawn")
        parts = token.split(".")
        if len(parts) != 3 or not parts[1].isdigit():
            raise gone
        link_id, expires, mac = parts[0], int(parts[1]), parts[2]
        if not hmac.compare_digest(self._mac(link_id, expires), mac) or expires <= _now_s():
            raise gone
        with Session(self.engine) as session:
            row = session.get(ShareLinkRow, link_id)
        if row is None or row.revoked_at is not None or \
                int(_aware(row.expires_at).timestamp()) != expires:
            raise gone
        return row

    def of_report(self, report_id: str, *, tenant: Visible) -> list[ShareLinkRow]:
        """Every link to the report, newest first."""
        query = select(ShareLinkRow).where(col(ShareLinkRow.report_id) == report_id)
        if tenant is not None:
            query = query.where(col(ShareLinkRow.tenant_id) == tenant)
        with Session(self.engine) as session:
            return list(session.exec(query.order_by(col(ShareLinkRow.created_at).desc(),
                                                    col(ShareLinkRow.id))))

    def get(self, report_id: str, link_id: str, *, tenant: Visible) -> ShareLinkRow:
        row = next((r for r in self.of_report(report_id, tenant=tenant) if r.id == link_id), None)
        if row is None:
            raise ShareLinkNotFound(f"report {report_id} has no share link {link_id!r}")
        return row

    def revoke(self, report_id: str, link_id: str, *, tenant: Visible,
               key_id: str | None) -> ShareLinkRow:
        """From now on the link answers 404 (revoking twice keeps the first time)."""
        self.get(report_id, link_id, tenant=tenant)
        with Session(self.engine, expire_on_commit=False) as session:
            row = session.get(ShareLinkRow, link_id)
            if row is None:
                raise ShareLinkNotFound(f"report {report_id} has no share link {link_id!r}")
            if row.revoked_at is None:
                row.revoked_at, row.revoked_by = datetime.now(UTC), key_id
                session.add(row)
                session.commit()
            return row


def live(row: ShareLinkRow) -> bool:
    return row.revoked_at is None and _aware(row.expires_at).timestamp() > _now_s()


def _now_s() -> float:
    return datetime.now(UTC).timestamp()


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)
