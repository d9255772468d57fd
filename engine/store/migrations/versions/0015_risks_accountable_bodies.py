"""risk register, accountable bodies, advance payments (issue 13)

A programme says how risks are scored and above which residual score a risk is
brought to officers and the next meeting, and whether a partnership must name
its accountable body before it is paid; an organisation (a partnership) names
its accountable body; a payment names who received it. New tables: risk,
risk_review, accountable_body_change, advance_payment.

Revision ID: 0015
Revises: 0012
Create Date: 2026-12-05 09:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0015'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('programme', schema=None) as batch_op:
        batch_op.add_column(sa.Column('risk_scoring', sqlmodel.sql.sqltypes.AutoString(),
                                      nullable=False, server_default='score_1_9'))
        batch_op.add_column(sa.Column('risk_threshold', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('accountable_body_required', sa.Boolean(),
                                      nullable=False, server_default=sa.false()))
    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('accountable_body_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_organisation_accountable_body', 'organisation',
                                    ['accountable_body_id'], ['id'])
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paid_to_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_payment_paid_to', 'organisation', ['paid_to_id'], ['id'])

    op.create_table('risk',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('programme_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('grant_id', sa.Integer(), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('inherent_score', sa.Integer(), nullable=False),
    sa.Column('inherent_detail', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('owner_kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=True),
    sa.Column('solution', sa.Text(), nullable=False),
    sa.Column('controls', sa.Text(), nullable=False),
    sa.Column('residual_score', sa.Integer(), nullable=False),
    sa.Column('residual_detail', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('indicators', sa.Text(), nullable=False),
    sa.Column('review_on', sa.Date(), nullable=True),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('recorded_on', sa.Date(), nullable=False),
    sa.Column('closed_on', sa.Date(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['grant_id'], ['grant_award.id'], ),
    sa.ForeignKeyConstraint(['programme_id'], ['programme.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('programme_id', 'number'),
    sa.UniqueConstraint('ref')
    )
    with op.batch_alter_table('risk', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_risk_grant_id'), ['grant_id'], unique=False)

    op.create_table('risk_review',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('risk_id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('reviewed_on', sa.Date(), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('residual_before', sa.Integer(), nullable=False),
    sa.Column('residual_after', sa.Integer(), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('next_review_on', sa.Date(), nullable=True),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['meeting_id'], ['meeting.id'], ),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['risk_id'], ['risk.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('risk_review', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_risk_review_meeting_id'), ['meeting_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_risk_review_risk_id'), ['risk_id'], unique=False)

    op.create_table('accountable_body_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('partnership_id', sa.Integer(), nullable=False),
    sa.Column('body_id', sa.Integer(), nullable=False),
    sa.Column('previous_body_id', sa.Integer(), nullable=True),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('proposed_by_id', sa.Integer(), nullable=True),
    sa.Column('proposed_on', sa.Date(), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_on', sa.Date(), nullable=True),
    sa.Column('decision_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['body_id'], ['organisation.id'], ),
    sa.ForeignKeyConstraint(['decided_by_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['partnership_id'], ['organisation.id'], ),
    sa.ForeignKeyConstraint(['previous_body_id'], ['organisation.id'], ),
    sa.ForeignKeyConstraint(['proposed_by_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ref')
    )
    with op.batch_alter_table('accountable_body_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_accountable_body_change_partnership_id'),
                              ['partnership_id'], unique=False)

    op.create_table('advance_payment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('grant_id', sa.Integer(), nullable=False),
    sa.Column('amount_pence', sa.BigInteger(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('requested_on', sa.Date(), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_on', sa.Date(), nullable=True),
    sa.Column('decision_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('paid_to_id', sa.Integer(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['decided_by_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['grant_id'], ['grant_award.id'], ),
    sa.ForeignKeyConstraint(['paid_to_id'], ['organisation.id'], ),
    sa.ForeignKeyConstraint(['requested_by_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ref')
    )
    with op.batch_alter_table('advance_payment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_advance_payment_grant_id'), ['grant_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('advance_payment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_advance_payment_grant_id'))
    op.drop_table('advance_payment')
    with op.batch_alter_table('accountable_body_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_accountable_body_change_partnership_id'))
    op.drop_table('accountable_body_change')
    with op.batch_alter_table('risk_review', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_risk_review_risk_id'))
        batch_op.drop_index(batch_op.f('ix_risk_review_meeting_id'))
    op.drop_table('risk_review')
    with op.batch_alter_table('risk', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_risk_grant_id'))
    op.drop_table('risk')
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.drop_constraint('fk_payment_paid_to', type_='foreignkey')
        batch_op.drop_column('paid_to_id')
    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.drop_constraint('fk_organisation_accountable_body', type_='foreignkey')
        batch_op.drop_column('accountable_body_id')
    with op.batch_alter_table('programme', schema=None) as batch_op:
        for name in ('accountable_body_required', 'risk_threshold', 'risk_scoring'):
            batch_op.drop_column(name)
