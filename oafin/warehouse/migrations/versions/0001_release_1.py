"""Release 1: the warehouse as the last release's ``create_all`` made it (commit aee373d).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

from oafin.warehouse.migrations.baseline import release_1

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    release_1().create_all(op.get_bind())


def downgrade() -> None:
    release_1().drop_all(op.get_bind())
