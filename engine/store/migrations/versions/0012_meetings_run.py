"""meetings as they run: attendance, agenda order, report items, named votes

A meeting gains the officer's order of its agenda, the standing orders it
runs under and who took the chair; a member's row records apologies and a
substitute; observers and report items (added, or required for a later
meeting) get tables; a decision keeps the meeting it was referred back to,
the votes by name, a casting vote and the standing order applied (issue 12,
docs/meetings.md).

Revision ID: 0012
Revises: 0016
Create Date: 2026-12-05 09:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0012'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('meeting', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agenda_order', sa.JSON(), nullable=False,
                                      server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column('standing_orders', sqlmodel.sql.sqltypes.AutoString(),
                                      nullable=False, server_default=''))
        batch_op.add_column(sa.Column('chair_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_meeting_chair', 'person', ['chair_id'], ['id'])
    with op.batch_alter_table('meeting_member', schema=None) as batch_op:
        batch_op.add_column(sa.Column('apologies', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('substitute_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_meeting_member_substitute', 'person',
                                    ['substitute_id'], ['id'])
    with op.batch_alter_table('decision', schema=None) as batch_op:
        batch_op.add_column(sa.Column('to_meeting_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('named_votes', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('casting', sqlmodel.sql.sqltypes.AutoString(),
                                      nullable=False, server_default=''))
        batch_op.add_column(sa.Column('standing_order', sqlmodel.sql.sqltypes.AutoString(),
                                      nullable=False, server_default=''))
        batch_op.create_foreign_key('fk_decision_to_meeting', 'meeting',
                                    ['to_meeting_id'], ['id'])
    op.create_table(
        'meeting_observer',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('meeting_id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=True),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.ForeignKeyConstraint(['meeting_id'], ['meeting.id']),
        sa.ForeignKeyConstraint(['person_id'], ['person.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('meeting_observer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meeting_observer_meeting_id'), ['meeting_id'],
                              unique=False)
    op.create_table(
        'report_item',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('raised_at_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('meeting_id', sa.Integer(), nullable=True),
        sa.Column('title', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('presenter', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('paper', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('required', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['meeting_id'], ['meeting.id']),
        sa.ForeignKeyConstraint(['raised_at_id'], ['meeting.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('raised_at_id', 'number'),
    )
    with op.batch_alter_table('report_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_item_raised_at_id'), ['raised_at_id'],
                              unique=False)


def downgrade() -> None:
    op.drop_table('report_item')
    op.drop_table('meeting_observer')
    with op.batch_alter_table('decision', schema=None) as batch_op:
        batch_op.drop_constraint('fk_decision_to_meeting', type_='foreignkey')
        for name in ('standing_order', 'casting', 'named_votes', 'to_meeting_id'):
            batch_op.drop_column(name)
    with op.batch_alter_table('meeting_member', schema=None) as batch_op:
        batch_op.drop_constraint('fk_meeting_member_substitute', type_='foreignkey')
        for name in ('substitute_id', 'apologies'):
            batch_op.drop_column(name)
    with op.batch_alter_table('meeting', schema=None) as batch_op:
        batch_op.drop_constraint('fk_meeting_chair', type_='foreignkey')
        for name in ('chair_id', 'standing_orders', 'agenda_order'):
            batch_op.drop_column(name)
