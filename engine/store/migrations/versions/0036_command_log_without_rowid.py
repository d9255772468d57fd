"""command_log WITHOUT ROWID on SQLite: the idempotency keys' rows kept in their
primary key's b-tree, one b-tree (and page) fewer written per command

SQLite cannot change a table to WITHOUT ROWID in place: the table is rebuilt
(a copy of every row, its index made again). PostgreSQL has no rowid: nothing
to do there.

Revision ID: 0036
Revises: 0032
Create Date: 2026-12-05 21:40:00
"""
from alembic import op


revision = '0036'
down_revision = '0032'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != 'sqlite':
        return
    with op.batch_alter_table(
        'command_log', recreate='always', table_kwargs={'sqlite_with_rowid': False}
    ):
        pass


def downgrade() -> None:
    if op.get_bind().dialect.name != 'sqlite':
        return
    with op.batch_alter_table(
        'command_log', recreate='always', table_kwargs={'sqlite_with_rowid': True}
    ):
        pass
