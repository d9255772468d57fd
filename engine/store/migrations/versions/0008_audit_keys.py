"""audit chain keyed: key id and money per event, the legacy boundary

audit_event gains key_id (the HMAC key its hash was made with; '' for events
written before this migration, which keep their unkeyed sha256) and money (the
movements the command booked, so the ledgers can be re-derived). audit_head
gains legacy_seq and legacy_movement: the last event and movement written
before keying, recorded here at upgrade time (docs/security.md, "Audit trail").

Revision ID: 0008
Revises: 0004
Create Date: 2026-12-05 05:50:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('money', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('key_id', sqlmodel.sql.sqltypes.AutoString(),
                                      nullable=False, server_default=''))
    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.add_column(sa.Column('legacy_seq', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('legacy_movement', sa.Integer(), nullable=False,
                                      server_default='0'))
    op.execute(
        "UPDATE audit_head SET legacy_seq = last_seq, "
        "legacy_movement = (SELECT COALESCE(MAX(id), 0) FROM money_movement)"
    )


def downgrade() -> None:
    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.drop_column('legacy_movement')
        batch_op.drop_column('legacy_seq')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_column('key_id')
        batch_op.drop_column('money')
