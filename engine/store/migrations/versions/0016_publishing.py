"""publishing: organisation identifiers, papers published, papers deadline

An organisation gains ``org_id`` ('' where not known): the identifier
published as a recipient's id (engine/read/giving360.py). A meeting gains
``papers_published_on`` (the public register shows its papers from then); a
programme gains ``papers_clear_days`` (default 5), the clear working days
before a meeting by which its papers must be published (docs/publishing.md).

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
    with op.batch_alter_table('meeting', schema=None) as batch_op:
        batch_op.add_column(sa.Column('papers_published_on', sa.Date(), nullable=True))
    with op.batch_alter_table('programme', schema=None) as batch_op:
        batch_op.add_column(sa.Column('papers_clear_days', sa.Integer(), nullable=False,
                                      server_default='5'))


def downgrade() -> None:
    with op.batch_alter_table('programme', schema=None) as batch_op:
        batch_op.drop_column('papers_clear_days')
    with op.batch_alter_table('meeting', schema=None) as batch_op:
        batch_op.drop_column('papers_published_on')
    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.drop_column('org_id')
