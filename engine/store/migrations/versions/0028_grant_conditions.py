"""approval with conditions: the conditions a Board decision set, and each
grant's conditions with who discharged them (DOMAIN.md "Outcomes at a meeting")

Revision ID: 0028
Revises: 0020
Create Date: 2026-12-05 15:30:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('decision', schema=None) as batch_op:
        batch_op.add_column(sa.Column('conditions', sa.JSON(), nullable=True))
    op.create_table('grant_condition',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('grant_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('text', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('before_payment', sa.Boolean(), nullable=False),
    sa.Column('source_ref', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('discharged_by_id', sa.Integer(), nullable=True),
    sa.Column('discharged_on', sa.Date(), nullable=True),
    sa.Column('evidence', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['discharged_by_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['grant_id'], ['grant_award.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('grant_id', 'seq')
    )
    with op.batch_alter_table('grant_condition', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grant_condition_grant_id'), ['grant_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('grant_condition', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grant_condition_grant_id'))
    op.drop_table('grant_condition')
    with op.batch_alter_table('decision', schema=None) as batch_op:
        batch_op.drop_column('conditions')
