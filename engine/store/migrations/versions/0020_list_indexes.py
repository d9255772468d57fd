"""list indexes: the sorts and filters the paged lists use (issue 15 item 2)

Every list (bids, grants, returns, delegated decisions) is paged, sorted and
filtered in SQL (engine/read/listing.py); these indexes serve the default
orders and the common filters so a page reads an index range instead of
sorting the table: bids by submission date, grants by state and approval
date, returns by due date, delegated decisions by state and request date.

Revision ID: 0020
Revises: 0011
Create Date: 2026-12-05 12:00:00
"""
from alembic import op


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

INDEXES = (
    ('ix_bid_submitted_on', 'bid', 'submitted_on'),
    ('ix_grant_award_state', 'grant_award', 'state'),
    ('ix_grant_award_approved_on', 'grant_award', 'approved_on'),
    ('ix_grant_return_due_on', 'grant_return', 'due_on'),
    ('ix_delegated_decision_state', 'delegated_decision', 'state'),
    ('ix_delegated_decision_requested_on', 'delegated_decision', 'requested_on'),
)


def upgrade() -> None:
    for name, table, column in INDEXES:
        op.create_index(name, table, [column], unique=False)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
