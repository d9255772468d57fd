"""page indexes: what the pages read at 100,000 bids and grants (issue 15 item 2)

My work lists the oldest offer letters awaiting acceptance (a LIMIT along
state, then issue date) and the milestones with evidence to verify or a payment
to release (by state, not by reading every milestone).

Revision ID: 0029
Revises: 0024
Create Date: 2026-12-05 18:30:00
"""
from alembic import op


revision = '0029'
down_revision = '0024'
branch_labels = None
depends_on = None

INDEXES = (
    ('ix_offer_letter_state_issued_on', 'offer_letter', ['state', 'issued_on']),
    ('ix_milestone_state', 'milestone', ['state']),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
