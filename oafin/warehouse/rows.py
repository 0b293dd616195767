"""Row writes both SQLite and PostgreSQL understand: insert-or-replace and insert-if-missing.
(Apart from ``store`` so a table module may use them without importing the whole schema.)

Two ways to the same rows (issue #16, "Warehouse writes at scale"):

- chunked: SQLAlchemy ``INSERT .. ON CONFLICT`` with one parameter set per row, in chunks of
  ``UPSERT_CHUNK``; for a handful of rows, and what both ways are tested against;
- bulk, from ``BULK_MIN_ROWS`` rows: on PostgreSQL (psycopg) one ``INSERT .. SELECT FROM unnest``
  of one binary array per column up to ``UNNEST_MAX_ROWS`` rows (no catalog work for the 500-record
  landing batches), past it a ``COPY`` into a temporary table shaped like the target and one
  ``INSERT .. SELECT .. ON CONFLICT`` from it; on SQLite one ``executemany``. Values pass the
  columns' own bind processors, so what is stored is what the chunked way stores (an aware
  timestamp in UTC, a naive one refused).

The bulk way writes a key given twice in one call once, with its last row (``upsert``) or its
first (``insert_missing``), as the chunked way does on SQLite (on PostgreSQL the chunked way
refuses a key twice in one chunk), and it does not rewrite a row whose stored values are already
the given ones, so a re-run of the same input writes nothing (the chunked way rewrites them
with the same values).
"""

from __future__ import annotations

import gc
import itertools
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Column, Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

UPSERT_CHUNK = 500
BULK_MIN_ROWS = 100  # fewer (a watermark, a review): the chunked statements, one round trip anyway
UNNEST_MAX_ROWS = 5000  # PostgreSQL: up to this many rows as arrays in one statement, more by COPY
BULK = True  # False: the chunked way only (the benchmark's "old" and the tests' reference)
_STAGE_NUMBERS = itertools.count()


def upsert(conn: Connection, table: Table, rows: Sequence[Mapping[Any, Any]]) -> None:
    """Insert ``rows``, replacing any row with the same primary key."""
    if not rows:
        return
    if _bulk(conn, rows):
        _bulk_write(conn, table, rows, replace=True)
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


def insert_missing(conn: Connection, table: Table, rows: Sequence[Mapping[Any, Any]]) -> None:
    """Insert ``rows`` whose primary key is not there yet; leave existing rows alone."""
    if not rows:
        return
    if _bulk(conn, rows):
        _bulk_write(conn, table, rows, replace=False)
        return
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    for start in range(0, len(rows), UPSERT_CHUNK):
        conn.execute(insert(table).on_conflict_do_nothing(), list(rows[start : start + UPSERT_CHUNK]))


def _bulk(conn: Connection, rows: Sequence[Any]) -> bool:
    if not BULK or len(rows) < BULK_MIN_ROWS:
        return False
    if conn.dialect.name == "postgresql":
        return conn.dialect.driver == "psycopg"  # COPY through psycopg 3
    return conn.dialect.name == "sqlite"


def _bulk_write(conn: Connection, table: Table, rows: Sequence[Mapping[Any, Any]], *, replace: bool) -> None:
    cols = list(table.columns)
    with _gc_paused():
        values = _values(conn, cols, rows, table, keep_last=replace)
    q = conn.dialect.identifier_preparer.quote
    target = conn.dialect.identifier_preparer.format_table(table)
    names = ", ".join(q(c.name) for c in cols)
    if conn.dialect.name == "postgresql":
        conflict = _on_conflict(conn, table, replace)
        if len(values) <= UNNEST_MAX_ROWS:  # one statement, one array per column: no catalog work
            arrays = ", ".join(f"%b::{c.type.compile(dialect=conn.dialect)}[]" for c in cols)
            columns = [list(col) for col in zip(*values, strict=True)]
            sql = f"INSERT INTO {target} ({names}) SELECT * FROM unnest({arrays}) {conflict}"  # noqa: S608
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:  # binary: a text array needs no quoting (psycopg quotes text arrays in Python)
                cursor.execute(sql, columns)
            finally:
                cursor.close()
            return
        stage = q(f"oafin_stage_{table.name}_{next(_STAGE_NUMBERS)}")
        conn.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {stage} (LIKE {target}) ON COMMIT DROP"  # noqa: S608
        )
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
                for row in values:
                    copy.write_row(row)
        finally:
            cursor.close()
        conn.exec_driver_sql(
            f"INSERT INTO {target} ({names}) SELECT {names} FROM {stage} {conflict}"  # noqa: S608
        )
        conn.exec_driver_sql(f"DROP TABLE {stage}")
        return
    marks = ", ".join("?" for _ in cols)
    sql = f"INSERT INTO {target} ({names}) VALUES ({marks}) {_on_conflict(conn, table, replace)}"  # noqa: S608
    conn.exec_driver_sql(sql, values)


def _on_conflict(conn: Connection, table: Table, replace: bool) -> str:
    """``ON CONFLICT``: replace the row's values unless they are already those (or keep it)."""
    q = conn.dialect.identifier_preparer.quote
    pk = [c.name for c in table.primary_key.columns]
    rest = [c.name for c in table.columns if c.name not in pk]
    target = f"ON CONFLICT ({', '.join(q(c) for c in pk)})"
    if not replace or not rest:
        return f"{target} DO NOTHING"
    sets = ", ".join(f"{q(c)} = excluded.{q(c)}" for c in rest)
    mine = conn.dialect.identifier_preparer.format_table(table)
    if conn.dialect.name == "postgresql":
        old = ", ".join(f"{mine}.{q(c)}" for c in rest)
        new = ", ".join(f"excluded.{q(c)}" for c in rest)
        changed = f"ROW({old}) IS DISTINCT FROM ROW({new})"
    else:
        changed = " OR ".join(f"{mine}.{q(c)} IS NOT excluded.{q(c)}" for c in rest)
    return f"{target} DO UPDATE SET {sets} WHERE {changed}"


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a million rows of tuples are made: they hold no cycles,
    and each collection would walk them all again (half of the conversion's time at 100k rows)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _bind_processor(col: Column[Any], dialect: Any) -> Callable[[Any], Any] | None:
    """The column's bind processor, or the type's own one-step equivalent for bulk writes."""
    bulk = getattr(col.type, "bulk_bind_processor", None)
    fast = bulk(dialect) if bulk is not None else None
    return fast if fast is not None else col.type.dialect_impl(dialect).bind_processor(dialect)


def _values(
    conn: Connection,
    cols: list[Column[Any]],
    rows: Sequence[Mapping[Any, Any]],
    table: Table,
    *,
    keep_last: bool,
) -> list[tuple[Any, ...]]:
    """One tuple per distinct key (its last or first row), each value through its column's bind
    processor (``UTCDateTime``: aware to UTC, naive refused); a column a row lacks is NULL."""
    procs = [_bind_processor(c, conn.dialect) for c in cols]
    names = [c.name for c in cols]
    processed = [(i, p) for i, p in enumerate(procs) if p is not None]
    at = [names.index(c.name) for c in table.primary_key.columns]
    getter = operator.itemgetter(*names)  # a tuple of the values; of one name, the value
    take: Callable[[Mapping[Any, Any]], tuple[Any, ...]] = (
        getter if len(names) > 1 else lambda row: (getter(row),)
    )
    key_of = operator.itemgetter(*at)  # the key's value (one column) or tuple of values
    by_key: dict[Any, tuple[Any, ...]] = {}
    for row in rows:
        try:
            value = take(row)
        except KeyError:
            value = tuple(row.get(n) for n in names)
        if processed:
            changed = list(value)
            for i, p in processed:
                if changed[i] is not None:
                    changed[i] = p(changed[i])
            value = tuple(changed)
        key = key_of(value)
        if keep_last or key not in by_key:
            by_key[key] = value
    return list(by_key.values())
