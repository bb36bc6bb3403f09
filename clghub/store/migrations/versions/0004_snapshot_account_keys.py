"""clv and incentive_detail drop their foreign key to account, like the other rebuilt snapshots

Every score run rewrites these rows from the account rows in the same
transaction, so the reference holds by construction; PostgreSQL's row-by-row
check of it cost more than writing the rows (see clghub.store.value).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 20:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ('clv', 'incentive_detail')
# SQLite keeps the keys unnamed: batch mode names them by this convention to drop them.
_NAMING = {'fk': 'fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s'}


def upgrade() -> None:
    bind = op.get_bind()
    for table in _TABLES:
        if bind.dialect.name == 'sqlite':
            with op.batch_alter_table(table, naming_convention=_NAMING) as batch_op:
                batch_op.drop_constraint(f'fk_{table}_account_id_account', type_='foreignkey')
            continue
        for key in sa.inspect(bind).get_foreign_keys(table):
            if key['referred_table'] == 'account':
                op.drop_constraint(key['name'], table, type_='foreignkey')


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_foreign_key(
                f'fk_{table}_account_id_account', 'account', ['account_id'], ['id']
            )
