"""Correction batches sent for approval in the OA (issue #17): one row per batch.

Statuses: ``submitting`` (recorded and committed *before* the create call, as the ledger's
``pending``: a lost answer is settled by looking for the instance, never by creating a second
one) → ``open`` (the OA's instance id known) → ``approved`` | ``rejected`` | ``withdrawn``
(the OA's decision, read back, with who decided). Every change appends to the audit log in the
same transaction, with subject ``batch:<id>``, and the row keeps its latest audit row's seq and
hash, as the ledger does; ``trail_problems`` replays a batch's trail to its row, and
``ledger_problems`` checks that every action approved through the OA names a batch that the
audit log shows approved, by the same instance and approvers, none of them the claim's applicant.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Connection, PrimaryKeyConstraint, String, Table, Text, select

from oafin.warehouse import audit
from oafin.warehouse.meta import metadata
from oafin.warehouse.types import UTCDateTime

STATUSES = ("submitting", "open", "approved", "rejected", "withdrawn")
OPEN = ("submitting", "open")
DECIDED = ("approved", "rejected", "withdrawn")
# status → the statuses it may follow
ALLOWED_FROM = {"open": ("submitting",), "approved": ("open",), "rejected": ("open",), "withdrawn": ("open",)}
VIA_OA = "oa"

approval_batch = Table(
    "approval_batch",
    metadata,
    Column("batch_id", String(32), nullable=False),
    Column("source", String(64), nullable=False),  # the config's OA source
    Column("system", String(40), nullable=False),
    Column("process_code", Text, nullable=False),
    Column("instance_id", Text),  # the OA's, once known
    Column("status", String(20), nullable=False),
    Column("keys", Text, nullable=False),  # JSON list of the batch's idempotency keys
    Column("approvers", Text),  # JSON list of {external_id, person_id, name} who agreed
    Column("decided_by", Text),  # label of who approved, rejected or withdrew
    Column("flow_run_id", String(40)),  # the corrections run waiting for it, if suspended
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("decided_at", UTCDateTime()),
    Column("audit_seq", BigInteger),
    Column("audit_hash", String(64)),
    PrimaryKeyConstraint("batch_id"),
)


def subject(batch_id: str) -> str:
    return f"batch:{batch_id}"


def get(conn: Connection, batch_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(approval_batch).where(approval_batch.c.batch_id == batch_id)).mappings().first()
    return dict(row) if row else None


def batches(conn: Connection, statuses: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    stmt = select(approval_batch).order_by(approval_batch.c.created_at, approval_batch.c.batch_id)
    if statuses is not None:
        stmt = stmt.where(approval_batch.c.status.in_(statuses))
    return [dict(r) for r in conn.execute(stmt).mappings()]


def keys_of(row: dict[str, Any]) -> list[str]:
    return list(json.loads(row["keys"]))


def latest_by_key(conn: Connection) -> dict[str, dict[str, Any]]:
    """Each key's latest batch (a key is in at most one open batch; later batches win)."""
    out: dict[str, dict[str, Any]] = {}
    for row in batches(conn):
        for key in keys_of(row):
            out[key] = row
    return out


def _update(
    conn: Connection,
    batch_id: str,
    event: str,
    actor: str,
    detail: dict[str, Any],
    now: datetime,
    expect: str,
    **fields: Any,
) -> dict[str, Any]:
    entry = audit.append(conn, event, actor, subject(batch_id), detail, now)
    values = {"updated_at": now, "audit_seq": entry.seq, "audit_hash": entry.row_hash, **fields}
    done = conn.execute(
        approval_batch.update()
        .where(approval_batch.c.batch_id == batch_id, approval_batch.c.status == expect)
        .values(**values)
    ).rowcount
    if done != 1:
        raise StaleBatch(f"batch {batch_id} is no longer {expect}: another process moved it")
    return values


class StaleBatch(RuntimeError):
    """The batch is no longer in the state the caller read (another process moved it)."""


def new_batch(
    conn: Connection,
    *,
    source: str,
    system: str,
    process_code: str,
    keys: list[str],
    now: datetime | None = None,
) -> dict[str, Any]:
    """Record a batch about to be created in the OA (``submitting``), audited."""
    now = now or datetime.now(UTC)
    batch_id = uuid.uuid4().hex
    detail = {
        "status": "submitting",
        "system": system,
        "source": source,
        "process_code": process_code,
        "keys": keys,
    }
    entry = audit.append(conn, "oa_submit", "oafin", subject(batch_id), detail, now)
    row = {
        "batch_id": batch_id,
        "source": source,
        "system": system,
        "process_code": process_code,
        "instance_id": None,
        "status": "submitting",
        "keys": json.dumps(keys),
        "approvers": None,
        "decided_by": None,
        "flow_run_id": None,
        "created_at": now,
        "updated_at": now,
        "decided_at": None,
        "audit_seq": entry.seq,
        "audit_hash": entry.row_hash,
    }
    conn.execute(approval_batch.insert().values(**row))
    return row


def set_instance(
    conn: Connection, batch_id: str, instance_id: str, *, found: bool, now: datetime | None = None
) -> None:
    """The OA's instance id of a ``submitting`` batch (``found``: recovered by looking, not created)."""
    now = now or datetime.now(UTC)
    detail = {"status": "open", "instance_id": instance_id, "found": found}
    _update(
        conn,
        batch_id,
        "oa_instance",
        "oafin",
        detail,
        now,
        "submitting",
        status="open",
        instance_id=instance_id,
    )


def decide(
    conn: Connection,
    batch_id: str,
    status: str,
    *,
    actor: str,
    approvers: list[dict[str, Any]],
    detail: dict[str, Any],
    now: datetime | None = None,
) -> None:
    """The OA's decision of an ``open`` batch, with who decided (``actor``) and who agreed."""
    if status not in DECIDED:
        raise ValueError(f"not a decision: {status!r}")
    now = now or datetime.now(UTC)
    body = {"status": status, "approvers": approvers, **detail}
    _update(
        conn,
        batch_id,
        "oa_decided",
        actor,
        body,
        now,
        "open",
        status=status,
        approvers=json.dumps(approvers, ensure_ascii=False),
        decided_by=actor,
        decided_at=now,
    )


def set_flow_run(conn: Connection, batch_id: str, flow_run_id: str | None) -> None:
    """The corrections run suspended on this batch (operational: not audited, not verified)."""
    conn.execute(
        approval_batch.update().where(approval_batch.c.batch_id == batch_id).values(flow_run_id=flow_run_id)
    )


def trails(conn: Connection) -> dict[str, list[audit.AuditEntry]]:
    log = audit.audit_log
    out: dict[str, list[audit.AuditEntry]] = {}
    for r in conn.execute(select(log).where(log.c.subject.like("batch:%")).order_by(log.c.seq)).mappings():
        out.setdefault(str(r["subject"])[len("batch:") :], []).append(audit.AuditEntry(**dict(r)))
    return out


def trail_problems(row: dict[str, Any], trail: list[audit.AuditEntry]) -> list[str]:
    """What in a batch row its audit trail does not bear out (empty: the row is what oafin wrote)."""
    bid = str(row["batch_id"])[:12]
    if not trail:
        return [f"OA batch {bid} has no audit trail"]
    problems = []
    last = trail[-1]
    if (last.seq, last.row_hash) != (row["audit_seq"], row["audit_hash"]):
        problems.append(
            f"OA batch {bid} is anchored at audit seq {row['audit_seq']}, its trail ends at {last.seq}"
        )
    first = json.loads(trail[0].payload)
    if trail[0].event != "oa_submit":
        return [*problems, f"OA batch {bid}: its audit trail does not start with the submission"]
    for name in ("process_code", "system"):
        if first.get(name) != row[name]:
            problems.append(f"OA batch {bid}: {name} differs from the submission in the audit log")
    if first.get("keys") != keys_of(row):
        problems.append(f"OA batch {bid}: its actions differ from the submission in the audit log")
    status, instance, approvers, actor = "submitting", None, None, None
    for e in trail[1:]:
        body = json.loads(e.payload)
        step = body.get("status")
        if step not in ALLOWED_FROM or status not in ALLOWED_FROM[step]:
            problems.append(
                f"OA batch {bid}: audit seq {e.seq} moves {status} to {step}, which oafin never does"
            )
        status = step
        if e.event == "oa_instance":
            instance = body.get("instance_id")
        if e.event == "oa_decided":
            approvers, actor = body.get("approvers"), e.actor
    if row["status"] != status:
        problems.append(f"OA batch {bid} says {row['status']}, its audit trail says {status}")
    if row["instance_id"] != instance:
        problems.append(f"OA batch {bid} names instance {row['instance_id']!r}, the audit log {instance!r}")
    stored = json.loads(row["approvers"]) if row["approvers"] else None
    if stored != approvers or row["decided_by"] != actor:
        problems.append(f"OA batch {bid}: its approvers differ from the decision in the audit log")
    return problems


def ledger_problems(
    key: str, approval: dict[str, Any], applicant: str | None, batch: dict[str, Any] | None
) -> list[str]:
    """An action approved through the OA (``approval``: its ``approved`` audit payload) against its batch."""
    short = key[:16]
    if batch is None:
        return [f"ledger {short} says approved in OA batch {approval.get('batch')}, which does not exist"]
    problems = []
    if batch["status"] != "approved":
        problems.append(f"ledger {short} says approved in the OA, but its batch is {batch['status']}")
    if key not in keys_of(batch):
        problems.append(f"ledger {short} is not an action of OA batch {str(batch['batch_id'])[:12]}")
    if approval.get("instance_id") != batch["instance_id"]:
        problems.append(f"ledger {short}: OA instance {approval.get('instance_id')!r} is not its batch's")
    agreed = [a.get("person_id") for a in json.loads(batch["approvers"] or "[]")]
    if sorted(approval.get("approvers") or []) != sorted(agreed):
        problems.append(f"ledger {short}: its approvers are not those the OA recorded for its batch")
    if applicant and applicant in agreed:
        problems.append(
            f"ledger {short}: approved in the OA by its own applicant {applicant} (segregation of duties)"
        )
    return problems
