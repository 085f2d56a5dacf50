"""reference_embeddings.view_features / feature_views / features_id: per-view descriptors

The per-view reference check compares every photo with the same view of the claimed product's
references; each embedding row now keeps the model's view_descriptors of the reference's views
(float32 rows, one per name in feature_views) and the fit of the check that made them
(features_id). Rows written before this revision have none (NULL): `authentiq re-embed` fills
them, and until then the check is skipped for the products whose references lack them (reports
say so).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('reference_embeddings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('view_features', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('feature_views', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('features_id', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('reference_embeddings', schema=None) as batch_op:
        batch_op.drop_column('features_id')
        batch_op.drop_column('feature_views')
        batch_op.drop_column('view_features')
