"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 11:56:40.091688
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_event',
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('command', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('item_ref', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('before', sa.Text(), nullable=False),
    sa.Column('after', sa.Text(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('prev_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_event_item_ref'), ['item_ref'], unique=False)

    op.create_table('audit_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('last_seq', sa.Integer(), nullable=False),
    sa.Column('last_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('directory_seq', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('command_log',
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('command', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('organisation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('aliases', sa.JSON(), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_organisation_name'), ['name'], unique=True)

    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('to_addr', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('template', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('context', sa.JSON(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('sent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_status'), ['status'], unique=False)

    op.create_table('programme',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=True),
    sa.Column('ends_on', sa.Date(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('rule_set_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('version', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('loaded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name', 'version')
    )
    op.create_table('meeting',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('programme_id', sa.Integer(), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('held_on', sa.Date(), nullable=False),
    sa.Column('quorum', sa.Integer(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('agenda', sa.JSON(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['programme_id'], ['programme.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ref')
    )
    op.create_table('person',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=True),
    sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_person_email'), ['email'], unique=True)

    op.create_table('pot',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('programme_id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['programme_id'], ['programme.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('programme_id', 'name')
    )
    with op.batch_alter_table('pot', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pot_programme_id'), ['programme_id'], unique=False)

    op.create_table('action',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('what', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['meeting_id'], ['meeting.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('meeting_id', 'number')
    )
    with op.batch_alter_table('action', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_action_meeting_id'), ['meeting_id'], unique=False)

    op.create_table('interest',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('item_ref', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=True),
    sa.Column('nature', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('declared_on', sa.Date(), nullable=False),
    sa.ForeignKeyConstraint(['meeting_id'], ['meeting.id'], ),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('interest', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_interest_item_ref'), ['item_ref'], unique=False)
        batch_op.create_index(batch_op.f('ix_interest_person_id'), ['person_id'], unique=False)

    op.create_table('meeting_member',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('present', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['meeting_id'], ['meeting.id'], ),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('meeting_id', 'person_id')
    )
    with op.batch_alter_table('meeting_member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meeting_member_meeting_id'), ['meeting_id'], unique=False)

    op.create_table('person_role',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('person_id', 'role')
    )
    with op.batch_alter_table('person_role', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_person_role_person_id'), ['person_id'], unique=False)

    op.create_table('programme_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('programme_id', sa.Integer(), nullable=False),
    sa.Column('ratified_on', sa.Date(), nullable=False),
    sa.Column('ratified_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('old_total_pence', sa.Integer(), nullable=False),
    sa.Column('new_total_pence', sa.Integer(), nullable=False),
    sa.Column('changes', sa.JSON(), nullable=False),
    sa.Column('recorded_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['programme_id'], ['programme.id'], ),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ref')
    )
    with op.batch_alter_table('programme_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_programme_change_programme_id'), ['programme_id'], unique=False)

    op.create_table('round',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('programme_id', sa.Integer(), nullable=False),
    sa.Column('pot_id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('opens_on', sa.Date(), nullable=False),
    sa.Column('closes_on', sa.Date(), nullable=False),
    sa.Column('rule_set', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('cap_pence', sa.Integer(), nullable=True),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['pot_id'], ['pot.id'], ),
    sa.ForeignKeyConstraint(['programme_id'], ['programme.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ref')
    )
    op.create_table('bid',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('title', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('sponsor_id', sa.Integer(), nullable=False),
    sa.Column('pot_id', sa.Integer(), nullable=True),
    sa.Column('round_id', sa.Integer(), nullable=True),
    sa.Column('grant_requested_pence', sa.Integer(), nullable=False),
    sa.Column('savings_text', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('savings_basis', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('savings_amount_pence', sa.Integer(), nullable=True),
    sa.Column('savings_high_pence', sa.Integer(), nullable=True),
    sa.Column('savings_years', sa.Integer(), nullable=True),
    sa.Column('savings_annual', sa.Boolean(), nullable=False),
    sa.Column('savings_readable', sa.Boolean(), nullable=False),
    sa.Column('partnership', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('partnership_as_written', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('builds_on_proven', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('invest_to_save', sa.Boolean(), nullable=False),
    sa.Column('published_points', sa.Integer(), nullable=True),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('submitted_on', sa.Date(), nullable=False),
    sa.Column('submitted_by_id', sa.Integer(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['pot_id'], ['pot.id'], ),
    sa.ForeignKeyConstraint(['round_id'], ['round.id'], ),
    sa.ForeignKeyConstraint(['sponsor_id'], ['organisation.id'], ),
    sa.ForeignKeyConstraint(['submitted_by_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('bid', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bid_ref'), ['ref'], unique=True)
        batch_op.create_index(batch_op.f('ix_bid_round_id'), ['round_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_bid_sponsor_id'), ['sponsor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_bid_state'), ['state'], unique=False)

    op.create_table('bid_partner',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bid_id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['bid_id'], ['bid.id'], ),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('bid_id', 'organisation_id')
    )
    op.create_table('delegated_decision',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('bid_id', sa.Integer(), nullable=True),
    sa.Column('pot_id', sa.Integer(), nullable=False),
    sa.Column('amount_pence', sa.Integer(), nullable=False),
    sa.Column('pot_balance_pence', sa.Integer(), nullable=False),
    sa.Column('reasons', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('alternatives', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=False),
    sa.Column('requested_on', sa.Date(), nullable=False),
    sa.Column('expires_on', sa.Date(), nullable=True),
    sa.Column('reported_meeting_id', sa.Integer(), nullable=True),
    sa.Column('endorsed_on', sa.Date(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['bid_id'], ['bid.id'], ),
    sa.ForeignKeyConstraint(['pot_id'], ['pot.id'], ),
    sa.ForeignKeyConstraint(['reported_meeting_id'], ['meeting.id'], ),
    sa.ForeignKeyConstraint(['requested_by_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ref')
    )
    op.create_table('grant_award',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('bid_id', sa.Integer(), nullable=False),
    sa.Column('accountable_body_id', sa.Integer(), nullable=False),
    sa.Column('pot_id', sa.Integer(), nullable=False),
    sa.Column('awarded_pence', sa.Integer(), nullable=False),
    sa.Column('invest_to_save', sa.Boolean(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('approved_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['accountable_body_id'], ['organisation.id'], ),
    sa.ForeignKeyConstraint(['bid_id'], ['bid.id'], ),
    sa.ForeignKeyConstraint(['pot_id'], ['pot.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('bid_id'),
    sa.UniqueConstraint('ref')
    )
    with op.batch_alter_table('grant_award', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grant_award_accountable_body_id'), ['accountable_body_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_grant_award_pot_id'), ['pot_id'], unique=False)

    op.create_table('score',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bid_id', sa.Integer(), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=True),
    sa.Column('rule_set_version_id', sa.Integer(), nullable=False),
    sa.Column('total_points', sa.Integer(), nullable=False),
    sa.Column('rules_total_points', sa.Integer(), nullable=False),
    sa.Column('max_points', sa.Integer(), nullable=False),
    sa.Column('recommendation', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('recommendation_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('missing', sa.JSON(), nullable=False),
    sa.Column('scored_on', sa.Date(), nullable=False),
    sa.Column('current', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['bid_id'], ['bid.id'], ),
    sa.ForeignKeyConstraint(['round_id'], ['round.id'], ),
    sa.ForeignKeyConstraint(['rule_set_version_id'], ['rule_set_version.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('score', schema=None) as batch_op:
        batch_op.create_index('ix_score_current', ['bid_id', 'current'], unique=False)

    op.create_table('criterion_score',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('score_id', sa.Integer(), nullable=False),
    sa.Column('criterion', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('question', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('max_points', sa.Integer(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('override_points', sa.Integer(), nullable=True),
    sa.Column('override_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('override_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['override_by_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['score_id'], ['score.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('criterion_score', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_criterion_score_score_id'), ['score_id'], unique=False)

    op.create_table('decision',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('item_ref', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=True),
    sa.Column('delegated_decision_id', sa.Integer(), nullable=True),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('amount_pence', sa.Integer(), nullable=True),
    sa.Column('reasons', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('missing', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('state_before', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('votes_for', sa.Integer(), nullable=True),
    sa.Column('votes_against', sa.Integer(), nullable=True),
    sa.Column('votes_abstain', sa.Integer(), nullable=True),
    sa.Column('decided_on', sa.Date(), nullable=False),
    sa.Column('reverses_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['delegated_decision_id'], ['delegated_decision.id'], ),
    sa.ForeignKeyConstraint(['meeting_id'], ['meeting.id'], ),
    sa.ForeignKeyConstraint(['reverses_id'], ['decision.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ref')
    )
    with op.batch_alter_table('decision', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_decision_item_ref'), ['item_ref'], unique=False)

    op.create_table('deposit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('grant_id', sa.Integer(), nullable=True),
    sa.Column('pot_id', sa.Integer(), nullable=False),
    sa.Column('total_pence', sa.Integer(), nullable=False),
    sa.Column('basis', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('target_pence', sa.Integer(), nullable=False),
    sa.Column('target_on', sa.Date(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('settled_on', sa.Date(), nullable=True),
    sa.Column('settlement', sa.JSON(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['grant_id'], ['grant_award.id'], ),
    sa.ForeignKeyConstraint(['pot_id'], ['pot.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ref')
    )
    op.create_table('grant_return',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('grant_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('submitted_on', sa.Date(), nullable=True),
    sa.Column('savings_delivered_pence', sa.Integer(), nullable=True),
    sa.Column('savings_anticipated_pence', sa.Integer(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['grant_id'], ['grant_award.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('grant_id', 'kind', 'period_end'),
    sa.UniqueConstraint('ref')
    )
    with op.batch_alter_table('grant_return', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_grant_return_grant_id'), ['grant_id'], unique=False)
        batch_op.create_index('ix_return_open_due', ['state', 'due_on'], unique=False)

    op.create_table('milestone',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bid_id', sa.Integer(), nullable=False),
    sa.Column('grant_id', sa.Integer(), nullable=True),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('payment_pence', sa.Integer(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('verified_by_id', sa.Integer(), nullable=True),
    sa.Column('verified_on', sa.Date(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['bid_id'], ['bid.id'], ),
    sa.ForeignKeyConstraint(['grant_id'], ['grant_award.id'], ),
    sa.ForeignKeyConstraint(['verified_by_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('bid_id', 'seq')
    )
    with op.batch_alter_table('milestone', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_milestone_grant_id'), ['grant_id'], unique=False)

    op.create_table('money_movement',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pot_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('amount_pence', sa.Integer(), nullable=False),
    sa.Column('booked_on', sa.Date(), nullable=False),
    sa.Column('item_ref', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('grant_id', sa.Integer(), nullable=True),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['grant_id'], ['grant_award.id'], ),
    sa.ForeignKeyConstraint(['pot_id'], ['pot.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('money_movement', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_money_movement_grant_id'), ['grant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_money_movement_item_ref'), ['item_ref'], unique=False)
        batch_op.create_index(batch_op.f('ix_money_movement_pot_id'), ['pot_id'], unique=False)

    op.create_table('recovery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('grant_id', sa.Integer(), nullable=False),
    sa.Column('demanded_pence', sa.Integer(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('demanded_on', sa.Date(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['grant_id'], ['grant_award.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ref')
    )
    with op.batch_alter_table('recovery', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recovery_grant_id'), ['grant_id'], unique=False)

    op.create_table('repayment_instalment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('grant_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('amount_pence', sa.Integer(), nullable=False),
    sa.Column('repaid_pence', sa.Integer(), nullable=False),
    sa.Column('repaid_on', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['grant_id'], ['grant_award.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('grant_id', 'seq')
    )
    with op.batch_alter_table('repayment_instalment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_repayment_instalment_grant_id'), ['grant_id'], unique=False)

    op.create_table('signature',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('delegated_decision_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('decision', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('interest_declared', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('signed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['delegated_decision_id'], ['delegated_decision.id'], ),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('delegated_decision_id', 'person_id')
    )
    with op.batch_alter_table('signature', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signature_delegated_decision_id'), ['delegated_decision_id'], unique=False)

    op.create_table('deposit_share',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('deposit_id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('amount_pence', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['deposit_id'], ['deposit.id'], ),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisation.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('deposit_id', 'organisation_id')
    )
    with op.batch_alter_table('deposit_share', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deposit_share_deposit_id'), ['deposit_id'], unique=False)

    op.create_table('payment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('grant_id', sa.Integer(), nullable=False),
    sa.Column('milestone_id', sa.Integer(), nullable=False),
    sa.Column('amount_pence', sa.Integer(), nullable=False),
    sa.Column('released_by_id', sa.Integer(), nullable=False),
    sa.Column('released_on', sa.Date(), nullable=False),
    sa.ForeignKeyConstraint(['grant_id'], ['grant_award.id'], ),
    sa.ForeignKeyConstraint(['milestone_id'], ['milestone.id'], ),
    sa.ForeignKeyConstraint(['released_by_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_grant_id'), ['grant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_milestone_id'), ['milestone_id'], unique=False)

    # the audit chain's tip: one row, locked while appending (engine/store/audit.py)
    op.bulk_insert(
        sa.table("audit_head", sa.column("id", sa.Integer), sa.column("last_seq", sa.Integer),
                 sa.column("last_hash", sa.String), sa.column("directory_seq", sa.Integer)),
        [{"id": 1, "last_seq": 0, "last_hash": "", "directory_seq": 0}],
    )


def downgrade() -> None:
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_milestone_id'))
        batch_op.drop_index(batch_op.f('ix_payment_grant_id'))

    op.drop_table('payment')
    with op.batch_alter_table('deposit_share', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deposit_share_deposit_id'))

    op.drop_table('deposit_share')
    with op.batch_alter_table('signature', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signature_delegated_decision_id'))

    op.drop_table('signature')
    with op.batch_alter_table('repayment_instalment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_repayment_instalment_grant_id'))

    op.drop_table('repayment_instalment')
    with op.batch_alter_table('recovery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recovery_grant_id'))

    op.drop_table('recovery')
    with op.batch_alter_table('money_movement', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_money_movement_pot_id'))
        batch_op.drop_index(batch_op.f('ix_money_movement_item_ref'))
        batch_op.drop_index(batch_op.f('ix_money_movement_grant_id'))

    op.drop_table('money_movement')
    with op.batch_alter_table('milestone', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_milestone_grant_id'))

    op.drop_table('milestone')
    with op.batch_alter_table('grant_return', schema=None) as batch_op:
        batch_op.drop_index('ix_return_open_due')
        batch_op.drop_index(batch_op.f('ix_grant_return_grant_id'))

    op.drop_table('grant_return')
    op.drop_table('deposit')
    with op.batch_alter_table('decision', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_decision_item_ref'))

    op.drop_table('decision')
    with op.batch_alter_table('criterion_score', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_criterion_score_score_id'))

    op.drop_table('criterion_score')
    with op.batch_alter_table('score', schema=None) as batch_op:
        batch_op.drop_index('ix_score_current')

    op.drop_table('score')
    with op.batch_alter_table('grant_award', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_grant_award_pot_id'))
        batch_op.drop_index(batch_op.f('ix_grant_award_accountable_body_id'))

    op.drop_table('grant_award')
    op.drop_table('delegated_decision')
    op.drop_table('bid_partner')
    with op.batch_alter_table('bid', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bid_state'))
        batch_op.drop_index(batch_op.f('ix_bid_sponsor_id'))
        batch_op.drop_index(batch_op.f('ix_bid_round_id'))
        batch_op.drop_index(batch_op.f('ix_bid_ref'))

    op.drop_table('bid')
    op.drop_table('round')
    with op.batch_alter_table('programme_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_programme_change_programme_id'))

    op.drop_table('programme_change')
    with op.batch_alter_table('person_role', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_person_role_person_id'))

    op.drop_table('person_role')
    with op.batch_alter_table('meeting_member', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_meeting_member_meeting_id'))

    op.drop_table('meeting_member')
    with op.batch_alter_table('interest', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_interest_person_id'))
        batch_op.drop_index(batch_op.f('ix_interest_item_ref'))

    op.drop_table('interest')
    with op.batch_alter_table('action', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_action_meeting_id'))

    op.drop_table('action')
    with op.batch_alter_table('pot', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pot_programme_id'))

    op.drop_table('pot')
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_person_email'))

    op.drop_table('person')
    op.drop_table('meeting')
    op.drop_table('rule_set_version')
    op.drop_table('programme')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_status'))

    op.drop_table('outbox')
    with op.batch_alter_table('organisation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_organisation_name'))

    op.drop_table('organisation')
    op.drop_table('command_log')
    op.drop_table('audit_head')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_event_item_ref'))

    op.drop_table('audit_event')
