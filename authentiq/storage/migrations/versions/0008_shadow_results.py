"""shadow_results: a candidate model's verdict on each inspection, stored beside its report

The live shadow (AUTHENTIQ_SHADOW_MODEL) scores every inspection with a candidate model after
the answer is sent and keeps what the candidate decided here, one row per report and candidate,
in the report's tenant; `authentiq models shadow --live` summarises them. Never part of a report.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'shadow_results',
        sa.Column('report_id', sa.String(length=32), nullable=False),
        sa.Column('model_id', sa.String(length=64), nullable=False),
        sa.Column('model', sa.String(length=200), nullable=False),
        sa.Column('tenant_id', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('verdict', sa.String(length=16), nullable=False),
        sa.Column('p_counterfeit', sa.Float(), nullable=False),
        sa.Column('confidence', sa.Float(), nullable=True),
        sa.Column('reasons', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['report_id'], ['reports.id']),
        sa.PrimaryKeyConstraint('report_id', 'model_id'))
    with op.batch_alter_table('shadow_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shadow_results_created_at'), ['created_at'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_shadow_results_tenant_id'), ['tenant_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('shadow_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_shadow_results_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_shadow_results_created_at'))
    op.drop_table('shadow_results')
