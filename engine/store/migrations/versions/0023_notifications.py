"""in-app notifications: one row per person and message (issue 14, "Tell people")

Written with the outbox row of the same message, in the same transaction
(engine/store/notices.py); read and marked read on /notifications.

Revision ID: 0023
Revises: 0011
Create Date: 2026-12-05 12:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0023'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'notification',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('what', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('item_ref', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('link', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('read_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['person_id'], ['person.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key'),
    )
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notification_person_id'), ['person_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notification_person_id'))
    op.drop_table('notification')
