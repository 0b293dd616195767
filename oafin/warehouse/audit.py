"""The audit log: append-only and hash-chained, so an edited or deleted row is detectable.

Every row holds the sha256 of the row before it (``prev_hash``) and its own hash over
``canonical_json([seq, at, event, actor, subject, payload, prev_hash])``. ``seq`` is dense
from 1 and is the primary key, so two writers cannot both append "the next" row: the second
insert fails on the key instead of forking the chain (on PostgreSQL an advisory lock also
serialises appenders). ``verify`` walks the chain in ``seq`` order:

- an edited row no longer matches its own hash;
- a deleted row leaves a gap in ``seq`` and breaks the next row's ``prev_hash``;
- a deleted *last* row leaves no trace in the chain itself: compare the head with one kept
  elsewhere (``expect_head``; the corrections flow logs the head on its Prefect run page), and
  the correction ledger references the audit rows it wrote (see ``oafin.audit``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
    select,
    text,
)

from oafin.warehouse.canonical import canonical_json
from oafin.warehouse.meta import metadata
from oafin.warehouse.types import UTCDateTime

GENESIS = "0" * 64


_PG_LOCK_KEY = 6_0106  # pg_advisory_xact_lock key for appenders (any constant unique to oafin)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, autoincrement=False, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("event", String(40), nullable=False),  # proposed, approved, refused, push, response, error
    Column("actor", Text, nullable=False),  # who: an approver, "auto:<rule>", or "oafin"
    Column("subject", Text, nullable=False),  # what: usually an idempotency key
    Column("payload", Text, nullable=False),  # canonical JSON
    Column("prev_hash", String(64), nullable=False),
    Column("row_hash", String(64), nullable=False),
    PrimaryKeyConstraint("seq"),
)


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: datetime
    event: str
    actor: str
    subject: str
    payload: str  # canonical JSON text, as stored
    prev_hash: str
    row_hash: str


def _at_text(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def row_hash(
    seq: int, at: datetime, event: str, actor: str, subject: str, payload: str, prev_hash: str
) -> str:
    """sha256 of the canonical JSON of the row's fields (the stored payload text is hashed as is)."""
    text_ = canonical_json([seq, _at_text(at), event, actor, subject, payload, prev_hash])
    return hashlib.sha256(text_.encode("utf-8")).hexdigest()


def head(conn: Connection) -> tuple[int, str]:
    """``(seq, row_hash)`` of the last row, ``(0, GENESIS)`` for an empty log."""
    row = conn.execute(
        select(audit_log.c.seq, audit_log.c.row_hash).order_by(audit_log.c.seq.desc()).limit(1)
    ).first()
    return (int(row[0]), row[1]) if row else (0, GENESIS)


def append(
    conn: Connection,
    event: str,
    actor: str,
    subject: str,
    payload: Any,
    at: datetime | None = None,
) -> AuditEntry:
    """Append one event in the caller's transaction and return it (commit with the change it records)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("select pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    last_seq, last_hash = head(conn)
    at = (at or datetime.now(UTC)).astimezone(UTC)
    body = canonical_json(payload)
    seq = last_seq + 1
    entry = AuditEntry(
        seq,
        at,
        event,
        actor,
        subject,
        body,
        last_hash,
        row_hash(seq, at, event, actor, subject, body, last_hash),
    )
    conn.execute(audit_log.insert().values(**entry.__dict__))
    return entry


def chain_rows(
    events: Iterable[tuple[datetime, str, str, str, str]], start: tuple[int, str] = (0, GENESIS)
) -> Iterator[dict[str, Any]]:
    """Rows for a bulk insert of ``(at, event, actor, subject, payload_json)`` tuples, chained from ``start``."""
    seq, prev = start
    for at, event, actor, subject, payload in events:
        seq += 1
        digest = row_hash(seq, at, event, actor, subject, payload, prev)
        yield {
            "seq": seq,
            "at": at,
            "event": event,
            "actor": actor,
            "subject": subject,
            "payload": payload,
            "prev_hash": prev,
            "row_hash": digest,
        }
        prev = digest


@dataclass
class VerifyReport:
    rows: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


MAX_PROBLEMS = 20


def verify(conn: Connection, expect_head: tuple[int, str] | None = None, batch: int = 20_000) -> VerifyReport:
    """Walk the chain; every edited, deleted or inserted row is named in ``problems``."""
    report = VerifyReport()
    expected_seq, prev = 1, GENESIS
    stmt = select(
        audit_log.c.seq,
        audit_log.c.at,
        audit_log.c.event,
        audit_log.c.actor,
        audit_log.c.subject,
        audit_log.c.payload,
        audit_log.c.prev_hash,
        audit_log.c.row_hash,
    ).order_by(audit_log.c.seq)
    result = conn.execution_options(yield_per=batch).execute(stmt)
    problems = report.problems
    for seq, at, event, actor, subject, payload, prev_hash, stored in result:
        report.rows += 1
        if seq != expected_seq:
            problems.append(f"seq {expected_seq}..{seq - 1} missing: rows were deleted before seq {seq}")
        if prev_hash != prev:
            problems.append(
                f"seq {seq}: prev_hash does not match the row before it (a row was deleted or edited)"
            )
        if row_hash(seq, at, event, actor, subject, payload, prev_hash) != stored:
            problems.append(f"seq {seq}: content does not match its hash (the row was edited)")
        if len(problems) >= MAX_PROBLEMS:
            problems.append("... stopped after 20 problems")
            result.close()
            break
        expected_seq, prev = seq + 1, stored
    report.head_seq, report.head_hash = expected_seq - 1, prev
    if expect_head is not None and report.ok:
        want_seq, want_hash = expect_head
        if report.head_seq < want_seq:
            problems.append(
                f"the log ends at seq {report.head_seq}, but seq {want_seq} was recorded: rows were deleted"
            )
        else:
            got = conn.execute(select(audit_log.c.row_hash).where(audit_log.c.seq == want_seq)).scalar()
            if got != want_hash:
                problems.append(f"seq {want_seq}: hash differs from the recorded head")
    return report


def count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(audit_log)).scalar_one())


def entries(conn: Connection, subject: str | None = None) -> list[AuditEntry]:
    stmt = select(audit_log).order_by(audit_log.c.seq)
    if subject is not None:
        stmt = stmt.where(audit_log.c.subject == subject)
    return [AuditEntry(**dict(r)) for r in conn.execute(stmt).mappings()]
