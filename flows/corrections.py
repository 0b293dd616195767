"""The corrections flow: open exceptions → proposals → approval (auto rules, then a human) → push.

Dry-run by default: proposals are recorded in the ledger and shown, nothing is sent.
With ``apply=True``:

- actions the config sends to the OA (``corrections.approval = "oa"``, or ``corrections.oa.
  required_for_*``) become one approval instance in the OA (issue #17); the auto rules and the
  Prefect form never approve them;
- the config's auto-approve rules approve what they cover;
- the flow pauses for a human approval of the rest (``pause_flow_run`` with a typed
  ``RunInput``; answer it in the Prefect UI, or with ``resume_flow_run(flow_run_id,
  run_input={...})``); that approver is recorded as self-declared;
- each approved action is pushed exactly once (``oafin.pipeline.corrections.push``);
- while the OA instance is open, a run started from a deployment *suspends*
  (``suspend_flow_run``: the process exits, no worker is held); the scheduled check
  (``check_oa_approvals``, deployment ``corrections-oa-check-*``) records the OA's decision,
  pushes what it approved, and resumes the run, which re-runs, pushes nothing twice and reports.
  A run started without a deployment (``oafin corrections --apply``) does not wait: it says which
  instance is open, and the check (``oafin corrections --check-oa``) finishes the work.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run, resume_flow_run, suspend_flow_run
from prefect.input import RunInput
from pydantic import BaseModel, Field, create_model

from oafin.config import load_settings
from oafin.failure import report_failure
from oafin.pipeline.corrections import oa
from oafin.pipeline.corrections.approval import Decision, auto_approve, review
from oafin.pipeline.corrections.service import approval_table, ledger_rows, pending_keys, record_decision
from oafin.pipeline.runtime import code_tables, settings_from, warehouse
from oafin.reporting.markdown import md_text
from oafin.warehouse import audit
from tasks.corrections import check_oa_approvals_task, oa_approval, propose_corrections, push_corrections

ACTION_TITLES = {
    "oa_status_comment": "post finance's status as a comment on the OA approval",
    "finance_create_bill": "create the missing reimbursement bill in finance",
    "finance_flag_recall": "flag a duplicate payment for recall in finance",
    "expense_write_voucher_no": "write the ERP voucher number back to the paid expense-platform document",
    "expense_comment": "comment on the expense-platform document",
}


class ApprovalInput(RunInput):
    """What the approver fills in on the paused run's page (prefect-notes.md: pause_flow_run + RunInput).

    ``approval_form`` adds, per action type, an "approve all" box, and per action one box titled
    with its claim, amount and target, described by what will be sent.
    """

    approver: str = Field(
        title="Approver (required)",
        description="your person_id, or your id in one of the systems (identities table)",
    )


def _yuan(fen: Any) -> str:
    return "" if fen is None else f"¥{int(fen) / 100:,.2f}"


def action_field(key: str) -> str:
    return f"action_{key[:16]}"


def type_field(action: str) -> str:
    return f"approve_all_{action}"


def approval_form(rows: list[dict[str, Any]]) -> type[ApprovalInput]:
    """The pause form for ``rows``: approve-all per action type, then a decision per action."""
    fields: dict[str, Any] = {}
    for action in sorted({r["action"] for r in rows}):
        n = sum(r["action"] == action for r in rows)
        fields[type_field(action)] = (
            bool,
            Field(False, title=f"Approve all {n}: {ACTION_TITLES.get(action, action)}"),
        )
    for r in rows:
        title = " · ".join(
            str(v)
            for v in (r.get("claim_no"), _yuan(r.get("amount_fen")), f"{r['system']}: {r['target']}")
            if v
        )
        fields[action_field(r["idempotency_key"])] = (
            bool,
            Field(False, title=f"Approve {title}", description=f"{r['action']}: {r['preview']}"),
        )
    return create_model("ApprovalForm", __base__=ApprovalInput, **fields)


def chosen_keys(answer: BaseModel, rows: list[dict[str, Any]]) -> list[str]:
    """The idempotency keys the approver ticked, one by one or by type."""
    values = answer.model_dump()
    return [
        r["idempotency_key"]
        for r in rows
        if values.get(type_field(r["action"])) or values.get(action_field(r["idempotency_key"]))
    ]


def approval_intro(rows: list[dict[str, Any]]) -> str:
    """The text above the pause form: what to do, and how many actions of each type wait."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["action"]] = counts.get(r["action"], 0) + 1
    lines = [
        f"**{len(rows)} corrections wait for your decision.** Type your person_id (or your id in "
        "one of the systems) as approver, then tick *Approve all* for a type, or single actions: "
        "each box names the claim, the amount and the target, and its help text says what will be "
        "sent. Nothing unticked is sent; it waits for a later run. You may not approve actions on "
        "your own claims.",
        "",
    ]
    lines += [f"- {n} × {md_text(ACTION_TITLES.get(a, a))}" for a, n in sorted(counts.items())]
    return "\n".join(lines)


def _announce_pause(log: Any, waiting: int, timeout: int) -> None:
    """Print and log where the approver answers: the paused run's page in the Prefect UI."""
    from prefect.runtime import flow_run
    from prefect.settings import PREFECT_API_URL
    from prefect.utilities.urls import url_for

    api = str(PREFECT_API_URL.value() or "")
    url = url_for("flow-run", obj_id=flow_run.id, default_base_url=api.removesuffix("/api")) or api
    line = f"waiting up to {timeout} s for an approval of {waiting} actions: open {url} and press Resume"
    print(f"oafin: {line}", file=sys.stderr, flush=True)
    log.info(line)


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

    required = {r["idempotency_key"] for r in rows if oa.requires_oa(r, settings)}
    waiting = [r for r in rows if r["status"] == "proposed" and r["idempotency_key"] not in required]
    auto = auto_approve(waiting, settings.corrections.auto_approve)
    if auto:
        record_decision(engine, Decision(approved=auto))
        log.info("auto-approved %d actions by config rules", len(auto))
    manual = [r for r in waiting if r["idempotency_key"] not in auto]
    to_oa = [k for k in proposed["keys"] if k in required]
    if settings.corrections.approval == "oa":
        to_oa += [r["idempotency_key"] for r in manual]
        manual = []
    if manual:
        create_markdown_artifact(
            key="oafin-corrections-approval",
            markdown=approval_table(manual),
            description="Corrections waiting for a human approval",
        )
        description = approval_intro(manual)
        timeout = settings.corrections.approval_timeout_seconds
        _announce_pause(log, len(manual), timeout)
        try:
            answer = pause_flow_run(
                wait_for_input=approval_form(manual).with_initial_data(description=description),
                timeout=timeout,
                poll_interval=settings.corrections.approval_poll_seconds,
                key="operators-approval",  # a resumed run gets the saved answer, not a second pause
            )
        except FlowPauseTimeout:
            log.warning("no approval within %ss: nothing beyond auto-approved actions is pushed", timeout)
            summary["approval_timed_out"] = timeout
            answer = None
        if answer is not None:
            decision = review(answer.approver, chosen_keys(answer, manual), manual, code_tables(settings))
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

    batches: list[dict[str, Any]] = []
    if to_oa or oa.batch_ids_for(engine, proposed["keys"]):
        # this run's OA-bound actions are sent; every batch holding one of its actions is read
        batches = oa_approval(config_path, to_oa, proposed["keys"], period)
        summary["oa"] = batches
        for b in batches:
            summary["refused"].update(b["refused"])

    keys = [*proposed["keys"], *(k for k in pending_keys(engine) if k not in proposed["keys"])]
    summary["results"] = push_corrections(config_path, keys)
    counts: dict[str, int] = {}
    for r in summary["results"]:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    summary["outcomes"] = counts
    log.info("pushed: %s", counts)
    still_open = [b for b in batches if b["status"] in ("submitting", "open")]
    if still_open:
        _wait_for_oa(engine, settings, still_open, summary, log)
    return _finish(engine, summary)


def _wait_for_oa(
    engine: Any, settings: Any, batches: list[dict[str, Any]], summary: dict[str, Any], log: Any
) -> None:
    """Suspend while the OA decides (from a deployment), else say what is open and who finishes it."""
    import hashlib

    from prefect.runtime import deployment, flow_run

    ids = sorted(b["batch_id"] for b in batches)
    summary["waiting_in_oa"] = [{"batch_id": b["batch_id"], "instance_id": b["instance_id"]} for b in batches]
    instances = ", ".join(str(b["instance_id"]) for b in batches)
    if not deployment.id:
        log.info(
            "waiting for approval in the OA (instance %s): the scheduled check (deployment "
            "corrections-oa-check-*, or `oafin corrections --check-oa`) pushes what it approves",
            instances,
        )
        return
    oa.mark_waiting(engine, ids, str(flow_run.id))
    _finish(engine, summary)  # the audit head as of the suspension, on the run page
    log.info("suspending until OA instance %s is decided; the scheduled check resumes this run", instances)
    key = "oa-" + hashlib.sha256(",".join(ids).encode()).hexdigest()[:24]
    suspend_flow_run(timeout=settings.corrections.oa.wait_timeout_seconds, key=key)


@flow(name="oafin-corrections-check", flow_run_name="corrections-oa-check")
def check_oa_approvals(config_path: str) -> dict[str, Any]:
    """The scheduled check (issue #17): read every open OA approval instance; record each decision,
    push what it approved (exactly once, through the ledger), and resume the corrections runs that
    were suspended on it."""
    log = get_run_logger()
    settings = settings_from(config_path)
    engine = warehouse(settings.warehouse_url)
    done = check_oa_approvals_task(config_path)
    resumed = []
    for batch_id, run_id in oa.decided_waiting_runs(engine):
        try:
            resume_flow_run(UUID(run_id))
            resumed.append(run_id)
            log.info("resumed corrections run %s (its OA batch %s is decided)", run_id, batch_id[:12])
        except Exception as exc:  # a run cancelled or timed out meanwhile: the pushes are done anyway
            log.warning("corrections run %s was not resumed: %s", run_id, exc)
        oa.mark_waiting(engine, [batch_id], None)
    done["resumed"] = resumed
    return _finish(engine, done)


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


def print_oa(summary: dict[str, Any]) -> None:
    """The OA approval instances a run or check read, and what is still open."""
    for b in summary.get("oa", summary.get("batches", [])):
        who = f" by {b['decided_by']}" if b.get("decided_by") else ""
        print(
            f"  OA instance {b['instance_id']} (batch {b['batch_id'][:12]}): {b['status']}{who}; "
            f"{len(b['approved'])} approved, {len(b['refused'])} refused"
        )
    if summary.get("waiting_in_oa"):
        print(
            "  waiting for approval in the OA: the scheduled check (deployment corrections-oa-check-*, "
            "or `oafin corrections --check-oa --config ...`) pushes what it approves"
        )


def check_command(config: Path) -> int:
    """``oafin corrections --check-oa``: the scheduled check, once, from the command line."""
    from oafin.preflight import check_sources_reachable, check_warehouse

    settings = load_settings(config)
    check_warehouse(settings, Path(config).resolve())
    check_sources_reachable(settings, Path(config).resolve())
    try:
        done = check_oa_approvals(config_path=str(Path(config).resolve()))
    except Exception as exc:
        report_failure("corrections --check-oa", exc)
        return 1
    print(f"OA approvals checked: {len(done['batches'])} open instances read")
    print_oa(done)
    for result in done["results"]:
        print(f"  {result['key'][:16]} {result['action']}: {result['outcome']}")
    print(f"audit log head: {done['audit_head']}")
    return 0


NO_SERVER = (
    "corrections --apply waits for an approval on the run's page in the Prefect UI, so it needs a "
    "running Prefect server: start one (`.venv/bin/prefect server start`, in another terminal) and "
    "set PREFECT_API_URL (`export PREFECT_API_URL=http://127.0.0.1:4200/api`); "
    "without --apply nothing is sent and no server is needed"
)


def corrections_command(config: Path, period: str | None, apply: bool) -> int:
    """``oafin corrections``: run the flow, print what was proposed and what happened."""
    from oafin.preflight import ArgumentError, check_sources_reachable, check_warehouse

    settings = load_settings(config)  # a bad config fails here, before Prefect starts
    check_warehouse(settings, Path(config).resolve())
    if apply:
        from oafin.prefect_runtime import uses_ephemeral_server

        # a temporary server has no UI: nobody could ever answer the run page's form (an approval
        # in the OA needs no UI)
        if settings.corrections.approval == "prefect" and uses_ephemeral_server():
            raise ArgumentError(NO_SERVER)
        check_sources_reachable(settings, Path(config).resolve())
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
    waiting = 0
    for result in summary["results"]:
        if result["outcome"] == "not_approved":
            waiting += 1
            continue
        print(f"  {result['key'][:16]} {result['action']}: {result['outcome']}")
    if waiting:
        print(f"  {waiting} actions not approved: they wait for a later `--apply`")
    print_oa(summary)
    print(f"audit log head: {summary['audit_head']}")
    if summary.get("approval_timed_out"):
        print(
            f"oafin: no approval within {summary['approval_timed_out']} s; nothing beyond auto-approved "
            "actions was pushed. Run `--apply` again and answer on the run's page "
            "(corrections.approval_timeout_seconds sets the wait)",
            file=sys.stderr,
        )
        return 1
    return 0
