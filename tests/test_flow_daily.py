"""End to end: the daily flow over the sandbox's real HTTP, under a Prefect test harness."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine

from oafin.config import OaFinDefaults
from oafin.truth import score
from warehouse.schema import STATE_TABLES
from warehouse.store import read_table

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
    for name in ("reconciliation.xlsx", "report.html", "exceptions.csv"):
        assert (Path(first["reports"]["html"]).parent / name).stat().st_size > 0
