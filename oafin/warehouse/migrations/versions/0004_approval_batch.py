"""Corrections approved in the OA (issue 17): ``approval_batch`` holds one row per batch of
actions sent to the OA as an approval instance (its instance id, status and who decided).

Nothing existing changes: the table starts empty; the ledger and audit log keep their columns.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from oafin.warehouse.types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approval_batch",
        sa.Column("batch_id", sa.String(32), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("system", sa.String(40), nullable=False),
        sa.Column("process_code", sa.Text(), nullable=False),
        sa.Column("instance_id", sa.Text(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("keys", sa.Text(), nullable=False),
        sa.Column("approvers", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("flow_run_id", sa.String(40), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("audit_seq", sa.BigInteger(), nullable=True),
        sa.Column("audit_hash", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("batch_id"),
    )


def downgrade() -> None:
    op.drop_table("approval_batch")
