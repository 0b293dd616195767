"""The steps of the corrections flow as plain functions over the warehouse."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from mappings.code_tables import CodeTables
from oafin.periods import Period
from oafin.pipeline.corrections.approval import Decision
from oafin.pipeline.corrections.model import marker_for
from oafin.pipeline.corrections.propose import TOLERANCE_FEN, build_proposals
from oafin.reporting.markdown import md_text
from oafin.warehouse import audit, ledger


@dataclass
class Proposed:
    keys: list[str] = field(default_factory=list)  # this run's proposals, in order
    new: list[str] = field(default_factory=list)  # those the ledger did not hold yet
    skipped: list[dict[str, Any]] = field(default_factory=list)


def propose(
    engine: Engine,
    tables: CodeTables,
    *,
    comment_userid: str | None,
    period: str | None = None,
    targets: Mapping[str, str] | None = None,
    options: Mapping[str, Any] | None = None,
    tolerance_fen: int = TOLERANCE_FEN,
) -> Proposed:
    """Build the proposals from open exceptions and record the new ones (ledger ``proposed`` + audit).

    ``targets``: action → system (``action_targets`` of the config's chain); ``options``: the
    corrections settings the write actions read.
    """
    if period is not None:
        period = Period.parse(period).name  # strictly: "2026-10\n" is not a second period
    with ledger.writing(engine) as conn:
        proposals = build_proposals(
            conn,
            tables,
            comment_userid=comment_userid,
            period=period,
            targets=targets,
            options=options,
            tolerance_fen=tolerance_fen,
        )
        rows = [a.ledger_row() for a in proposals.actions]
        new = ledger.record_proposals(conn, rows)
    return Proposed([r["idempotency_key"] for r in rows], new, proposals.skipped)


def ledger_rows(engine: Engine, keys: list[str]) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        found = {r["idempotency_key"]: r for r in ledger.rows(conn, keys)}
    return [found[k] for k in keys if k in found]


def pending_keys(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [r["idempotency_key"] for r in ledger.rows(conn) if r["status"] == "pending"]


def record_decision(engine: Engine, decision: Decision, now: datetime | None = None) -> None:
    """Approved keys move to ``approved`` with who approved them; refusals are audited with the reason."""
    now = now or datetime.now(UTC)
    with ledger.writing(engine) as conn:
        known = {r["idempotency_key"]: r for r in ledger.rows(conn, [*decision.approved, *decision.refused])}
        for key, by in decision.approved.items():
            if known[key]["status"] == "proposed":
                ledger.transition(
                    conn,
                    key,
                    "approved",
                    event="approved",
                    actor=by,
                    approved_by=by,
                    approved_at=now,
                    now=now,
                )
        trails = ledger.trails(conn, [k for k in decision.refused if k in known])
        for key, reason in decision.refused.items():
            actor = decision.approver or "unknown approver"
            if key in known:
                last = trails.get(key, [])[-1:]
                if last and (last[0].event, last[0].actor, last[0].payload) == (
                    "refused",
                    actor,
                    audit.canonical_json({"reason": reason}),
                ):
                    continue  # the same answer again (a resumed run re-reads its saved input)
                ledger.note(conn, key, "refused", actor, {"reason": reason}, now)
            else:
                audit.append(conn, "refused", actor, "approval", {"entry": key, "reason": reason}, now)


def approval_table(rows: list[dict[str, Any]]) -> str:
    """The list an approver sees (markdown): id to type, action, claim, amount, preview."""
    lines = [
        "Type your person_id (or your id in one of the systems) as approver, and in approve "
        "`all` or the ids of the actions to push. You may not approve actions on your own claims.",
        "",
        "| id | action | exception | claim | amount (fen) | what will happen |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:  # every value escaped: claim numbers and previews carry source text (md_text)
        cells = [
            f"`{marker_for(r['idempotency_key'])[7:-1]}`",  # a hex prefix: safe in a code span
            *(md_text(r.get(k)) for k in ("action", "exception_type", "claim_no", "amount_fen", "preview")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
