"""sweep runs: the deadline sweep worked in chunks (issue 15 item 4)

One row per sweep: where it stands (the grants still to sweep), what its
start decided (the catch-up gate: the outbox mark, why it holds), and the
counts so far, so a sweep stopped part-way is taken up where it stopped
(engine/commands/sweep.py).

Revision ID: 0024
Revises: 0020
Create Date: 2026-12-05 15:20:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0024'
down_revision = '0028'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sweep_run',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('as_of', sa.Date(), nullable=False),
        sa.Column('phase', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('mark', sa.Integer(), nullable=False),
        sa.Column('hold', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('after', sa.Integer(), nullable=False),
        sa.Column('counts', sa.JSON(), nullable=False),
        sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('sweep_run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sweep_run_phase'), ['phase'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('sweep_run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sweep_run_phase'))
    op.drop_table('sweep_run')
