"""People are identities: ``person_identity(person_id, system, external_id)`` replaces the
``person.dingtalk_userid`` and ``person.kingdee_staff_number`` columns (issue 9).

Every id in the old columns becomes an identity row of that system (``dingtalk``, ``kingdee``),
so nothing is lost. The old columns never had to be unique; where two people shared an id, the
lowest ``person_id`` keeps it (the table is re-synced from identities.csv on the next run anyway).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OLD_COLUMNS = {"dingtalk_userid": "dingtalk", "kingdee_staff_number": "kingdee"}


def upgrade() -> None:
    op.create_table(
        "person_identity",
        sa.Column("person_id", sa.Text(), nullable=True),
        sa.Column("system", sa.String(200), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("system", "external_id"),
    )
    for column, system in OLD_COLUMNS.items():
        op.execute(
            sa.text(
                "INSERT INTO person_identity (system, external_id, person_id) "
                f"SELECT :system, {column}, MIN(person_id) FROM person "
                f"WHERE {column} IS NOT NULL AND {column} <> '' GROUP BY {column}"
            ).bindparams(system=system)
        )
    with op.batch_alter_table("person") as batch:
        for column in OLD_COLUMNS:
            batch.drop_column(column)


def downgrade() -> None:
    with op.batch_alter_table("person") as batch:
        for column in OLD_COLUMNS:  # at the end: column order is not part of the schema
            batch.add_column(sa.Column(column, sa.Text(), nullable=True))
    for column, system in OLD_COLUMNS.items():
        op.execute(
            sa.text(
                f"UPDATE person SET {column} = (SELECT MIN(i.external_id) FROM person_identity i "
                "WHERE i.person_id = person.person_id AND i.system = :system)"
            ).bindparams(system=system)
        )
    op.drop_table("person_identity")
