"""a delegated approval with conditions: the conditions an officer's request asks
the approval to carry, copied to the grant when the Chair and Vice Chairs approve

Revision ID: 0032
Revises: 0030
Create Date: 2026-12-05 18:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0032'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('delegated_decision', schema=None) as batch_op:
        batch_op.add_column(sa.Column('conditions', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('delegated_decision', schema=None) as batch_op:
        batch_op.drop_column('conditions')
