"""Row writes both SQLite and PostgreSQL understand: insert-or-replace and insert-if-missing, in chunks.
(Apart from ``store`` so a table module may use them without importing the whole schema.)"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

UPSERT_CHUNK = 500


def upsert(conn: Connection, table: Table, rows: Sequence[Mapping[Any, Any]]) -> None:
    """Insert ``rows``, replacing any row with the same primary key."""
    if not rows:
        return
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    pk = [c.name for c in table.primary_key.columns]
    for start in range(0, len(rows), UPSERT_CHUNK):
        chunk = rows[start : start + UPSERT_CHUNK]
        stmt = insert(table)
        updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in pk}
        stmt = (
            stmt.on_conflict_do_update(index_elements=pk, set_=updates)
            if updates
            else stmt.on_conflict_do_nothing()
        )
        conn.execute(stmt, list(chunk))


def insert_missing(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` whose primary key is not there yet; leave existing rows alone."""
    if not rows:
        return
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    for start in range(0, len(rows), UPSERT_CHUNK):
        conn.execute(insert(table).on_conflict_do_nothing(), list(rows[start : start + UPSERT_CHUNK]))
