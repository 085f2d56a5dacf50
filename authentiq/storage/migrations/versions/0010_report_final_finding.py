"""reports.final_finding: the latest review's finding, for listings and the CSV export

A reviewer's "not a product" (0009) was recorded only in the review log, so a listing or the
CSV export showed such a report as plain inconclusive. The column holds the latest review's
finding (NULL when it has none); existing reports get it from their latest review.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('final_finding', sa.String(length=32), nullable=True))
    op.execute(
        "UPDATE reports SET final_finding = (SELECT r.finding FROM report_reviews r "
        "WHERE r.report_id = reports.id ORDER BY r.seq DESC LIMIT 1)")


def downgrade() -> None:
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.drop_column('final_finding')
