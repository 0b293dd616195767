"""The corrections flow under the session's Prefect harness: approval through Prefect's API,
segregation of duties, a crash between a push and its ledger write, the CLI."""

from __future__ import annotations

import contextvars
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from flows.corrections import corrections_command
from oafin.cli import main as cli_main
from oafin.config import load_settings
from oafin.pipeline.corrections.service import propose
from oafin.pipeline.runtime import code_tables
from oafin.warehouse import audit, ledger
from oafin.warehouse.audit import audit_log
from tests import test_corrections_helpers as helpers

reconciled_warehouse = helpers.reconciled_warehouse
fresh_sandbox = helpers.fresh_sandbox
corrections_setup = helpers.corrections_setup

AUTO_ALL = "\n".join(
    f'[[corrections.auto_approve]]\nname = "all-{a}"\naction = "{a}"\n'
    for a in ("oa_status_comment", "finance_create_bill", "finance_flag_recall")
)
REPO = Path(__file__).resolve().parents[1]


def _rows(engine):
    with engine.connect() as conn:
        return {r["idempotency_key"]: r for r in ledger.rows(conn)}


def _resume_when_paused(run_input: dict, found: dict, timeout: float = 60.0) -> None:
    """Find the paused corrections run through Prefect's API and answer it, as the UI would."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.flow_runs import resume_flow_run

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["oafin-corrections"])),
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
                ),
            )
            if runs:
                found["flow_run_id"] = runs[0].id
                resume_flow_run(runs[0].id, run_input=run_input)
                return
            time.sleep(0.2)


@pytest.mark.e2e
def test_the_flow_waits_for_an_approval_given_through_prefects_api(
    prefect_harness, corrections_setup, sandbox_dataset
) -> None:
    from flows.corrections import corrections, type_field

    make, engine, sandbox = corrections_setup
    config = make()
    settings = load_settings(config)
    proposed = propose(
        engine,
        code_tables(settings),
        comment_userid=helpers.COMMENT_USER,
        targets=helpers.chain_targets(settings),
    )
    rows = _rows(engine)
    # The approver is the applicant of the first proposal's claim: that one must be refused.
    own = rows[proposed.keys[0]]
    approver = own["applicant_id"]
    own_keys = {k for k, r in rows.items() if r["applicant_id"] == approver}

    found: dict = {}
    context = contextvars.copy_context()  # the harness's API URL lives in a context variable
    answer = {"approver": approver, **{type_field(r["action"]): True for r in rows.values()}}
    resumer = threading.Thread(target=context.run, args=(_resume_when_paused, answer, found))
    resumer.start()
    summary = corrections(config_path=str(config), apply=True)
    resumer.join()

    assert "flow_run_id" in found, "the flow never paused for approval"
    assert set(summary["refused"]) == own_keys
    assert all("segregation of duties" in reason for reason in summary["refused"].values())
    after = _rows(engine)
    pushed = {r["key"] for r in summary["results"] if r["outcome"] == "pushed"}
    assert pushed == set(rows) - own_keys
    assert all(after[k]["status"] == "proposed" for k in own_keys)
    assert {after[k]["approved_by"] for k in pushed} == {summary["approver"]}
    assert summary["approver"].endswith(f"({approver})")
    assert len(sandbox.received_writes("dingtalk")) == sum(
        r["action"] == "oa_status_comment" for r in (after[k] for k in pushed)
    )
    with engine.connect() as conn:
        report = audit.verify(conn)
        refused = [e for e in audit.entries(conn) if e.event == "refused"]
    assert report.ok and f"{report.head_seq}:{report.head_hash}" == summary["audit_head"]
    assert {e.subject for e in refused} == own_keys


@pytest.mark.e2e
def test_a_crash_between_push_and_ledger_write_does_not_push_twice(
    prefect_harness, corrections_setup, tmp_path
) -> None:
    from prefect.settings import PREFECT_API_URL

    from flows.corrections import corrections

    make, engine, sandbox = corrections_setup
    config = make(AUTO_ALL)
    settings = load_settings(config)
    proposed = propose(
        engine,
        code_tables(settings),
        comment_userid=helpers.COMMENT_USER,
        targets=helpers.chain_targets(settings),
    )
    victim = next(k for k in proposed.keys if _rows(engine)[k]["action"] == "finance_create_bill")
    claim_no = _rows(engine)[victim]["claim_no"]

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    run = subprocess.run(  # the test-only runner installs the crash; the product has no such switch
        [
            sys.executable,
            "-m",
            "tests.run_with_crash",
            victim[:16],
            "corrections",
            "--config",
            str(config),
            "--apply",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == -signal.SIGKILL, run.stderr[-3000:]
    assert _rows(engine)[victim]["status"] == "pending"  # the call went out; the ledger never heard back
    saves = [
        w
        for w in sandbox.received_writes("kingdee")
        if w["data"].get("Model", {}).get("F_OAFIN_OANo") == claim_no
    ]
    assert len(saves) == 1

    summary = corrections(config_path=str(config), apply=True)  # the re-run, without the crash hook

    outcome = {r["key"]: r["outcome"] for r in summary["results"]}
    assert outcome[victim] == "recovered"
    assert all(r["status"] == "done" for r in _rows(engine).values())
    saves = [
        w
        for w in sandbox.received_writes("kingdee")
        if w["data"].get("Model", {}).get("F_OAFIN_OANo") == claim_no
    ]
    assert len(saves) == 1, "the bill was created twice"
    calls = [
        (w["call"], str(w.get("formid")), str(w["data"].get("Model", w["data"].get("Numbers"))))
        for w in sandbox.received_writes("kingdee")
    ]
    calls += [
        ("comment", w["body"]["process_instance_id"], w["body"]["text"])
        for w in sandbox.received_writes("dingtalk")
    ]
    assert len(calls) == len(set(calls)), "some action reached its system twice"


@pytest.mark.e2e
def test_cli_dry_run_sends_nothing_and_audit_verify_finds_tampering(
    prefect_harness, corrections_setup, capsys
) -> None:
    make, engine, sandbox = corrections_setup
    config = make()
    assert cli_main(["corrections", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "dry run (nothing sent" in out
    assert sandbox.received_writes() == []
    assert {r["status"] for r in _rows(engine).values()} == {"proposed"}

    assert cli_main(["audit", "verify", "--config", str(config)]) == 0
    assert "audit log OK" in capsys.readouterr().out
    with engine.begin() as conn:
        conn.execute(audit_log.update().where(audit_log.c.seq == 2).values(payload='{"preview":"edited"}'))
    assert cli_main(["audit", "verify", "--config", str(config)]) == 1
    assert "seq 2: content does not match its hash" in capsys.readouterr().out


@pytest.mark.e2e
def test_a_failing_corrections_run_says_one_line_and_keeps_the_traceback(
    prefect_harness, corrections_setup, capsys, tmp_path, monkeypatch
) -> None:
    make, engine, sandbox = corrections_setup
    monkeypatch.setenv("OAFIN_LOG_DIR", str(tmp_path))
    monkeypatch.delenv("OAFIN_VERBOSE", raising=False)
    # the CLI refuses such a period before anything starts (exit 2); the command itself, reached
    # another way (a deployment, a script), fails in one line and keeps the traceback
    assert cli_main(["corrections", "--config", str(make()), "--period", "2026-10\n"]) == 2
    capsys.readouterr()
    assert corrections_command(make(), "2026-10\n", False) == 1
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if x.startswith("oafin: corrections failed"))
    assert "period must look like 2026-10" in line and "oafin-errors.log" in line
    kept = (tmp_path / "oafin-errors.log").read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in kept and "Period.parse" not in line
    assert "periods.py" in kept  # where it was raised, which the one line does not say
    assert sandbox.received_writes() == []


def test_apply_prints_the_runs_ui_url_and_exits_non_zero_when_nobody_approves(
    prefect_harness, corrections_setup, capsys
) -> None:
    make, engine, sandbox = corrections_setup
    config = make("approval_timeout_seconds = 2\n")
    assert cli_main(["corrections", "--config", str(config), "--apply"]) == 1
    err = capsys.readouterr().err
    assert "/runs/flow-run/" in err and "press Resume" in err, err
    assert "no approval within 2 s" in err
    assert sandbox.received_writes() == []
    assert {r["status"] for r in _rows(engine).values()} == {"proposed"}
