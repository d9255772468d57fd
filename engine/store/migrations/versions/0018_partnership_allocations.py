"""partnership allocations and savings targets (issue 13 item 4)

A pot may be a partnership allocation: ``pot.owner_partnership_id`` names the
sub-regional partnership whose budget it is (none: a regional pot). New table
``savings_target``: the savings a grant's invest-to-save case or a programme is
to deliver, set by ``set_savings_target``.

Revision ID: 0018
Revises: 0011
Create Date: 2026-12-05 12:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0018'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('pot', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_partnership_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_pot_owner_partnership', 'organisation',
                                    ['owner_partnership_id'], ['id'])
    op.create_table('savings_target',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('grant_id', sa.Integer(), nullable=True),
    sa.Column('programme_id', sa.Integer(), nullable=True),
    sa.Column('target_pence', sa.BigInteger(), nullable=False),
    sa.Column('target_on', sa.Date(), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('set_on', sa.Date(), nullable=False),
    sa.Column('set_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['grant_id'], ['grant_award.id'], ),
    sa.ForeignKeyConstraint(['programme_id'], ['programme.id'], ),
    sa.ForeignKeyConstraint(['set_by_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('grant_id'),
    sa.UniqueConstraint('programme_id')
    )


def downgrade() -> None:
    op.drop_table('savings_target')
    with op.batch_alter_table('pot', schema=None) as batch_op:
        batch_op.drop_constraint('fk_pot_owner_partnership', type_='foreignkey')
        batch_op.drop_column('owner_partnership_id')
