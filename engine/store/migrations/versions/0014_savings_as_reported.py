"""savings as reported: a return's reading and restatements; what a deposit counts

A return records how its savings figure is stated (``reading``: per_period or
to_date; returns recorded before were asked for savings to date, so
'to_date'), the latest restated figure and how many restatements; each
restatement is a row of ``return_restatement`` (the original figure stays on
the return). ``deposit_count`` lists what a deposit's savings target counts:
grants, councils, a partnership (issue 13).

Revision ID: 0014
Revises: 0010
Create Date: 2026-12-05 09:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0014'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('grant_return', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reading', sqlmodel.sql.sqltypes.AutoString(),
                                      nullable=False, server_default='to_date'))
        batch_op.add_column(sa.Column('restated_delivered_pence', sa.BigInteger(),
                                      nullable=True))
        batch_op.add_column(sa.Column('restatements', sa.Integer(), nullable=False,
                                      server_default='0'))
    op.create_table(
        'return_restatement',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('return_id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('previous_pence', sa.BigInteger(), nullable=False),
        sa.Column('delivered_pence', sa.BigInteger(), nullable=False),
        sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('reported_in', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('restated_on', sa.Date(), nullable=False),
        sa.Column('recorded_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['recorded_by_id'], ['person.id']),
        sa.ForeignKeyConstraint(['return_id'], ['grant_return.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('return_id', 'seq'),
    )
    with op.batch_alter_table('return_restatement', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_return_restatement_return_id'), ['return_id'],
                              unique=False)
    op.create_table(
        'deposit_count',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('deposit_id', sa.Integer(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('grant_id', sa.Integer(), nullable=True),
        sa.Column('organisation_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['deposit_id'], ['deposit.id']),
        sa.ForeignKeyConstraint(['grant_id'], ['grant_award.id']),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('deposit_count', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deposit_count_deposit_id'), ['deposit_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('deposit_count', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deposit_count_deposit_id'))
    op.drop_table('deposit_count')
    with op.batch_alter_table('return_restatement', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_return_restatement_return_id'))
    op.drop_table('return_restatement')
    with op.batch_alter_table('grant_return', schema=None) as batch_op:
        for name in ('restatements', 'restated_delivered_pence', 'reading'):
            batch_op.drop_column(name)
