"""Chains of three systems (issue 14): every exception names the pair of the chain that found it
(``exception.left_system``, ``exception.right_system``: source names), and ``finance_doc`` gains the
ERP voucher number written back onto an expense-platform document (``voucher_no``) and a voucher's
credit total (``credit_fen``; its debit total is ``amount_fen``).

Existing rows keep NULL in the new columns; the next run of a period fills them.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("exception") as batch:
        batch.add_column(sa.Column("left_system", sa.Text(), nullable=True))
        batch.add_column(sa.Column("right_system", sa.Text(), nullable=True))
    with op.batch_alter_table("finance_doc") as batch:
        batch.add_column(sa.Column("voucher_no", sa.Text(), nullable=True))
        batch.add_column(sa.Column("credit_fen", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("finance_doc") as batch:
        batch.drop_column("credit_fen")
        batch.drop_column("voucher_no")
    with op.batch_alter_table("exception") as batch:
        batch.drop_column("right_system")
        batch.drop_column("left_system")
