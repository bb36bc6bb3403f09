"""Output state: CRM writeback per record and field, digest posts, play deliveries

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 20:10:07.153566
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import clghub.store.types


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('digest_post',
    sa.Column('period', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('channel_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('digest_key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('payload_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('message_ts', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('chart_state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('chart_name', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('file_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('nrr', sa.Float(), nullable=True),
    sa.Column('grr', sa.Float(), nullable=True),
    sa.Column('attempt_started_at', clghub.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('posted_at', clghub.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', clghub.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', clghub.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('period', 'channel')
    )
    op.create_table('writeback_state',
    sa.Column('crm', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('record_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('field', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('confirmed_value', sa.Text(), nullable=True),
    sa.Column('confirmed_at', clghub.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('pending', sa.Boolean(), nullable=False),
    sa.Column('pending_value', sa.Text(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_attempt_at', clghub.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['account.id'], ),
    sa.PrimaryKeyConstraint('crm', 'record_id', 'field')
    )
    with op.batch_alter_table('writeback_state', schema=None) as batch_op:
        batch_op.create_index('ix_writeback_state_account', ['account_id'], unique=False)

    op.create_table('play_delivery',
    sa.Column('play_id', sa.Integer(), nullable=False),
    sa.Column('message_key', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('message_state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('message_started_at', clghub.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('message_ts', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('task_key', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
    sa.Column('task_crm', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('task_record_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('task_state', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
    sa.Column('task_started_at', clghub.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('task_ref', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('updated_at', clghub.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['play_id'], ['play.id'], ),
    sa.PrimaryKeyConstraint('play_id')
    )


def downgrade() -> None:
    op.drop_table('play_delivery')
    with op.batch_alter_table('writeback_state', schema=None) as batch_op:
        batch_op.drop_index('ix_writeback_state_account')

    op.drop_table('writeback_state')
    op.drop_table('digest_post')
