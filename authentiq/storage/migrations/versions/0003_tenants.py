"""tenants: every key, report, job and delivery belongs to one; reviews record the key;
server-side sign-in sessions; customer share links; tenant-scoped idempotency keys

Existing keys, reports, jobs and deliveries go into the ``default`` tenant (created here).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 10:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT = 'default'
OWNED = ('reports', 'jobs', 'webhook_deliveries')  # tenant_id, indexed, no foreign key


def upgrade() -> None:
    tenants = op.create_table(
        'tenants',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    op.bulk_insert(tenants, [{'id': DEFAULT, 'name': 'Default tenant',
                              'created_at': datetime.now(UTC)}])

    # Existing rows get the default tenant through a server default, dropped again afterwards:
    # the application always names the tenant.
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tenant_id', sa.String(length=64), nullable=False,
                                      server_default=DEFAULT))
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.alter_column('tenant_id', server_default=None)
        batch_op.create_index(batch_op.f('ix_api_keys_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_foreign_key('fk_api_keys_tenant_id_tenants', 'tenants', ['tenant_id'], ['id'])
    for table in OWNED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('tenant_id', sa.String(length=64), nullable=False,
                                          server_default=DEFAULT))
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('tenant_id', server_default=None)
            batch_op.create_index(batch_op.f(f'ix_{table}_tenant_id'), ['tenant_id'], unique=False)

    with op.batch_alter_table('report_reviews', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_id', sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column('key_name', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('note', sa.String(length=200), nullable=True))

    # Claims are now "<tenant>:<operation>:<client key>"; open claims live at most 24 h, and
    # a claim of the old form simply never matches again (its retry runs as new work).
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.alter_column('key', existing_type=sa.String(length=240),
                              type_=sa.String(length=400), existing_nullable=False)

    op.create_table(
        'web_sessions',
        sa.Column('token_sha256', sa.String(length=64), nullable=False),
        sa.Column('key_id', sa.String(length=24), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('token_sha256'))
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_web_sessions_key_id'), ['key_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_web_sessions_expires_at'), ['expires_at'], unique=False)

    op.create_table(
        'share_links',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('report_id', sa.String(length=32), nullable=False),
        sa.Column('tenant_id', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=24), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_by', sa.String(length=24), nullable=True),
        sa.ForeignKeyConstraint(['report_id'], ['reports.id']),
        sa.PrimaryKeyConstraint('id'))
    with op.batch_alter_table('share_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_share_links_report_id'), ['report_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_share_links_tenant_id'), ['tenant_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('share_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_share_links_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_share_links_report_id'))
    op.drop_table('share_links')
    with op.batch_alter_table('web_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_web_sessions_expires_at'))
        batch_op.drop_index(batch_op.f('ix_web_sessions_key_id'))
    op.drop_table('web_sessions')
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.alter_column('key', existing_type=sa.String(length=400),
                              type_=sa.String(length=240), existing_nullable=False)
    with op.batch_alter_table('report_reviews', schema=None) as batch_op:
        batch_op.drop_column('note')
        batch_op.drop_column('key_name')
        batch_op.drop_column('key_id')
    for table in reversed(OWNED):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f'ix_{table}_tenant_id'))
            batch_op.drop_column('tenant_id')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_constraint('fk_api_keys_tenant_id_tenants', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_api_keys_tenant_id'))
        batch_op.drop_column('tenant_id')
    op.drop_table('tenants')
