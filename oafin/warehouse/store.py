"""Warehouse access: connect, create tables, land raw records, sync standard rows, exception lifecycle.

Every write is an upsert or a keyed delete inside one transaction, so running a step twice
on the same inputs leaves the same rows.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, Table, and_, create_engine, event, select, tuple_
from sqlalchemy.exc import OperationalError

from oafin.connectors.errors import unreadable_payload
from oafin.records import RawRecord
from oafin.warehouse.canonical import PayloadTooDeepError, canonical_json
from oafin.warehouse.migrate import ensure_current
from oafin.warehouse.rows import UPSERT_CHUNK, insert_missing, upsert
from oafin.warehouse.schema import exception, raw_record, raw_record_version

SQLITE_CREATE_ATTEMPTS = 6


def open_engine(url: str) -> Engine:
    """An engine for ``url``, schema untouched. SQLite gets WAL and a busy timeout."""
    sqlite_file = url.startswith("sqlite")
    # The busy timeout is the driver's, from the first statement on: switching a new file to WAL
    # takes a lock too, and with the default 5 s several runs creating one warehouse at once on a
    # loaded machine got "database is locked" (tests/test_migrations.py).
    engine = create_engine(url, future=True, connect_args={"timeout": 30} if sqlite_file else {})
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

    return engine


def connect(url: str, config: str | None = None) -> Engine:
    """An engine for ``url`` whose schema is the one this code needs.

    A brand-new empty warehouse is created at the newest schema revision; one behind the code
    is refused with the command that upgrades it (``oafin db upgrade --config <config>``).
    """
    engine = open_engine(url)
    try:
        for attempt in range(SQLITE_CREATE_ATTEMPTS):
            try:
                ensure_current(engine, config)
                break
            except OperationalError as exc:
                # Several runs creating one new SQLite file at once: the loser of a race between
                # its read and the winner's DDL can get "database is locked" at once, whatever the
                # busy timeout. ensure_current looks again under its lock, so trying again is safe.
                last = attempt == SQLITE_CREATE_ATTEMPTS - 1
                if engine.dialect.name != "sqlite" or "locked" not in str(exc) or last:
                    raise
                time.sleep(0.2 * (attempt + 1))
    except BaseException:
        engine.dispose()
        raise
    return engine


def payload_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def land_raw(conn: Connection, records: Iterable[RawRecord]) -> int:
    """Land source records as they came: the newest payload per record, and every distinct version."""
    rows = []
    for rec in records:
        try:
            text = canonical_json(rec.payload)
        except PayloadTooDeepError as exc:  # a bad record: landed as such, quarantined by standardize
            text = canonical_json(unreadable_payload(f"{rec.system} {rec.kind} {rec.source_id}: {exc}"))
        rows.append(
            {
                "system": rec.system,
                "kind": rec.kind,
                "source_id": rec.source_id,
                "payload_hash": payload_hash(text),
                "payload": text,
            }
        )
    upsert(conn, raw_record, rows)
    insert_missing(conn, raw_record_version, rows)
    return len(rows)


def read_raw(conn: Connection, system: str, kind: str | None = None) -> list[RawRecord]:
    """Every landed record of ``system`` (and ``kind``), in a stable order."""
    stmt = select(raw_record.c.kind, raw_record.c.source_id, raw_record.c.payload).where(
        raw_record.c.system == system
    )
    if kind is not None:
        stmt = stmt.where(raw_record.c.kind == kind)
    stmt = stmt.order_by(raw_record.c.kind, raw_record.c.source_id)
    return [
        RawRecord(system=system, kind=k, source_id=sid, payload=json.loads(p))
        for k, sid, p in conn.execute(stmt)
    ]


def sync_rows(conn: Connection, table: Table, rows: Sequence[Mapping[Any, Any]], scope: Any) -> None:
    """Make the rows of ``table`` within ``scope`` (a where-clause) exactly ``rows``.

    Rows in scope whose key is not in ``rows`` are deleted (a record that moved to quarantine
    leaves the standard table); the rest are upserted.
    """
    pk = [c for c in table.primary_key.columns]
    wanted = {tuple(r[c.name] for c in pk) for r in rows}
    existing = {tuple(r) for r in conn.execute(select(*pk).where(scope))}
    stale = list(existing - wanted)
    for start in range(0, len(stale), UPSERT_CHUNK):
        chunk = stale[start : start + UPSERT_CHUNK]
        conn.execute(table.delete().where(and_(scope, tuple_(*pk).in_(chunk))))
    upsert(conn, table, rows)


def read_table(conn: Connection, table: Table, where: Any = None) -> pd.DataFrame:
    stmt = select(table)
    if where is not None:
        stmt = stmt.where(where)
    stmt = stmt.order_by(*table.primary_key.columns)
    result = conn.execute(stmt)
    return pd.DataFrame(result.mappings().all(), columns=[c.name for c in table.columns])


def exceptions_for_period(conn: Connection, period: str) -> pd.DataFrame:
    return read_table(conn, exception, exception.c.period == period)
