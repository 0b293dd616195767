"""The correction ledger: one row per proposed action, keyed by its idempotency key.

Statuses, in order: ``proposed`` → ``approved`` → ``pending`` (written and committed *before*
the call to the target system) → ``done`` (with the system's response, after it). A call that
fails leaves ``pending`` with ``last_error``: whether it landed is unknown, so the next attempt
checks the target system before calling again. ``done`` rows are never pushed again.

Every transition is appended to the audit log in the same transaction, and the ledger row
keeps the seq and hash of its latest audit row, so deleting audit rows is detectable even at
the end of the chain. The audit trail of a key replays to its ledger row (``trail_problems``):
an edited status, approver, content or applicant no longer matches what the chain recorded, so
``oafin audit verify`` names it and the push refuses it (issue #10 item 6).

Claims are compare-and-set (issue #10 item 5): ``transition(..., expect=(status, audit_seq))``
updates only a row still in the state the caller read, else raises ``StaleRow`` and the
caller's transaction (its audit row included) rolls back, so of two processes that read the
same ``approved`` row exactly one moves it to ``pending`` and pushes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    select,
)

from oafin.warehouse import audit
from oafin.warehouse.meta import metadata
from oafin.warehouse.types import UTCDateTime

STATUSES = ("proposed", "approved", "pending", "done")
# status → the statuses it may follow (a trail that skips a step was not written by oafin)
ALLOWED_FROM = {"approved": ("proposed",), "pending": ("approved", "pending"), "done": ("pending",)}
# fields a proposal's audit row records, compared with the ledger row on every replay
AUDITED_FIELDS = (
    "exception_id",
    "exception_type",
    "action",
    "system",
    "target",
    "content_hash",
    "preview",
    "claim_no",
    "applicant_id",
    "amount_fen",
)
_PERSON_IN_LABEL = re.compile(r"\(([^()]+)\)")


class StaleRow(RuntimeError):
    """The ledger row is no longer in the state the caller read: another process claimed it."""


correction_ledger = Table(
    "correction_ledger",
    metadata,
    Column("idempotency_key", String(64), nullable=False),
    Column("exception_id", String(40), nullable=False),
    Column("exception_type", String(40), nullable=False),
    Column("action", String(40), nullable=False),
    Column("system", String(40), nullable=False),
    Column("target", Text, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("content", Text, nullable=False),  # canonical JSON of what the push will do
    Column("preview", Text, nullable=False),
    Column("claim_no", Text),
    Column("applicant_id", Text),
    Column("amount_fen", BigInteger),
    Column("status", String(20), nullable=False),
    Column("approved_by", Text),
    Column("approved_at", UTCDateTime()),
    Column("attempts", Integer, nullable=False, default=0),
    Column("response", Text),  # canonical JSON of the system's answer
    Column("last_error", Text),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("audit_seq", BigInteger),
    Column("audit_hash", String(64)),
    PrimaryKeyConstraint("idempotency_key"),
)


def get(conn: Connection, key: str) -> dict[str, Any] | None:
    row = (
        conn.execute(select(correction_ledger).where(correction_ledger.c.idempotency_key == key))
        .mappings()
        .first()
    )
    return dict(row) if row else None


def rows(conn: Connection, keys: list[str] | None = None) -> list[dict[str, Any]]:
    stmt = select(correction_ledger).order_by(
        correction_ledger.c.created_at, correction_ledger.c.idempotency_key
    )
    if keys is not None:
        stmt = stmt.where(correction_ledger.c.idempotency_key.in_(keys))
    return [dict(r) for r in conn.execute(stmt).mappings()]


def record_proposals(
    conn: Connection, proposals: list[dict[str, Any]], now: datetime | None = None
) -> list[str]:
    """Insert proposals not in the ledger yet (status ``proposed``); audit each new one. Returns the new keys."""
    now = now or datetime.now(UTC)
    keys = [p["idempotency_key"] for p in proposals]
    known = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        known |= set(
            conn.execute(
                select(correction_ledger.c.idempotency_key).where(
                    correction_ledger.c.idempotency_key.in_(chunk)
                )
            ).scalars()
        )
    new = [p for p in proposals if p["idempotency_key"] not in known]
    rows_ = []
    for p in new:
        entry = audit.append(conn, "proposed", "oafin", p["idempotency_key"], _audit_body(p), now)
        rows_.append(
            {
                **p,
                "status": "proposed",
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
                "audit_seq": entry.seq,
                "audit_hash": entry.row_hash,
            }
        )
    if rows_:
        conn.execute(correction_ledger.insert(), rows_)
    return [p["idempotency_key"] for p in new]


def _audit_body(p: dict[str, Any]) -> dict[str, Any]:
    return {k: p.get(k) for k in AUDITED_FIELDS}


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction; on SQLite it takes the write lock at once (``BEGIN IMMEDIATE``), so two
    processes appending audit rows wait for each other instead of failing on a stale snapshot."""
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield conn


def transition(
    conn: Connection,
    key: str,
    status: str,
    *,
    event: str,
    actor: str,
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
    expect: tuple[str, int | None] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Move ``key`` to ``status`` (setting ``fields``) and append ``event`` to the audit log, atomically
    within the caller's transaction.

    With ``expect=(status, audit_seq)`` only a row still in that state is moved (compare-and-set);
    otherwise ``StaleRow`` is raised, and the caller's transaction must roll back."""
    if status not in STATUSES:
        raise ValueError(f"unknown ledger status {status!r}")
    now = now or datetime.now(UTC)
    entry = audit.append(conn, event, actor, key, {"status": status, **(detail or {})}, now)
    values = {
        "status": status,
        "updated_at": now,
        "audit_seq": entry.seq,
        "audit_hash": entry.row_hash,
        **fields,
    }
    if "response" in values and not isinstance(values["response"], str | None):
        values["response"] = audit.canonical_json(values["response"])
    stmt = correction_ledger.update().where(correction_ledger.c.idempotency_key == key)
    if expect is not None:
        want_status, want_seq = expect
        seq = correction_ledger.c.audit_seq
        stmt = stmt.where(
            correction_ledger.c.status == want_status, seq.is_(None) if want_seq is None else seq == want_seq
        )
    updated = conn.execute(stmt.values(**values)).rowcount
    if updated != 1:
        if expect is not None:
            raise StaleRow(f"correction {key[:16]} is no longer {expect[0]}: another process claimed it")
        raise KeyError(f"no correction {key} in the ledger")
    return values


def note(
    conn: Connection, key: str, event: str, actor: str, detail: dict[str, Any], now: datetime | None = None
) -> None:
    """An audit event about ``key`` that changes no status (a refusal, an error, a recovered push)."""
    if "status" in detail:
        raise ValueError("a note changes no status: its detail may not carry one")
    now = now or datetime.now(UTC)
    entry = audit.append(conn, event, actor, key, detail, now)
    values: dict[str, Any] = {"updated_at": now, "audit_seq": entry.seq, "audit_hash": entry.row_hash}
    if event == "error":
        values["last_error"] = str(detail.get("error", ""))[:2000]
    conn.execute(
        correction_ledger.update().where(correction_ledger.c.idempotency_key == key).values(**values)
    )


def person_of(label: str | None) -> str | None:
    """The person_id in an approver label ``"name (P0002)"``; None for ``auto:<rule>`` or no label."""
    found = _PERSON_IN_LABEL.findall(label or "")
    return found[-1].strip() if found else None


def persons_of(label: str | None) -> list[str]:
    """Every person_id in an approver label: ``"name (P0002)"``, ``"self-declared: name (P0002)"``, or
    an OA approval's ``"oa <system> <instance>: name (P0002), name (P0003)"``."""
    return [p.strip() for p in _PERSON_IN_LABEL.findall(label or "")]


def trail_problems(row: dict[str, Any], trail: list[audit.AuditEntry]) -> list[str]:
    """What in ``row`` the audit trail of its key (``trail``, in seq order) does not bear out.

    The trail must start with the proposal (whose recorded fields the row still has), go through
    allowed status steps only, end at the row's anchor, and replay to the row's status and approver;
    an approved action's approver may not be its applicant. Empty: the row is what oafin wrote."""
    key = str(row["idempotency_key"])[:16]
    if row.get("audit_seq") is None or row.get("audit_hash") is None:
        return [f"ledger {key} has no audit anchor (it was removed)"]
    if not trail:
        return [f"ledger {key} has no audit trail"]
    problems = []
    for e in trail:
        if audit.row_hash(e.seq, e.at, e.event, e.actor, e.subject, e.payload, e.prev_hash) != e.row_hash:
            problems.append(f"ledger {key}: audit seq {e.seq} does not match its hash (edited)")
    last = trail[-1]
    if (last.seq, last.row_hash) != (row["audit_seq"], row["audit_hash"]):
        problems.append(
            f"ledger {key} is anchored at audit seq {row['audit_seq']}, but its trail ends at seq {last.seq}"
        )
    first = trail[0]
    proposal = json.loads(first.payload) if first.event == "proposed" else None
    if proposal is None:
        return [*problems, f"ledger {key}: its audit trail does not start with the proposal"]
    for name in AUDITED_FIELDS:
        if name in proposal and proposal[name] != row.get(name):
            problems.append(f"ledger {key}: {name} differs from the proposal recorded in the audit log")
    if hashlib.sha256(str(row["content"]).encode("utf-8")).hexdigest() != row["content_hash"]:
        problems.append(f"ledger {key}: content does not match its content_hash (edited)")
    status, approver = "proposed", None
    for e in trail[1:]:
        payload = json.loads(e.payload)
        step = payload.get("status") if isinstance(payload, dict) else None
        if step is None:
            continue
        if status not in ALLOWED_FROM.get(step, ()):
            problems.append(
                f"ledger {key}: audit seq {e.seq} moves {status} to {step}, which oafin never does"
            )
        if step == "approved":
            approver = e.actor
        status = step
    if row["status"] != status:
        problems.append(f"ledger {key} says {row['status']}, its audit trail says {status}")
    if status != "proposed" and row.get("approved_by") != approver:
        problems.append(
            f"ledger {key} says approved by {row.get('approved_by')!r}, the audit log by {approver!r}"
        )
    applicant = proposal.get("applicant_id", row.get("applicant_id"))
    if approver is not None and applicant and applicant in persons_of(approver):
        problems.append(f"ledger {key}: approved by its own applicant {applicant} (segregation of duties)")
    return problems


def trails(conn: Connection, keys: list[str] | None = None) -> dict[str, list[audit.AuditEntry]]:
    """The audit entries of each ledger key (of ``keys``, default all), in seq order."""
    log = audit.audit_log
    stmt = select(log).order_by(log.c.seq)
    if keys is None:
        stmt = stmt.where(log.c.subject.in_(select(correction_ledger.c.idempotency_key)))
    else:
        stmt = stmt.where(log.c.subject.in_(keys))
    out: dict[str, list[audit.AuditEntry]] = {}
    for r in conn.execute(stmt).mappings():
        out.setdefault(r["subject"], []).append(audit.AuditEntry(**dict(r)))
    return out
