"""money columns 64-bit

PostgreSQL's INTEGER stops at 2,147,483,647 pence (£21.4m): every *_pence column
becomes BIGINT. (SQLite integers are 64-bit already; batch mode rebuilds the tables.)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 13:39:50.717468
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('bid', schema=None) as batch_op:
        batch_op.alter_column('grant_requested_pence',
               existing_type=sa.INTEGER(),
               type_=sa.BigInteger(),
               existing_nullable=False)
        batch_op.alter_column('savings_amount_pence',
               existing_type=sa.INTEGER(),
               type_=sa.BigInteger(),
               existing_nullable=True)
        batch_op.alter_column('savings_high_pence',
               existing_type=sa.INTEGER(),
               type_=sa.BigInteger(),
               existing_nullable=True)

    with op.batch_alter_table('decision', schema=None) as batch_op:
        batch_op.alter_column('amount_pence',
               existing_type=sa.INTEGER(),
               type_=sa.BigInteger(),
               existing_nullable=True)

    with op.batch_alter_table('delegated_decision', schema=None) as batch_op:
        batch_op.alter_column('amount_pence',
               existing_type=sa.INTEGER(),
               type_=sa.BigInteger(),
               existing_nullable=False)
        batch_op.alter_column('pot_balance_pence',
               existing_type=sa.INTEGER(),
               type_=sa.BigInteger(),
               existing_nullable=False)

    with op.batch_alter_table('deposit', schema=None) as batch_op:
        batch_op.alter_column('total_pence',
               existing_type=sa.INTEGER(),
               type_=sa.BigInteger(),
               existing_nullable=False)
        batch_op.alter_column('target_pence',
               existing_type=sa.INTEGER(),
               type_=sa.BigInteger(),
               existing_nullable=False)

    with op.batch_alter_table('deposit_share', schema=None) as batch_op:
        batch_op.alter_column('amount_pence',
               existing_type=sa.INTEGER(),
               type_=sa.BigInteger(),
               existing_nullable=False)
        batch_op.alter_column('refunded_pence',
               existing_type=sa.INTEGER(),
               type_=sa.BigInteger(),
               existing_nullable=False,
               existing_server_default=sa.text("'0'"))
        batch_op.alter_column('forfeited_pence',
               existing_type=sa.INTEGER(),
               type_=sa.BigInteger(),
               existing_nullable=False,
               existing_server_default=sa.text("'0'"))

    with op.batch_alter_table('grant_award', schema=None) as batch_op:
        batch_op.alter_column('awarded_pence',
               existing_type=sa.INTEGER(),
               type_=sa.BigInteger(),
               existing_nullable=False)

    with op.batch_alter_table('grant_return', schema=None) as batch_op:
        batch_op.alter_column('savings_delivered_pence',
               existing_type=sa.INTEGER(),
               type_=sa.BigInteger(),
               existing_nullable=True)
        batch_op.alter_column('savings_anticipated_pence',
               existing_type=sa.INTEGER(),
               type_=sa.BigInteger(),
               existing_nullable=True)

    with op.batch_alter_table('milestone', schema=None) as batch_op:
        batch_op.alter_column('payment_pence',
               existing_type=sa.INTEGER(),
               type_=sa.BigInteger(),
               existing_nullable=False)

    with op.batch_alter_table('money_movement', schema=None) as batch_op:
        batch_op.alter_column('amount_pence',
               existing_type=sa.INTEGER(),
               type_=sa.BigInteger(),
               existing_nullable=False)

    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.alter_column('amount_pence',
               existing_type=sa.INTEGER(),
               type_=sa.BigInteger(),
               existing_nullable=False)

    with op.batch_alter_table('programme_change', schema=None) as batch_op:
        batch_op.alter_column('old_total_pence',
               existing_type=sa.INTEGER(),
               type_=sa.BigInteger(),
               existing_nullable=False)
        batch_op.alter_column('new_total_pence',
               existing_type=sa.INTEGER(),
               type_=sa.BigInteger(),
               existing_nullable=False)

    with op.batch_alter_table('recovery', schema=None) as batch_op:
        batch_op.alter_column('demanded_pence',
               existing_type=sa.INTEGER(),
               type_=sa.BigInteger(),
               existing_nullable=False)
        batch_op.alter_column('recovered_pence',
               existing_type=sa.INTEGER(),
               type_=sa.BigInteger(),
               existing_nullable=False,
               existing_server_default=sa.text("'0'"))
        batch_op.alter_column('written_off_pence',
               existing_type=sa.INTEGER(),
               type_=sa.BigInteger(),
               existing_nullable=False,
               existing_server_default=sa.text("'0'"))

    with op.batch_alter_table('repayment_instalment', schema=None) as batch_op:
        batch_op.alter_column('amount_pence',
               existing_type=sa.INTEGER(),
               type_=sa.BigInteger(),
               existing_nullable=False)
        batch_op.alter_column('repaid_pence',
               existing_type=sa.INTEGER(),
               type_=sa.BigInteger(),
               existing_nullable=False)

    with op.batch_alter_table('round', schema=None) as batch_op:
        batch_op.alter_column('cap_pence',
               existing_type=sa.INTEGER(),
               type_=sa.BigInteger(),
               existing_nullable=True)



def downgrade() -> None:
    with op.batch_alter_table('round', schema=None) as batch_op:
        batch_op.alter_column('cap_pence',
               existing_type=sa.BigInteger(),
               type_=sa.INTEGER(),
               existing_nullable=True)

    with op.batch_alter_table('repayment_instalment', schema=None) as batch_op:
        batch_op.alter_column('repaid_pence',
               existing_type=sa.BigInteger(),
               type_=sa.INTEGER(),
               existing_nullable=False)
        batch_op.alter_column('amount_pence',
               existing_type=sa.BigInteger(),
               type_=sa.INTEGER(),
               existing_nullable=False)

    with op.batch_alter_table('recovery', schema=None) as batch_op:
        batch_op.alter_column('written_off_pence',
               existing_type=sa.BigInteger(),
               type_=sa.INTEGER(),
               existing_nullable=False,
               existing_server_default=sa.text("'0'"))
        batch_op.alter_column('recovered_pence',
               existing_type=sa.BigInteger(),
               type_=sa.INTEGER(),
               existing_nullable=False,
               existing_server_default=sa.text("'0'"))
        batch_op.alter_column('demanded_pence',
               existing_type=sa.BigInteger(),
               type_=sa.INTEGER(),
               existing_nullable=False)

    with op.batch_alter_table('programme_change', schema=None) as batch_op:
        batch_op.alter_column('new_total_pence',
               existing_type=sa.BigInteger(),
               type_=sa.INTEGER(),
               existing_nullable=False)
        batch_op.alter_column('old_total_pence',
               existing_type=sa.BigInteger(),
               type_=sa.INTEGER(),
               existing_nullable=False)

    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.alter_column('amount_pence',
               existing_type=sa.BigInteger(),
               type_=sa.INTEGER(),
               existing_nullable=False)

    with op.batch_alter_table('money_movement', schema=None) as batch_op:
        batch_op.alter_column('amount_pence',
               existing_type=sa.BigInteger(),
               type_=sa.INTEGER(),
               existing_nullable=False)

    with op.batch_alter_table('milestone', schema=None) as batch_op:
        batch_op.alter_column('payment_pence',
               existing_type=sa.BigInteger(),
               type_=sa.INTEGER(),
               existing_nullable=False)

    with op.batch_alter_table('grant_return', schema=None) as batch_op:
        batch_op.alter_column('savings_anticipated_pence',
               existing_type=sa.BigInteger(),
               type_=sa.INTEGER(),
               existing_nullable=True)
        batch_op.alter_column('savings_delivered_pence',
               existing_type=sa.BigInteger(),
               type_=sa.INTEGER(),
               existing_nullable=True)

    with op.batch_alter_table('grant_award', schema=None) as batch_op:
        batch_op.alter_column('awarded_pence',
               existing_type=sa.BigInteger(),
               type_=sa.INTEGER(),
               existing_nullable=False)

    with op.batch_alter_table('deposit_share', schema=None) as batch_op:
        batch_op.alter_column('forfeited_pence',
               existing_type=sa.BigInteger(),
               type_=sa.INTEGER(),
               existing_nullable=False,
               existing_server_default=sa.text("'0'"))
        batch_op.alter_column('refunded_pence',
               existing_type=sa.BigInteger(),
               type_=sa.INTEGER(),
               existing_nullable=False,
               existing_server_default=sa.text("'0'"))
        batch_op.alter_column('amount_pence',
               existing_type=sa.BigInteger(),
               type_=sa.INTEGER(),
               existing_nullable=False)

    with op.batch_alter_table('deposit', schema=None) as batch_op:
        batch_op.alter_column('target_pence',
               existing_type=sa.BigInteger(),
               type_=sa.INTEGER(),
               existing_nullable=False)
        batch_op.alter_column('total_pence',
               existing_type=sa.BigInteger(),
               type_=sa.INTEGER(),
               existing_nullable=False)

    with op.batch_alter_table('delegated_decision', schema=None) as batch_op:
        batch_op.alter_column('pot_balance_pence',
               existing_type=sa.BigInteger(),
               type_=sa.INTEGER(),
               existing_nullable=False)
        batch_op.alter_column('amount_pence',
               existing_type=sa.BigInteger(),
               type_=sa.INTEGER(),
               existing_nullable=False)

    with op.batch_alter_table('decision', schema=None) as batch_op:
        batch_op.alter_column('amount_pence',
               existing_type=sa.BigInteger(),
               type_=sa.INTEGER(),
               existing_nullable=True)

    with op.batch_alter_table('bid', schema=None) as batch_op:
        batch_op.alter_column('savings_high_pence',
               existing_type=sa.BigInteger(),
               type_=sa.INTEGER(),
               existing_nullable=True)
        batch_op.alter_column('savings_amount_pence',
               existing_type=sa.BigInteger(),
               type_=sa.INTEGER(),
               existing_nullable=True)
        batch_op.alter_column('grant_requested_pence',
               existing_type=sa.BigInteger(),
               type_=sa.INTEGER(),
               existing_nullable=False)
