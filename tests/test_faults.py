"""The fault suite: each fault on 10 % of the calls, and the run still lands exactly what a
fault-free run lands (or, for faults that change the data, exactly what they should change).

The runs are the daily flow's data steps as plain functions (``oafin.run.run_plain``) over the
sandbox's real HTTP into a real SQLite warehouse; the flow itself with every fault mixed is in
tests/test_flow_daily.py, and a kill at random points is in tests/test_crash.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pandas as pd
import pytest

from oafin.connectors.limits import RetryPolicy
from oafin.run import run_plain
from oafin.sandbox.faults import TRANSPORT_KINDS
from oafin.sandbox.generator import generate
from oafin.sandbox_server import SandboxHandle, running_sandbox
from oafin.systems.dingtalk.twin_faults import DRIFT_FIELD, RENAMED_FIELD
from tests.test_orchestration_support import assert_same, snapshot, write_config

SEED = 11
RATE = 0.10
TIMEOUT = 0.3  # the client's read timeout; a "slow" answer takes SLOW seconds
SLOW = 0.5
# Faults after which the warehouse must equal the fault-free run's, table for table.
# The connectors' own retry policy, with short waits: what is tested is that the run heals, not
# how long it waits (the backoff itself is tested in tests/test_connectors_http.py).
QUICK_RETRY = RetryPolicy(base_delay=0.02, max_delay=0.2)
LOSSLESS = (*TRANSPORT_KINDS, "rate_limit_code", "token_expired", "duplicate_record")


@pytest.fixture(scope="module")
def fault_sandbox() -> Iterator[SandboxHandle]:
    """A sandbox of its own (100 claims: ~150 calls a run, so ~15 faults of a kind at 10 %)."""
    with running_sandbox(generate(seed=SEED, n_claims=100)) as handle:
        yield handle


@pytest.fixture(scope="module")
def baseline(fault_sandbox, tmp_path_factory) -> dict[str, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("baseline")
    fault_sandbox.reset()
    run_plain(_config(folder, fault_sandbox), fault_sandbox.dataset.period, full=True)
    assert not any(c.fault for c in fault_sandbox.calls)
    return snapshot(f"sqlite:///{folder / 'w.db'}")


def _config(folder, sandbox, *, small_pages: bool = False):
    # Small pages make list calls (where a record can show twice) a good share of the calls.
    return write_config(
        folder,
        sandbox,
        f"sqlite:///{folder / 'w.db'}",
        timeout_seconds=TIMEOUT,
        oa_page_size=2 if small_pages else None,
        finance_page_size=25 if small_pages else None,
    )


def _run_with(kind: str, sandbox: SandboxHandle, folder, seed: int = SEED) -> dict[str, pd.DataFrame]:
    sandbox.reset()
    sandbox.faults.set_rate(RATE, seed=seed, kinds=[kind], slow_seconds=SLOW)
    try:
        run_plain(
            _config(folder, sandbox, small_pages=kind == "duplicate_record"),
            sandbox.dataset.period,
            full=True,
            retry=QUICK_RETRY,
        )
    finally:
        sandbox.faults.set_rate(0.0)
    hits = [c for c in sandbox.calls if c.fault == kind]
    assert len(hits) >= 3, f"only {len(hits)} {kind} faults were served"
    return snapshot(f"sqlite:///{folder / 'w.db'}")


@pytest.mark.parametrize("kind", LOSSLESS)
def test_the_run_survives_the_fault_and_lands_the_same(kind, fault_sandbox, baseline, tmp_path):
    after = _run_with(kind, fault_sandbox, tmp_path)
    assert_same(baseline, after)


def test_schema_drift_new_fields_change_only_the_raw_payloads(fault_sandbox, baseline, tmp_path):
    after = _run_with("schema_drift", fault_sandbox, tmp_path)
    drifted = after["raw_record"]["payload"].str.contains(DRIFT_FIELD)
    assert drifted.sum() >= 3
    raw = ("payload", "payload_hash")
    assert_same(
        baseline,
        after,
        skip=("raw_record_version",),
        drop_columns={"raw_record": raw, "quarantine": raw},
    )
    # each drifted record keeps its history: the version seen, with the new field
    versions = after["raw_record_version"]
    assert len(versions) == len(baseline["raw_record_version"])
    assert versions["payload"].str.contains(DRIFT_FIELD).sum() == drifted.sum()


def test_a_renamed_field_sends_its_records_to_quarantine_with_the_reason(fault_sandbox, baseline, tmp_path):
    after = _run_with("renamed_field", fault_sandbox, tmp_path)
    renamed = after["raw_record"].loc[
        after["raw_record"]["payload"].str.contains(RENAMED_FIELD[1], regex=False)
    ]
    assert len(renamed) >= 3
    q = after["quarantine"].set_index("source_id")
    for source_id in renamed["source_id"]:
        if source_id in set(baseline["quarantine"]["source_id"]):
            continue  # already quarantined for its own reason
        reasons = json.loads(q.loc[source_id, "reasons"])
        assert any(r["field"] == "amount_fen" for r in reasons), reasons
    # nothing lost: every claim is either a standard row or in quarantine
    claims = len(after["expense_claim"]) + (after["quarantine"]["system"] == "dingtalk").sum()
    assert claims == len(baseline["expense_claim"]) + (baseline["quarantine"]["system"] == "dingtalk").sum()


def test_a_record_read_just_before_an_edit_is_updated_by_the_next_run(fault_sandbox, baseline, tmp_path):
    """A stale read lands the old version; the next (fault-free, full) run replaces it, keeps
    both versions in the history, and leaves no exception counted twice."""
    # the pair this test runs supports it (other twins may too)
    assert {"dingtalk", "kingdee"} <= set(fault_sandbox.faults.systems_for("edited_record"))
    stale = _run_with("edited_record", fault_sandbox, tmp_path)
    assert (stale["raw_record"]["payload"] != baseline["raw_record"]["payload"]).sum() >= 3
    fault_sandbox.reset()
    run_plain(_config(tmp_path, fault_sandbox), fault_sandbox.dataset.period, full=True)
    after = snapshot(f"sqlite:///{tmp_path / 'w.db'}")
    assert_same(baseline, after, skip=("raw_record_version", "exception"))
    versions = after["raw_record_version"]
    assert len(versions) > len(baseline["raw_record_version"])
    assert not versions.duplicated(["system", "kind", "source_id", "payload_hash"]).any()
    # the exceptions the stale versions caused are resolved; the rest are the baseline's
    exc = after["exception"]
    extra = exc.loc[~exc["exception_id"].isin(baseline["exception"]["exception_id"])]
    assert (extra["status"] == "resolved").all()
    kept = exc.loc[exc["exception_id"].isin(baseline["exception"]["exception_id"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, baseline["exception"].reset_index(drop=True))
