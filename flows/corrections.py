"""The corrections flow: open exceptions → proposals → approval (auto rules, then a human) → push.

Dry-run by default: proposals are recorded in the ledger and shown, nothing is sent.
With ``apply=True`` the flow pauses for a human approval of whatever the config's
auto-approve rules do not cover (``pause_flow_run`` with a typed ``RunInput``; answer it in
the Prefect UI, or with ``resume_flow_run(flow_run_id, run_input={...})``), then pushes each
approved action exactly once (see ``oafin.pipeline.corrections.push``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field

from oafin.config import load_settings
from oafin.failure import report_failure
from oafin.pipeline.corrections.approval import Decision, auto_approve, review
from oafin.pipeline.corrections.service import approval_table, ledger_rows, pending_keys, record_decision
from oafin.pipeline.runtime import code_tables, settings_from, warehouse
from oafin.warehouse import audit
from tasks.corrections import propose_corrections, push_corrections


class ApprovalInput(RunInput):
    """What the approver fills in on the paused run's page (prefect-notes.md: pause_flow_run + RunInput)."""

    approver: str = Field(description="your person_id, or your id in one of the systems (identities table)")
    approve: list[str] = Field(
        default_factory=list, description='"all", or the ids (first 16 characters) of the actions to push'
    )


@flow(name="oafin-corrections", flow_run_name="corrections-{period}")
def corrections(config_path: str, period: str | None = None, apply: bool = False) -> dict[str, Any]:
    """Propose corrections for the open exceptions (of ``period``, if given); push approved ones if ``apply``."""
    log = get_run_logger()
    settings = settings_from(config_path)
    engine = warehouse(settings.warehouse_url)
    proposed = propose_corrections(config_path, period)
    rows = ledger_rows(engine, proposed["keys"])
    summary: dict[str, Any] = {
        "period": period,
        "apply": apply,
        "proposed": len(rows),
        "new": len(proposed["new"]),
        "skipped": proposed["skipped"],
        "actions": [
            {k: r.get(k) for k in ("idempotency_key", "action", "claim_no", "status", "preview")}
            for r in rows
        ],
        "refused": {},
        "results": [],
    }
    if rows:
        create_table_artifact(
            key="oafin-corrections-proposed",
            table=[
                {
                    k: r.get(k)
                    for k in ("idempotency_key", "action", "exception_type", "claim_no", "status", "preview")
                }
                for r in rows
            ],
            description="Corrections proposed by this run (status from the ledger)",
        )
    if not apply:
        log.info("dry run: %d actions proposed, nothing sent (pass apply=True / --apply to push)", len(rows))
        summary["dry_run"] = True
        return _finish(engine, summary)

    waiting = [r for r in rows if r["status"] == "proposed"]
    auto = auto_approve(waiting, settings.corrections.auto_approve)
    if auto:
        record_decision(engine, Decision(approved=auto))
        log.info("auto-approved %d actions by config rules", len(auto))
    manual = [r for r in waiting if r["idempotency_key"] not in auto]
    if manual:
        description = approval_table(manual)
        create_markdown_artifact(key="oafin-corrections-approval", markdown=description)
        try:
            answer = pause_flow_run(
                wait_for_input=ApprovalInput.with_initial_data(
                    description=description, approver="", approve=[]
                ),
                timeout=settings.corrections.approval_timeout_seconds,
                poll_interval=settings.corrections.approval_poll_seconds,
            )
        except FlowPauseTimeout:
            log.warning(
                "no approval within %ss: nothing beyond auto-approved actions is pushed",
                settings.corrections.approval_timeout_seconds,
            )
            answer = None
        if answer is not None:
            decision = review(answer.approver, answer.approve, manual, code_tables(settings))
            record_decision(engine, decision)
            summary["approver"] = decision.approver or answer.approver
            summary["refused"] = decision.refused
            for key, reason in decision.refused.items():
                log.warning("%s: %s", key[:16], reason)
            log.info(
                "%s approved %d actions, %d refused",
                summary["approver"],
                len(decision.approved),
                len(decision.refused),
            )

    keys = [*proposed["keys"], *(k for k in pending_keys(engine) if k not in proposed["keys"])]
    summary["results"] = push_corrections(config_path, keys)
    counts: dict[str, int] = {}
    for r in summary["results"]:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    summary["outcomes"] = counts
    log.info("pushed: %s", counts)
    return _finish(engine, summary)


def _finish(engine: Any, summary: dict[str, Any]) -> dict[str, Any]:
    """Record the audit log's head on the run page: kept outside the warehouse, it anchors the chain."""
    with engine.connect() as conn:
        seq, digest = audit.head(conn)
    summary["audit_head"] = f"{seq}:{digest}"
    create_markdown_artifact(
        key="oafin-audit-head",
        markdown=f"Audit log head after this run: `{seq}:{digest}`\n\nCheck with `oafin audit verify --expect-head {seq}:{digest}`.",
    )
    return summary


def corrections_command(config: Path, period: str | None, apply: bool) -> int:
    """``oafin corrections``: run the flow, print what was proposed and what happened."""
    load_settings(config)  # a bad config fails here, before Prefect starts
    try:
        summary = corrections(config_path=str(Path(config).resolve()), period=period, apply=apply)
    except Exception as exc:  # the operator gets one clear line; the traceback is kept
        report_failure("corrections", exc)
        return 1
    mode = "applied" if apply else "dry run (nothing sent; --apply to push)"
    print(f"corrections {mode}: {summary['proposed']} proposed ({summary['new']} new)")
    for row in summary["actions"]:
        print(f"  {row['idempotency_key'][:16]} [{row['status']}] {row['action']}: {row['preview']}")
    skipped: dict[tuple[str, str], int] = {}
    for item in summary["skipped"]:
        why = (item["exception_type"], item["reason"])
        skipped[why] = skipped.get(why, 0) + 1
    for (kind, reason), count in sorted(skipped.items()):
        print(f"  no action for {count} {kind}: {reason}")
    for key, reason in summary["refused"].items():
        print(f"  refused {key[:16]}: {reason}")
    for result in summary["results"]:
        print(f"  {result['key'][:16]} {result['action']}: {result['outcome']}")
    print(f"audit log head: {summary['audit_head']}")
    return 0
