"""sweep changes: a sweep goes on from the last one (issue 15 item 4)

``sweep_change``, filled by triggers (engine/store/models.py ``sweep_trigger_ddl``):
the grants changed since a sweep, or (NULL) a change to who is written to; and on
``sweep_run`` what a later sweep needs to go on from it (``seen``: the last change
when it started, ``rules``: the rules it swept by, ``since``/``changes_after``:
how far a sweep going on from the last one has got).

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-05 18:30:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel

from engine.store.models import drop_sweep_triggers_ddl, sweep_trigger_ddl


revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sweep_change',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('grant_id', sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table('sweep_run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seen', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('rules', sqlmodel.sql.sqltypes.AutoString(),
                                      server_default='', nullable=False))
        batch_op.add_column(sa.Column('since', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('changes_after', sa.Integer(), server_default='0',
                                      nullable=False))
    dialect = op.get_bind().dialect.name
    for ddl in sweep_trigger_ddl(dialect):
        op.execute(ddl)


def downgrade() -> None:
    for ddl in drop_sweep_triggers_ddl(op.get_bind().dialect.name):
        op.execute(ddl)
    with op.batch_alter_table('sweep_run', schema=None) as batch_op:
        batch_op.drop_column('changes_after')
        batch_op.drop_column('since')
        batch_op.drop_column('rules')
        batch_op.drop_column('seen')
    op.drop_table('sweep_change')
