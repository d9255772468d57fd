"""delegation schemes: a request's route, a programme's adopted scheme

A delegated decision records which route of its scheme it was requested
under ('' for a scheme of the first form, with one route); a programme may
adopt a scheme of delegation of its own (adopt_scheme), stored as a
rule_set_version like every scheme used (rules/delegation.py, issue 12).

Revision ID: 0011
Revises: 0014
Create Date: 2026-12-05 09:00:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0011'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('delegated_decision', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scheme_route', sqlmodel.sql.sqltypes.AutoString(),
                                      nullable=False, server_default=''))
    with op.batch_alter_table('programme', schema=None) as batch_op:
        batch_op.add_column(sa.Column('delegation_scheme_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_programme_delegation_scheme', 'rule_set_version',
                                    ['delegation_scheme_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('programme', schema=None) as batch_op:
        batch_op.drop_constraint('fk_programme_delegation_scheme', type_='foreignkey')
        batch_op.drop_column('delegation_scheme_id')
    with op.batch_alter_table('delegated_decision', schema=None) as batch_op:
        batch_op.drop_column('scheme_route')
