"""report_reviews.finding: a reviewer's "not a product"

A review may record a finding beside its verdict: not_a_product (the photos show no product of
any brand; the verdict is then inconclusive). `authentiq export-training-data` exports such
reports under their own label. Entries written before this revision have none (NULL), and the
review chain's hash covers the field only when it is set, so they still verify.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'  # after the shadow's 0008; the registry's 0007 sits before it
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('report_reviews', schema=None) as batch_op:
        batch_op.add_column(sa.Column('finding', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('report_reviews', schema=None) as batch_op:
        batch_op.drop_column('finding')
