"""search indexes: a list's ?q= answered from an index, not a scan (issue 15 item 2)

SQLite: a contentless FTS5 trigram table per searched table holding lower() of
its searched columns, kept in step by triggers; PostgreSQL: pg_trgm GIN indexes
on lower(column) (skipped, with a warning, if the extension cannot be created).
engine/store/search.py says why and how; the tables and columns are frozen here.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-05 23:45:00
"""
from alembic import op

from engine.store import search


revision = '0033'
down_revision = '0032'
branch_labels = None
depends_on = None

SEARCHED = {
    "bid": ("id", ("ref", "title")),
    "organisation": ("id", ("name",)),
    "grant_award": ("id", ("ref",)),
    "grant_return": ("id", ("ref",)),
    "delegated_decision": ("id", ("ref", "title")),
    "action": ("id", ("what", "owner")),
    "meeting": ("id", ("ref",)),
    "audit_event": ("seq", ("item_ref", "actor", "command", "reason")),
}


def upgrade() -> None:
    search.install(op.get_bind(), SEARCHED)


def downgrade() -> None:
    search.uninstall(op.get_bind(), SEARCHED)
