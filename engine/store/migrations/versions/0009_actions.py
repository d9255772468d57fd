"""action register: owner kind and id, target meeting, closing note, version

An action gains what its owner is (person, partnership, organisation; '' for
the free-text owners recorded before), a target meeting instead of a date,
the note and who closed it, and a version for optimistic locking
(workflows/action.py, engine/commands/handlers/actions.py).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 07:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('action', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_kind', sqlmodel.sql.sqltypes.AutoString(),
                                      nullable=False, server_default=''))
        batch_op.add_column(sa.Column('owner_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('target_meeting_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('note', sqlmodel.sql.sqltypes.AutoString(),
                                      nullable=False, server_default=''))
        batch_op.add_column(sa.Column('closed_by', sqlmodel.sql.sqltypes.AutoString(),
                                      nullable=False, server_default=''))
        batch_op.add_column(sa.Column('closed_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False,
                                      server_default='1'))
        batch_op.create_foreign_key('fk_action_target_meeting', 'meeting',
                                    ['target_meeting_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('action', schema=None) as batch_op:
        batch_op.drop_constraint('fk_action_target_meeting', type_='foreignkey')
        for name in ('version', 'closed_on', 'closed_by', 'note', 'target_meeting_id',
                     'owner_id', 'owner_kind'):
            batch_op.drop_column(name)
