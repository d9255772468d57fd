"""rule set uploads: who stored a scoring rule set version from the Rounds page

A scoring rule set version may now be uploaded (upload_rule_set, issue 14
item 1) instead of shipped as a file: it is stored in rule_set_version like a
version first used from a file, with the person who uploaded it
(``uploaded_by_id``; NULL for a version stored when a file was first used, and
for schemes of delegation). ``loaded_at`` is when it was stored.

Revision ID: 0027
Revises: 0020
Create Date: 2026-12-05 15:20:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0027'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('rule_set_version', schema=None) as batch_op:
        batch_op.add_column(sa.Column('uploaded_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            'fk_rule_set_version_uploaded_by_id_person', 'person', ['uploaded_by_id'], ['id']
        )


def downgrade() -> None:
    with op.batch_alter_table('rule_set_version', schema=None) as batch_op:
        batch_op.drop_constraint('fk_rule_set_version_uploaded_by_id_person', type_='foreignkey')
        batch_op.drop_column('uploaded_by_id')
