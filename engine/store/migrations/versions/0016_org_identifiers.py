"""organisation identifiers (org-id.guide) for 360Giving publishing

An organisation gains ``org_id`` ('' where not known): the identifier
published as a recipient's id (engine/read/giving360.py, docs/publishing.md).

Revision ID: 0016
Revises: 0009
Create Date: 2026-12-05 09:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0016'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('org_id', sqlmodel.sql.sqltypes.AutoString(),
                                      nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.drop_column('org_id')
