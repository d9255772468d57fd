"""idempotency keys scoped to the caller and the command

``command_log`` was keyed by the key alone: anyone sending a used key got its
stored result (issue 11). It becomes (actor, command, key), with the request's
fingerprint, a running/done status, a lease and an expiry
(engine/store/idempotency.py, docs/security.md "Idempotency"). Rows logged
before are kept for the caller who made them (``actor`` was their email) as
done, with an empty fingerprint (not compared: the key replays its result to
that caller only) and expire 24 hours after the upgrade.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 06:00:00
"""
import datetime as dt
import json

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    old = conn.execute(sa.text(
        "SELECT c.key, c.command, c.actor, c.result, c.at, p.id "
        "FROM command_log c LEFT JOIN person p ON lower(p.email) = lower(c.actor)"
    )).fetchall()
    op.drop_table('command_log')
    table = op.create_table('command_log',
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('command', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('request_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('field_hashes', sa.JSON(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('token', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('lease_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('actor', 'command', 'key')
    )
    with op.batch_alter_table('command_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_command_log_expires_at'), ['expires_at'], unique=False)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    rows = []
    for key, command, actor, result, at, person_id in old:
        scope = f"person:{person_id}" if person_id is not None else f"actor:{actor.strip().lower()}"
        rows.append({
            'actor': scope, 'command': command, 'key': key, 'request_hash': '',
            'field_hashes': {}, 'status': 'done', 'token': 'before-0005',
            'lease_until': now, 'result': _json(result), 'at': _when(at, now),
            'expires_at': now + dt.timedelta(hours=24),
        })
    if rows and table is not None:
        op.bulk_insert(table, rows)


def _json(value: object) -> dict:
    # read through sa.text: SQLite gives the JSON column's text
    if isinstance(value, str | bytes):
        value = json.loads(value)
    return value if isinstance(value, dict) else {}


def _when(value: object, now: dt.datetime) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        return now
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def downgrade() -> None:
    with op.batch_alter_table('command_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_command_log_expires_at'))
    op.drop_table('command_log')
    op.create_table('command_log',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('command', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
