"""The corrections flow with approval in the OA (issue #17), under the session's Prefect harness: a
run from a deployment suspends while the OA instance is open (its process exits: no worker is
held), the scheduled check pushes what the OA approved and resumes it, and the resumed run pushes
nothing twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from oafin.audit import verify_url
from oafin.config import load_settings
from oafin.pipeline.runtime import code_tables
from oafin.warehouse import approvals, ledger
from tests import test_corrections_helpers as helpers
from tests.test_corrections_oa import _dingtalk_id, oa_config

reconciled_warehouse = helpers.reconciled_warehouse
fresh_sandbox = helpers.fresh_sandbox
corrections_setup = helpers.corrections_setup
REPO = Path(__file__).resolve().parents[1]
ENTRYPOINT = "flows/corrections.py:corrections"


def _worker(flow_run_id, env: dict) -> subprocess.CompletedProcess:
    """What a Prefect worker does with a scheduled run: start the flow engine in a new process."""
    return subprocess.run(
        [sys.executable, "-m", "prefect.flow_engine", ENTRYPOINT],
        cwd=REPO,
        env={**env, "PREFECT__FLOW_RUN_ID": str(flow_run_id)},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.e2e
def test_a_deployed_run_suspends_while_the_oa_decides_and_the_check_pushes_once(
    prefect_harness, corrections_setup
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    from flows.corrections import check_oa_approvals

    make, engine, sandbox = corrections_setup
    tables = code_tables(load_settings(make()))
    originator, approver = "P0001", "P0002"  # the sandbox's finance director and a manager
    config = oa_config(make, tables, _dingtalk_id(tables, originator), [_dingtalk_id(tables, approver)])
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}

    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("oafin-corrections")
        deployment_id = client.create_deployment(
            flow_id=flow_id,
            name="corrections-oa-test",
            entrypoint=ENTRYPOINT,
            path=str(REPO),
            parameters={"config_path": str(config), "period": None, "apply": True},
        )
        run = client.create_flow_run_from_deployment(deployment_id)

    first = _worker(run.id, env)
    assert first.returncode == 0, first.stderr[-3000:]
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(run.id).state
    assert state is not None and state.is_paused() and state.name == "Suspended", state
    with engine.connect() as conn:
        [batch] = approvals.batches(conn)
        rows = {r["idempotency_key"]: r for r in ledger.rows(conn)}
    assert batch["status"] == "open" and batch["flow_run_id"] == str(run.id)
    assert set(approvals.keys_of(batch)) == set(rows)  # every proposal went to the OA
    assert sandbox.received_writes() == [], "pushed before the OA decided"

    # the approver decides in DingTalk; the scheduled check (a deployment on a cron) runs
    sandbox.dingtalk.desk.decide(batch["instance_id"], "approve")
    done = check_oa_approvals(config_path=str(config))
    own = {k for k, r in rows.items() if r["applicant_id"] == approver}
    pushed = [r for r in done["results"] if r["outcome"] == "pushed"]
    assert {r["key"] for r in pushed} == set(rows) - own
    assert done["resumed"] == [str(run.id)]
    writes = len(sandbox.received_writes())
    assert writes > 0

    second = _worker(run.id, env)  # the resumed run, on whichever worker picks it up
    assert second.returncode == 0, second.stderr[-3000:]
    with get_client(sync_client=True) as client:
        final = client.read_flow_run(run.id).state
    assert final is not None and final.is_completed(), final
    assert len(sandbox.received_writes()) == writes, "the resumed run pushed again"
    with engine.connect() as conn:
        after = {r["idempotency_key"]: r for r in ledger.rows(conn)}
    assert all(after[k]["status"] == "done" for k in set(rows) - own)
    assert all(after[k]["status"] == "proposed" for k in own)
    assert all(after[k]["approved_by"].endswith(f"({approver})") for k in set(rows) - own)
    assert verify_url(load_settings(config).warehouse_url).ok


@pytest.mark.e2e
def test_a_run_killed_after_creating_the_instance_is_finished_by_the_check_pushing_once(
    prefect_harness, corrections_setup, capsys
) -> None:
    import signal

    from prefect.settings import PREFECT_API_URL

    from oafin.cli import main as cli_main

    make, engine, sandbox = corrections_setup
    tables = code_tables(load_settings(make()))
    approver = "P0002"
    config = oa_config(make, tables, _dingtalk_id(tables, "P0001"), [_dingtalk_id(tables, approver)])
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    run = subprocess.run(  # the test-only runner installs the crash; the product has no such switch
        [
            sys.executable,
            "-m",
            "tests.run_with_crash",
            "after-create",
            "corrections",
            "--config",
            str(config),
            "--apply",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == -signal.SIGKILL, run.stderr[-3000:]
    desk = sandbox.dingtalk.desk
    assert len(desk.calls) == 1 and desk.calls[0]["call"] == "processinstance/create"
    with engine.connect() as conn:
        [batch] = approvals.batches(conn)
        rows = {r["idempotency_key"]: r for r in ledger.rows(conn)}
    assert batch["status"] == "submitting" and batch["instance_id"] is None

    desk.set_script("approve", after_reads=0)
    assert cli_main(["corrections", "--config", str(config), "--check-oa"]) == 0
    out = capsys.readouterr().out
    assert f"OA instance {desk.calls[0]['instance_id']}" in out and "approved" in out
    assert [c["call"] for c in desk.calls].count("processinstance/create") == 1, "a second instance"
    own = {k for k, r in rows.items() if r["applicant_id"] == approver}
    with engine.connect() as conn:
        after = {r["idempotency_key"]: r for r in ledger.rows(conn)}
    assert {k for k, r in after.items() if r["status"] == "done"} == set(rows) - own
    writes = len(sandbox.received_writes())
    assert cli_main(["corrections", "--config", str(config), "--check-oa"]) == 0  # the next tick
    assert len(sandbox.received_writes()) == writes, "pushed twice"
    assert verify_url(load_settings(config).warehouse_url).ok
