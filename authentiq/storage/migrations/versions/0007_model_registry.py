"""model registry: models and model_promotions; reference embeddings keyed by model id;
reports.model_id

Reference embeddings were keyed by ``name@version``, so a retrained model that kept the version
served the old model's vectors. The key column is now ``model_id`` (a content hash of the
model's graph and weights). Existing rows keep their ``name@version`` value, which no model id
equals (ids are 16 hex characters), so no model serves them until they are adopted: the first
start of a server on a database with no promoted model registers and promotes the model it
serves and adopts the rows of its ``name@version`` — the rows that model (the one serving until
now) made. Any other ``name@version`` rows stay unused; ``authentiq re-embed`` makes the
serving model's.

Reports gain ``model_id`` (indexed, filterable); reports stored before have none in their body
(schema < 7), so theirs stays NULL.

Downgrade: rows keyed by a registered model's id return to its ``name@version``, the promoted
release's models first; rows that would then collide (two ids of one ``name@version`` for one
reference) are deleted — re-embed makes them again. The registry tables and the reports column
go.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('reference_embeddings', schema=None) as batch_op:
        batch_op.alter_column('model_version', new_column_name='model_id',
                              existing_type=sa.String(length=200), existing_nullable=False)
    op.create_table(
        'models',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('release', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('version', sa.String(length=200), nullable=False),
        sa.Column('precision', sa.String(length=32), nullable=False),
        sa.Column('path', sa.String(length=2000), nullable=False),
        sa.Column('size_bytes', sa.Integer(), nullable=False),
        sa.Column('acceptance', sa.String(length=16), nullable=False),
        sa.Column('forced', sa.Boolean(), nullable=False),
        sa.Column('summary', sa.JSON(), nullable=False),
        sa.Column('registered_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('registered_by', sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_models_release'), ['release'], unique=False)
    op.create_table(
        'model_promotions',
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('release', sa.String(length=64), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.Column('previous_release', sa.String(length=64), nullable=True),
        sa.Column('promoted_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('promoted_by', sa.String(length=200), nullable=False),
        sa.Column('note', sa.String(length=2000), nullable=True),
        sa.ForeignKeyConstraint(['release'], ['models.id']),
        sa.PrimaryKeyConstraint('seq'))
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('model_id', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_reports_model_id'), ['model_id'], unique=False)


def downgrade() -> None:
    conn = op.get_bind()
    promoted = conn.execute(sa.text(
        "SELECT release FROM model_promotions ORDER BY seq DESC LIMIT 1")).scalar()
    models = conn.execute(sa.text("SELECT id, release, name, version FROM models")).all()
    for model_id, _release, name, version in sorted(models, key=lambda m: m[1] != promoted):
        conn.execute(sa.text(
            "UPDATE reference_embeddings SET model_id = :key WHERE model_id = :id AND "
            "reference_id NOT IN (SELECT reference_id FROM reference_embeddings "
            "WHERE model_id = :key)"), {"key": f"{name}@{version}", "id": model_id})
    conn.execute(sa.text(
        "DELETE FROM reference_embeddings WHERE model_id IN (SELECT id FROM models)"))
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reports_model_id'))
        batch_op.drop_column('model_id')
    op.drop_table('model_promotions')
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_models_release'))
    op.drop_table('models')
    with op.batch_alter_table('reference_embeddings', schema=None) as batch_op:
        batch_op.alter_column('model_id', new_column_name='model_version',
                              existing_type=sa.String(length=200), existing_nullable=False)
