"""A lock per correction held while its push is in flight, released by the OS if the process dies.

The ledger's compare-and-set decides which process moves an ``approved`` row to ``pending``.
A ``pending`` row is ambiguous: its pusher may have died after the call (recover it: read the
target, send only if nothing landed) or may still be waiting for the answer (leave it alone,
or the action lands twice). This lock tells the two apart: a live pusher holds it, a dead one
does not (issue #10 item 5).

- PostgreSQL: a session advisory lock on a connection of its own (the two-key space, apart from
  the audit appenders' one-key lock); a killed process's connection closes and frees it.
- SQLite (one machine by nature): ``flock`` on a file per key next to the database, so threads
  and processes exclude each other; a killed process's descriptors close and free it.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text

PG_CLASS = 60107  # pg_try_advisory_lock(int4, int4) class id for in-flight pushes (unique to oafin)
_local = threading.Lock()
_held_in_memory: set[tuple[int, str]] = set()


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _pg_object(key: str) -> int:
    return int(_digest(key)[:8], 16) - 2**31  # an int4 from the key's hash


def forget(engine: Engine, key: str) -> None:
    """Remove ``key``'s lock file once its action is ``done`` (never pushed again, so a process that
    still holds the old file's lock does no harm)."""
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        Path(f"{database}.push-locks", f"{_digest(key)[:32]}.lock").unlink(missing_ok=True)


@contextmanager
def hold(engine: Engine, key: str) -> Iterator[bool]:
    """Try to take ``key``'s lock without waiting; yields whether this caller holds it."""
    if engine.dialect.name == "postgresql":
        with _pg_hold(engine, key) as got:
            yield got
        return
    database = engine.url.database
    if not database or database == ":memory:":
        with _memory_hold(id(engine), key) as got:
            yield got
        return
    with _file_hold(Path(f"{database}.push-locks"), key) as got:
        yield got


@contextmanager
def _pg_hold(engine: Engine, key: str) -> Iterator[bool]:
    params = {"c": PG_CLASS, "o": _pg_object(key)}
    conn = engine.connect()
    try:
        got = bool(conn.execute(text("select pg_try_advisory_lock(:c, :o)"), params).scalar())
        conn.commit()  # a session lock outlives the transaction: no transaction left idle meanwhile
        try:
            yield got
        finally:
            if got:
                try:
                    conn.execute(text("select pg_advisory_unlock(:c, :o)"), params)
                    conn.commit()
                except Exception:
                    conn.invalidate()  # never return a connection to the pool still holding the lock
                    raise
    finally:
        conn.close()


@contextmanager
def _memory_hold(space: int, key: str) -> Iterator[bool]:
    with _local:
        got = (space, key) not in _held_in_memory
        _held_in_memory.add((space, key))
    try:
        yield got
    finally:
        if got:
            with _local:
                _held_in_memory.discard((space, key))


@contextmanager
def _file_hold(folder: Path, key: str) -> Iterator[bool]:
    import fcntl  # POSIX; SQLite warehouses are for one machine

    folder.mkdir(exist_ok=True)
    fd = os.open(folder / f"{_digest(key)[:32]}.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # frees the flock
