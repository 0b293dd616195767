"""The correction ledger: one row per proposed action, keyed by its idempotency key.

Statuses, in order: ``proposed`` → ``approved`` → ``pending`` (written and committed *before*
the call to the target system) → ``done`` (with the system's response, after it). A call that
fails leaves ``pending`` with ``last_error``: whether it landed is unknown, so the next attempt
checks the target system before calling again. ``done`` rows are never pushed again.

Every transition is appended to the audit log in the same transaction, and the ledger row
keeps the seq and hash of its latest audit row, so deleting audit rows is detectable even at
the end of the chain.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    select,
)

from oafin.warehouse import audit
from oafin.warehouse.schema import metadata
from oafin.warehouse.types import UTCDateTime

STATUSES = ("proposed", "approved", "pending", "done")

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
    return {
        k: p.get(k)
        for k in ("exception_id", "exception_type", "action", "system", "target", "content_hash", "preview")
    }


def transition(
    conn: Connection,
    key: str,
    status: str,
    *,
    event: str,
    actor: str,
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Move ``key`` to ``status`` (setting ``fields``) and append ``event`` to the audit log, atomically
    within the caller's transaction."""
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
    updated = conn.execute(
        correction_ledger.update().where(correction_ledger.c.idempotency_key == key).values(**values)
    ).rowcount
    if updated != 1:
        raise KeyError(f"no correction {key} in the ledger")
    return values


def note(
    conn: Connection, key: str, event: str, actor: str, detail: dict[str, Any], now: datetime | None = None
) -> None:
    """An audit event about ``key`` that changes no status (a refusal, an error, a recovered push)."""
    now = now or datetime.now(UTC)
    entry = audit.append(conn, event, actor, key, detail, now)
    values: dict[str, Any] = {"updated_at": now, "audit_seq": entry.seq, "audit_hash": entry.row_hash}
    if event == "error":
        values["last_error"] = str(detail.get("error", ""))[:2000]
    conn.execute(
        correction_ledger.update().where(correction_ledger.c.idempotency_key == key).values(**values)
    )
