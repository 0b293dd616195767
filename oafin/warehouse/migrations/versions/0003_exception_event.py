"""The history of each exception (issue 11, "History you can see"): ``exception_event`` holds one
row per lifecycle change (reopened, resolved) or imported review decision, never rewritten, so a
resolved exception that comes back shows as reopened with when and why.

Nothing existing changes: the table starts empty, and ``exception.status`` gains the value
``reopened`` (a String(20) column, so no DDL).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from oafin.warehouse.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exception_event",
        sa.Column("exception_id", sa.String(40), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("event", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("exception_id", "at", "event"),
    )


def downgrade() -> None:
    op.execute(sa.text("UPDATE exception SET status = 'open' WHERE status = 'reopened'"))
    op.drop_table("exception_event")
