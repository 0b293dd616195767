"""Corrections approved in the company's OA (issue #17): create → read → decide → push.

1. ``submit``: the actions waiting for approval (``proposed`` in the ledger) become one batch,
   recorded ``submitting`` and committed *before* the OA's create call (the OAs' create calls
   take no idempotency key, real-clients.md §4.1-4.3); the instance id is recorded after it. A
   run that died in between finds the instance by the batch id written into its form
   (``Approvals.find``) and never creates a second one. An action already in an open batch is
   not sent again; one whose last batch was rejected or withdrawn is not re-sent by itself.
2. ``check``: the instance is read. Still open: nothing happens. Decided: ``decide`` applies the
   OA's record, and the outcome is written in one transaction (batch decided; each action
   approved or refused, audited), only if the batch is still open, so two checks decide once.
3. The approved actions are pushed through the ledger (``push.push_approved``): exactly once.

``decide`` is the identity rule: the approvers of record are every user the OA recorded as
agreeing (its operation records and tasks; never an automatic pass), each mapped to a person
through the identities table of the OA's system. An approver nobody maps is refused for the
whole batch; an action whose claim's applicant is among the approvers is refused with the reason
(segregation of duties), the batch's other actions stand. Row-level decisions apply only where
the OA records them (``ApprovalState.row_decisions``); otherwise the instance decides all rows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from mappings.code_tables import CodeTables
from oafin.config import Settings, SourceConfig
from oafin.pipeline.corrections.model import marker_for
from oafin.systems.base import ApprovalRequest, ApprovalRow, Approvals, ApprovalState, approvals_of
from oafin.systems.registry import get_system
from oafin.warehouse import approvals, audit, inflight, ledger

logger = logging.getLogger(__name__)

REFUSAL_EVENTS = {"approved": "refused", "rejected": "oa_rejected", "withdrawn": "oa_withdrawn"}

# Test seam: called with the batch id after the create call and before its instance id is
# recorded (tests/run_with_crash.py kills the process there). Production never sets it.
after_create: Callable[[str], None] | None = None


class OaApprovalError(RuntimeError):
    """OA approval is configured but cannot work (no such source, a system without approvals)."""


@dataclass
class OaOutcome:
    """What one batch's check found and did."""

    batch_id: str
    instance_id: str | None
    status: str  # submitting | open | approved | rejected | withdrawn
    approved: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    decided_by: str | None = None
    newly_decided: bool = False


@dataclass
class OaDecision:
    """``decide``'s answer: per action, approved (with the approver label) or refused (with why)."""

    status: str
    actor: str
    approvers: list[dict[str, Any]] = field(default_factory=list)  # {external_id, person_id, name}
    approved: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)


def oa_source(settings: Settings) -> SourceConfig:
    """The OA source whose approval forms are used: ``corrections.oa.source``, else the chain's first."""
    name = settings.corrections.oa.source or settings.chain[0]
    try:
        source = settings.source(name)
    except KeyError as exc:
        raise OaApprovalError(f"corrections.oa.source: {exc.args[0]}") from None
    if approvals_of(get_system(source.system)) is None:
        raise OaApprovalError(
            f"source {name!r} ({source.system}) cannot hold approval instances: set corrections.oa.source "
            'to an OA source whose system offers approvals, or corrections.approval = "prefect"'
        )
    return source


def system_approvals(source: SourceConfig) -> Approvals:
    found = approvals_of(get_system(source.system))
    if found is None:
        raise OaApprovalError(f"system {source.system} offers no approval instances")
    return found


def requires_oa(row: dict[str, Any], settings: Settings) -> bool:
    """Whether only an OA approval may approve ``row`` (a ledger row), never an auto rule or the
    Prefect form: the config says so for its action, or for its target system's role (``erp``:
    every write to the ERP)."""
    oa = settings.corrections.oa
    if row["action"] in oa.required_for_actions:
        return True
    return bool(oa.required_for_roles) and get_system(row["system"]).role in oa.required_for_roles


@contextmanager
def oa_client(settings: Settings) -> Iterator[Any]:
    """The OA source's API client, opened with its credentials from the environment."""
    from oafin.pipeline.sources import open_reader

    reader = open_reader(oa_source(settings))
    try:
        yield reader.client
    finally:
        reader.close()


def request_for(
    batch: dict[str, Any], rows: Sequence[dict[str, Any]], settings: Settings, report_link: str, title: str
) -> ApprovalRequest:
    oa = settings.corrections.oa
    return ApprovalRequest(
        batch_id=batch["batch_id"],
        process_code=batch["process_code"],
        originator_id=str(oa.originator_userid),
        title=title,
        rows=tuple(
            ApprovalRow(
                marker=marker_for(r["idempotency_key"]),
                action=r["action"],
                claim_no=r.get("claim_no"),
                exception_type=r["exception_type"],
                amount_fen=int(r["amount_fen"]) if r.get("amount_fen") is not None else None,
                target_system=r["system"],
                target=r["target"],
                preview=r["preview"],
            )
            for r in rows
        ),
        report_link=report_link,
        approver_ids=tuple(oa.approvers),
        dept_id=oa.dept_id,
    )


def sendable(engine: Engine, keys: Sequence[str]) -> tuple[list[str], list[dict[str, Any]]]:
    """(keys to put in a new batch, the open batches already holding some of ``keys``).

    Only ``proposed`` actions are sent; one in an open batch waits for it; one whose latest batch
    was rejected or withdrawn is not re-sent (the decision stands until someone re-proposes)."""
    with engine.connect() as conn:
        status = {r["idempotency_key"]: r["status"] for r in ledger.rows(conn, list(keys))}
        latest = approvals.latest_by_key(conn)
    fresh, waiting = [], {}
    for key in keys:
        batch = latest.get(key)
        if batch is not None and batch["status"] in approvals.OPEN:
            waiting[batch["batch_id"]] = batch
        elif batch is None and status.get(key) == "proposed":
            fresh.append(key)
    return fresh, list(waiting.values())


def submit(
    engine: Engine,
    settings: Settings,
    keys: Sequence[str],
    client: Any,
    *,
    report_link: str,
    title: str = "oafin 对账更正审批",
) -> list[dict[str, Any]]:
    """Send ``keys`` for approval in the OA; returns the open batches holding them (new or earlier)."""
    fresh, waiting = sendable(engine, keys)
    source = oa_source(settings)
    process_code = str(settings.corrections.oa.process_code)
    out = list(waiting)
    if fresh:
        with ledger.writing(engine) as conn:
            batch = approvals.new_batch(
                conn, source=source.name, system=source.system, process_code=process_code, keys=fresh
            )
        out.append(batch)
    return [ensure_instance(engine, settings, b, client, report_link=report_link, title=title) for b in out]


def ensure_instance(
    engine: Engine,
    settings: Settings,
    batch: dict[str, Any],
    client: Any,
    *,
    report_link: str = "",
    title: str = "oafin 对账更正审批",
) -> dict[str, Any]:
    """A ``submitting`` batch gets its instance: found by its batch id if an earlier create landed,
    else created (once). Other batches are returned as they are."""
    if batch["status"] != "submitting":
        return batch
    # one process at a time creates (or finds) a batch's instance: another one holding the lock
    # is doing it now, so this one leaves the batch as it is (its next check sees the instance)
    with inflight.hold(engine, approvals.subject(batch["batch_id"])) as mine:
        if not mine:
            return batch
        with engine.connect() as conn:
            batch = approvals.get(conn, batch["batch_id"]) or batch
        if batch["status"] != "submitting":
            return batch
        return _create_or_find(engine, settings, batch, client, report_link=report_link, title=title)


def _create_or_find(
    engine: Engine, settings: Settings, batch: dict[str, Any], client: Any, *, report_link: str, title: str
) -> dict[str, Any]:
    source = settings.source(batch["source"])
    api = system_approvals(source)
    rows = _rows_in_order(engine, approvals.keys_of(batch))
    request = request_for(batch, rows, settings, report_link, title)
    found = api.find(client, request, batch["created_at"])
    instance_id = found or api.create(client, request)
    if found is None and after_create is not None:
        after_create(batch["batch_id"])
    with ledger.writing(engine) as conn:
        approvals.set_instance(conn, batch["batch_id"], instance_id, found=found is not None)
        stored = approvals.get(conn, batch["batch_id"])
    logger.info(
        "OA instance %s %s for %d corrections (batch %s)",
        instance_id,
        "found" if found else "created",
        len(rows),
        batch["batch_id"][:12],
    )
    assert stored is not None
    return stored


def _rows_in_order(engine: Engine, keys: list[str]) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        found = {r["idempotency_key"]: r for r in ledger.rows(conn, keys)}
    return [found[k] for k in keys if k in found]


def _people(tables: CodeTables) -> dict[str, str]:
    return {str(r["person_id"]).strip(): str(r.get("name") or "") for r in tables.people.to_dict("records")}


def _label(person_id: str, names: dict[str, str]) -> str:
    return f"{names.get(person_id, '')} ({person_id})".strip()


def decide(
    state: ApprovalState,
    rows: Sequence[dict[str, Any]],
    tables: CodeTables,
    system: str,
    identity_system: str | None = None,
) -> OaDecision:
    """The OA's decision on ``rows`` (ledger rows) as oafin applies it (see the module docstring).
    ``identity_system``: whose ids in ``identities.csv`` the OA's user ids are (default ``system``;
    an API version of an OA shares its people with the other, ``Approvals.identity_system``)."""
    names = _people(tables)
    ids = identity_system or system
    where = f"{system} instance {state.instance_id}"

    def who(user_ids: list[str]) -> list[str]:
        labels = []
        for u in user_ids:
            pid = tables.person_by_identity(ids, u)
            labels.append(_label(pid, names) if pid else f"{system} user {u} (unmapped)")
        return labels

    if state.status in ("rejected", "withdrawn"):
        decision = "refuse" if state.status == "rejected" else "withdraw"
        by = ", ".join(who(state.deciders(decision))) or "nobody on record"
        verb = "rejected" if state.status == "rejected" else "withdrawn"
        reason = f"{verb} in OA {where} by {by}: nothing is sent"
        return OaDecision(
            state.status, f"oa {where}: {by}", refused={r["idempotency_key"]: reason for r in rows}
        )
    if state.status != "approved":
        return OaDecision(state.status, f"oa {where}")
    agreed = state.approvers
    mapped = [(u, tables.person_by_identity(ids, u)) for u in agreed]
    approvers = [{"external_id": u, "person_id": p, "name": names.get(p or "", "")} for u, p in mapped]
    actor = f"oa {where}: " + ", ".join(who(agreed)) if agreed else f"oa {where}"
    out = OaDecision("approved", actor, approvers=approvers)
    unmapped = [u for u, p in mapped if p is None]
    for r in rows:
        key = r["idempotency_key"]
        if not state.human_approvers:
            out.refused[key] = (
                f"refused: OA {where} is approved, but no person's approval is on its record "
                "(an automatic pass is not an approval)"
            )
        elif unmapped:
            out.refused[key] = (
                f"refused: approver(s) {', '.join(unmapped)} of OA {where} are not in the identities "
                f"table for {ids}, so segregation of duties cannot be checked; add them to identities.csv"
            )
        elif state.row_decisions is not None and not state.row_decisions.get(marker_for(key), False):
            out.refused[key] = f"not approved in the detail table of OA {where}"
        elif r.get("applicant_id") and r["applicant_id"] in [p for _, p in mapped]:
            out.refused[key] = (
                f"refused: {_label(r['applicant_id'], names)} approved OA {where} but applied for claim "
                f"{r.get('claim_no')}; segregation of duties forbids approving a correction to one's own "
                "claim. Ask another approver."
            )
        else:
            out.approved[key] = actor
    return out


def record(engine: Engine, batch: dict[str, Any], decision: OaDecision, now: datetime | None = None) -> bool:
    """Write ``decision`` for ``batch``: the batch and every action, in one transaction, only if the
    batch is still open (False: another check decided it first; nothing written)."""
    now = now or datetime.now(UTC)
    where = {"batch": batch["batch_id"], "instance_id": batch["instance_id"]}
    try:
        with ledger.writing(engine) as conn:
            approvals.decide(
                conn,
                batch["batch_id"],
                decision.status,
                actor=decision.actor,
                approvers=decision.approvers,
                detail={"approved": sorted(decision.approved), "refused": sorted(decision.refused)},
                now=now,
            )
            known = {r["idempotency_key"]: r for r in ledger.rows(conn, approvals.keys_of(batch))}
            for key, label in decision.approved.items():
                if known.get(key, {}).get("status") == "proposed":
                    ledger.transition(
                        conn,
                        key,
                        "approved",
                        event="approved",
                        actor=label,
                        detail={
                            "via": approvals.VIA_OA,
                            **where,
                            "approvers": [a["person_id"] for a in decision.approvers],
                        },
                        approved_by=label,
                        approved_at=now,
                        now=now,
                    )
            event = REFUSAL_EVENTS[decision.status]
            for key, reason in decision.refused.items():
                if key in known:
                    ledger.note(conn, key, event, decision.actor, {"reason": reason, **where}, now)
    except approvals.StaleBatch:
        return False
    return True


def check(engine: Engine, settings: Settings, tables: CodeTables, batch_id: str, client: Any) -> OaOutcome:
    """Read the batch's instance and, once decided, record the decision (exactly once)."""
    with engine.connect() as conn:
        batch = approvals.get(conn, batch_id)
    if batch is None:
        raise KeyError(f"no OA approval batch {batch_id}")
    if batch["status"] == "submitting":
        batch = ensure_instance(engine, settings, batch, client)
        if batch["status"] == "submitting":  # another process is creating its instance right now
            return OaOutcome(batch_id, None, "submitting")
    if batch["status"] in approvals.DECIDED:
        return _outcome(engine, batch, newly=False)
    source = settings.source(batch["source"])
    api = system_approvals(source)
    state = api.read(client, str(batch["instance_id"]))
    if state.status == "pending":
        return OaOutcome(batch_id, batch["instance_id"], "open")
    rows = _rows_in_order(engine, approvals.keys_of(batch))
    decision = decide(state, rows, tables, source.system, getattr(api, "identity_system", None))
    newly = record(engine, batch, decision)
    for key, reason in decision.refused.items():
        logger.warning("%s: %s", key[:16], reason)
    with engine.connect() as conn:
        stored = approvals.get(conn, batch_id)
    assert stored is not None
    return _outcome(engine, stored, newly=newly)


def _outcome(engine: Engine, batch: dict[str, Any], *, newly: bool) -> OaOutcome:
    """A decided batch as the audit log recorded it (approved and refused actions, with reasons)."""
    with engine.connect() as conn:
        trail = audit.entries(conn, approvals.subject(batch["batch_id"]))
        decided: dict[str, Any] = next(
            (json.loads(e.payload) for e in reversed(trail) if e.event == "oa_decided"), {}
        )
        refused_keys = list(decided.get("refused", []))
        trails = ledger.trails(conn, refused_keys) if refused_keys else {}
    reasons = {}
    for key, entries in trails.items():
        notes = [
            e
            for e in entries
            if e.event in REFUSAL_EVENTS.values() and json.loads(e.payload).get("batch") == batch["batch_id"]
        ]
        if notes:
            reasons[key] = str(json.loads(notes[-1].payload).get("reason", ""))
    keys = approvals.keys_of(batch)
    approved = set(decided.get("approved", []))
    return OaOutcome(
        batch["batch_id"],
        batch["instance_id"],
        batch["status"],
        approved=[k for k in keys if k in approved],
        refused={k: reasons.get(k, "") for k in keys if k in set(refused_keys)},
        decided_by=batch["decided_by"],
        newly_decided=newly,
    )


def check_open(engine: Engine, settings: Settings, tables: CodeTables, client: Any) -> list[OaOutcome]:
    """``check`` every open batch (the scheduled check's work, before it pushes)."""
    with engine.connect() as conn:
        open_ids = [b["batch_id"] for b in approvals.batches(conn, approvals.OPEN)]
    return [check(engine, settings, tables, batch_id, client) for batch_id in open_ids]


def check_and_push(
    engine: Engine, settings: Settings, tables: CodeTables, client: Any | None = None
) -> dict[str, Any]:
    """The scheduled check: every open batch is read; approved actions are pushed through the
    ledger (exactly once: done ones are skipped, another process's are ``busy``), including those
    of batches decided earlier whose push has not finished."""
    from oafin.pipeline.corrections.push import push_approved

    if client is None:
        with oa_client(settings) as opened:
            outcomes = check_open(engine, settings, tables, opened)
    else:
        outcomes = check_open(engine, settings, tables, client)
    with engine.connect() as conn:
        approved_batches = approvals.batches(conn, ("approved",))
        status = {r["idempotency_key"]: r["status"] for r in ledger.rows(conn)}
    keys = [
        k for b in approved_batches for k in approvals.keys_of(b) if status.get(k) in ("approved", "pending")
    ]
    results = push_approved(engine, settings, keys) if keys else []
    return {"batches": outcomes, "results": results}


def waiting_keys(engine: Engine, keys: Sequence[str]) -> list[str]:
    """Those of ``keys`` still waiting for an approval (``proposed`` in the ledger)."""
    with engine.connect() as conn:
        status = {r["idempotency_key"]: r["status"] for r in ledger.rows(conn, list(keys))}
    return [k for k in keys if status.get(k) == "proposed"]


def batch_ids_for(engine: Engine, keys: Sequence[str]) -> list[str]:
    """The latest batch of each of ``keys`` that has one, each once, oldest first."""
    with engine.connect() as conn:
        latest = approvals.latest_by_key(conn)
    return list(dict.fromkeys(latest[k]["batch_id"] for k in keys if k in latest))


def mark_waiting(engine: Engine, batch_ids: Sequence[str], flow_run_id: str | None) -> None:
    """Record the run suspended on these batches (the scheduled check resumes it)."""
    with ledger.writing(engine) as conn:
        for batch_id in batch_ids:
            approvals.set_flow_run(conn, batch_id, flow_run_id)


def decided_waiting_runs(engine: Engine) -> list[tuple[str, str]]:
    """(batch id, flow run id) of decided batches a suspended corrections run still waits on."""
    with engine.connect() as conn:
        return [
            (b["batch_id"], str(b["flow_run_id"]))
            for b in approvals.batches(conn, approvals.DECIDED)
            if b["flow_run_id"]
        ]
