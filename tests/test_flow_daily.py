"""End to end: the daily flow over the sandbox's real HTTP, under a Prefect test harness."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine

from oafin.config import OaFinDefaults
from oafin.truth import score
from oafin.warehouse.schema import STATE_TABLES
from oafin.warehouse.store import read_table

SKELETON_TYPES = {
    "MISSING_IN_FINANCE",
    "MISSING_IN_OA",
    "AMOUNT_MISMATCH",
    "STATUS_MISMATCH",
    "CONTRACT_VIOLATION",
    "UNMAPPED_CODE",
}


def write_config(tmp_path: Path, sandbox, warehouse_url: str) -> Path:
    path = tmp_path / "oafin.toml"
    text = OaFinDefaults.demo_toml(sandbox.dingtalk_url, sandbox.kingdee_url)
    path.write_text(text.replace('url = "sqlite:///oafin.db"', f'url = "{warehouse_url}"'), encoding="utf-8")
    return path


def snapshot(url: str) -> dict[str, pd.DataFrame]:
    engine = create_engine(url)
    with engine.connect() as conn:
        tables = {t.name: read_table(conn, t) for t in STATE_TABLES}
    engine.dispose()
    return tables


@pytest.mark.e2e
def test_daily_flow_finds_the_truth_and_a_rerun_changes_nothing(
    prefect_harness, sandbox, sandbox_dataset, warehouse_url, tmp_path
):
    from flows.daily import daily

    config = write_config(tmp_path, sandbox, warehouse_url)
    period = sandbox_dataset.period
    first = daily(config_path=str(config), period=period)
    before = snapshot(warehouse_url)
    second = daily(config_path=str(config), period=period)
    after = snapshot(warehouse_url)

    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name], obj=name)
    assert first["stats"] == second["stats"]
    assert len(before["raw_record"]) == first["extracted"]["oa"] + first["extracted"]["finance"]

    found = pd.read_csv(first["reports"]["csv"], dtype=str, keep_default_na=False)
    truth = sandbox_dataset.truth
    scores = score(found, truth).set_index("exception_type")
    for kind in SKELETON_TYPES:
        assert kind in scores.index, f"{kind} neither injected nor found"
        assert scores.loc[kind, "precision"] == 1.0, scores
        assert scores.loc[kind, "recall"] == 1.0, scores
    for name in (Path(first["reports"]["xlsx"]).name, "report.html", "exceptions.csv"):
        assert (Path(first["reports"]["html"]).parent / name).stat().st_size > 0
    assert first["reports"]["xlsx"] != second["reports"]["xlsx"]  # each run keeps its own workbook

    # the mapped records go from standardize to validate unwalked (prefect's opaque), and the run
    # graph still shows that validate waited for that standardize run
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        runs = {r.id: r for r in client.read_task_runs()}
    validates = [r for r in runs.values() if r.name.startswith("validate-")]
    assert validates
    for run in validates:
        upstream = [runs[i.id].name for i in run.task_inputs["records"]]  # type: ignore[union-attr]
        assert upstream == [run.name.replace("validate-", "standardize-")], (run.name, upstream)


@pytest.mark.e2e
def test_the_flow_with_random_faults_on_a_tenth_of_calls_finds_the_same(
    prefect_harness, sandbox_fresh, sandbox_dataset, tmp_path
):
    """`oafin demo --fault-rate 0.1` in a test: every fault a client survives, mixed, seeded."""
    from flows.daily import daily
    from oafin.sandbox.faults import RANDOM_KINDS
    from tests.test_orchestration_support import write_config as config_with

    period = sandbox_dataset.period
    clean = daily(
        config_path=str(config_with(tmp_path / "clean", sandbox_fresh, f"sqlite:///{tmp_path / 'clean.db'}")),
        period=period,
    )
    sandbox_fresh.calls.clear()
    sandbox_fresh.faults.set_rate(0.1, seed=7, slow_seconds=1.0)
    faulty_url = f"sqlite:///{tmp_path / 'faulty.db'}"
    faulty = daily(
        config_path=str(config_with(tmp_path / "faulty", sandbox_fresh, faulty_url, timeout_seconds=0.5)),
        period=period,
    )
    served = {c.fault for c in sandbox_fresh.calls if c.fault}
    assert len(served) >= len(RANDOM_KINDS) - 2, f"too few kinds of fault served: {served}"

    def csv_of(summary):
        return Path(summary["reports"]["csv"]).read_text(encoding="utf-8")

    assert csv_of(faulty) == csv_of(clean)
    assert faulty["stats"] == clean["stats"]
    after = snapshot(faulty_url)
    before = snapshot(f"sqlite:///{tmp_path / 'clean.db'}")
    for name in ("expense_claim", "finance_doc", "claim_invoice", "exception"):
        pd.testing.assert_frame_equal(before[name], after[name], obj=name)
