"""money: evidence, grant changes, payment refs, deposits, recoveries, delegation

New NOT NULL columns get a server default so that existing rows are valid;
payment.ref is filled from the id (P-<id>) before it becomes unique and NOT NULL.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 12:18:43.313069
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('grant_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('grant_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('approved_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('approved_on', sa.Date(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('before', sa.JSON(), nullable=False),
    sa.Column('after', sa.JSON(), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['grant_id'], ['grant_award.id'], ),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('grant_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grant_change_grant_id'), ['grant_id'], unique=False)

    op.create_table('evidence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('milestone_id', sa.Integer(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('files', sa.JSON(), nullable=False),
    sa.Column('submitted_by_id', sa.Integer(), nullable=True),
    sa.Column('submitted_on', sa.Date(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('reviewed_by_id', sa.Integer(), nullable=True),
    sa.Column('reviewed_on', sa.Date(), nullable=True),
    sa.Column('review_note', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['milestone_id'], ['milestone.id'], ),
    sa.ForeignKeyConstraint(['reviewed_by_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['submitted_by_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evidence_milestone_id'), ['milestone_id'], unique=False)

    with op.batch_alter_table('delegated_decision', schema=None) as batch_op:
        batch_op.add_column(sa.Column('title', sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('rule_set_version_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('decided_on', sa.Date(), nullable=True))
        batch_op.create_foreign_key('fk_delegated_decision_rule_set_version_id', 'rule_set_version', ['rule_set_version_id'], ['id'])

    with op.batch_alter_table('deposit', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lodged_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default=''))
    op.execute("UPDATE deposit SET lodged_on = target_on WHERE lodged_on IS NULL")
    with op.batch_alter_table('deposit', schema=None) as batch_op:
        batch_op.alter_column('lodged_on', existing_type=sa.Date(), nullable=False)

    with op.batch_alter_table('deposit_share', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refunded_pence', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('forfeited_pence', sa.Integer(), nullable=False, server_default='0'))

    with op.batch_alter_table('grant_award', schema=None) as batch_op:
        batch_op.add_column(sa.Column('closed_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('delegated_decision_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_grant_award_delegated_decision_id', 'delegated_decision', ['delegated_decision_id'], ['id'])

    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('population', sa.Integer(), nullable=True))

    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    op.execute("UPDATE payment SET ref = 'P-' || CAST(id AS VARCHAR) WHERE ref IS NULL")
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.alter_column('ref', existing_type=sqlmodel.sql.sqltypes.AutoString(), nullable=False)
        batch_op.create_unique_constraint('payment_ref_key', ['ref'])

    with op.batch_alter_table('recovery', schema=None) as batch_op:
        batch_op.add_column(sa.Column('authority', sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('recovered_pence', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('written_off_pence', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('written_off_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('closed_on', sa.Date(), nullable=True))

    with op.batch_alter_table('signature', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default=''))



def downgrade() -> None:
    with op.batch_alter_table('signature', schema=None) as batch_op:
        batch_op.drop_column('reason')

    with op.batch_alter_table('recovery', schema=None) as batch_op:
        batch_op.drop_column('closed_on')
        batch_op.drop_column('written_off_by')
        batch_op.drop_column('written_off_pence')
        batch_op.drop_column('recovered_pence')
        batch_op.drop_column('authority')

    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.drop_constraint('payment_ref_key', type_='unique')
        batch_op.drop_column('ref')

    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.drop_column('population')

    with op.batch_alter_table('grant_award', schema=None) as batch_op:
        batch_op.drop_constraint('fk_grant_award_delegated_decision_id', type_='foreignkey')
        batch_op.drop_column('delegated_decision_id')
        batch_op.drop_column('closed_on')

    with op.batch_alter_table('deposit_share', schema=None) as batch_op:
        batch_op.drop_column('forfeited_pence')
        batch_op.drop_column('refunded_pence')

    with op.batch_alter_table('deposit', schema=None) as batch_op:
        batch_op.drop_column('purpose')
        batch_op.drop_column('lodged_on')

    with op.batch_alter_table('delegated_decision', schema=None) as batch_op:
        batch_op.drop_constraint('fk_delegated_decision_rule_set_version_id', type_='foreignkey')
        batch_op.drop_column('decided_on')
        batch_op.drop_column('rule_set_version_id')
        batch_op.drop_column('title')

    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evidence_milestone_id'))

    op.drop_table('evidence')
    with op.batch_alter_table('grant_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grant_change_grant_id'))

    op.drop_table('grant_change')
