"""allocations: funding requests that are not bids; rounds that need no scoring

A bid row gains its ``kind`` ('bid', the default for every existing row, or
'allocation': funding an officer proposes for a purpose and a recipient,
decided unscored), the request's ``reasons`` (its report and recommendation)
and its itemised costs (``items``, e.g. a quarter's events). A round gains
``scoring_required`` (true for every existing round: its bids are scored before
the Board decides them). Both through handlers/allocations.py and
rules/guards.py ``may_decide_unscored``.

Revision ID: 0010
Revises: 0015
Create Date: 2026-12-05 09:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0010'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('bid', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(),
                                      nullable=False, server_default='bid'))
        batch_op.add_column(sa.Column('reasons', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('items', sa.JSON(), nullable=False,
                                      server_default=sa.text("'[]'")))
    with op.batch_alter_table('round', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scoring_required', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table('round', schema=None) as batch_op:
        batch_op.drop_column('scoring_required')
    with op.batch_alter_table('bid', schema=None) as batch_op:
        for name in ('items', 'reasons', 'kind'):
            batch_op.drop_column(name)
