"""monitoring returns with substance: progress lines, spend, issues, risks, review

A return records spend to date, issues, risks, its overall status (the worst of
its progress lines), how many versions were sent in and how many times it was
sent back, and the officer's review (outcome, conditions or what is missing,
when); each progress line is a row of ``return_progress`` per version. A
programme may refuse payments while a grant has a return overdue or needing
revision (issue 13 item 6).

Revision ID: 0017
Revises: 0011
Create Date: 2026-12-05 12:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0017'
down_revision = '0023'
branch_labels = None
depends_on = None

_TEXT = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    with op.batch_alter_table('grant_return', schema=None) as batch_op:
        batch_op.add_column(sa.Column('spend_to_date_pence', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('issues', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('risks', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('rag', _TEXT(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('submissions', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('revisions', sa.Integer(), nullable=False,
                                      server_default='0'))
        batch_op.add_column(sa.Column('review_outcome', _TEXT(), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('review_note', sa.Text(), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('reviewed_on', sa.Date(), nullable=True))
    with op.batch_alter_table('programme', schema=None) as batch_op:
        batch_op.add_column(sa.Column('no_payment_while_returns_late', sa.Boolean(),
                                      nullable=False, server_default=sa.false()))
    op.create_table(
        'return_progress',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('return_id', sa.Integer(), nullable=False),
        sa.Column('submission', sa.Integer(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('line', _TEXT(), nullable=False),
        sa.Column('rag', _TEXT(), nullable=False),
        sa.Column('narrative', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['return_id'], ['grant_return.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('return_id', 'submission', 'seq'),
    )
    with op.batch_alter_table('return_progress', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_return_progress_return_id'), ['return_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('return_progress', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_return_progress_return_id'))
    op.drop_table('return_progress')
    with op.batch_alter_table('programme', schema=None) as batch_op:
        batch_op.drop_column('no_payment_while_returns_late')
    with op.batch_alter_table('grant_return', schema=None) as batch_op:
        for name in ('reviewed_on', 'review_note', 'review_outcome', 'revisions',
                     'submissions', 'rag', 'risks', 'issues', 'spend_to_date_pence'):
            batch_op.drop_column(name)
