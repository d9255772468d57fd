"""offer letters (issue 16): a grant's offer letters and their acceptance

New table ``offer_letter``; a programme gains ``offer_acceptance_required``
(no payment before the recipient accepts the offer) and ``offer_template``
(the letter's template, '' for the default). A new programme requires
acceptance; existing programmes keep paying: the column is added false for
them (their grants were made before letters existed; a director turns it on
with configure_payments after issuing and agreeing their offers), then its
default becomes true for programmes created from now on.

Revision ID: 0019
Revises: 0011
Create Date: 2026-12-05 12:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0019'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('programme', schema=None) as batch_op:
        batch_op.add_column(sa.Column('offer_acceptance_required', sa.Boolean(),
                                      nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('offer_template', sqlmodel.sql.sqltypes.AutoString(),
                                      nullable=False, server_default=''))
    with op.batch_alter_table('programme', schema=None) as batch_op:
        batch_op.alter_column('offer_acceptance_required', existing_type=sa.Boolean(),
                              existing_nullable=False, server_default=sa.true())
    op.create_table('offer_letter',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ref', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('grant_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('version_no', sa.Integer(), nullable=False),
    sa.Column('recipient_id', sa.Integer(), nullable=False),
    sa.Column('milestones', sa.JSON(), nullable=False),
    sa.Column('template', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=False),
    sa.Column('html', sa.Text(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('answered_by_id', sa.Integer(), nullable=True),
    sa.Column('answered_on', sa.Date(), nullable=True),
    sa.Column('answered_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('declined_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('superseded_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['answered_by_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['grant_id'], ['grant_award.id'], ),
    sa.ForeignKeyConstraint(['recipient_id'], ['organisation.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('grant_id', 'version_no'),
    sa.UniqueConstraint('ref')
    )
    with op.batch_alter_table('offer_letter', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_offer_letter_grant_id'), ['grant_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('offer_letter', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_offer_letter_grant_id'))
    op.drop_table('offer_letter')
    with op.batch_alter_table('programme', schema=None) as batch_op:
        batch_op.drop_column('offer_template')
        batch_op.drop_column('offer_acceptance_required')
