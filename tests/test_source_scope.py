"""Each source checked against its mapping and scoped by its own company (issue #10, items 3 and 2)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from oafin.config import ConfigError, OaFinDefaults, load_settings
from oafin.periods import Period
from oafin.pipeline.extract import plan_extraction
from oafin.pipeline.reconcile import ScopeError, reconcile_period
from oafin.pipeline.runtime import warehouse
from oafin.run import run_flow
from tests import test_corrections_helpers as helpers

reconciled_warehouse = helpers.reconciled_warehouse


C01 = 'company_code = "C01"'


def _config(tmp_path: Path, url: str, *, oa: str = C01, finance: str = C01) -> Path:
    text = OaFinDefaults.demo_toml("http://127.0.0.1:9", "http://127.0.0.1:9/k3cloud/")
    text = text.replace('url = "sqlite:///oafin.db"', f'url = "{url}"')
    text = text.replace(f'system = "dingtalk"\n{C01}', f'system = "dingtalk"\n{oa}')
    text = text.replace(f'system = "kingdee"\n{C01}', f'system = "kingdee"\n{finance}')
    path = tmp_path / "oafin.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_process_code_the_mapping_does_not_map_is_refused_before_extraction(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    config = _config(tmp_path, url, oa='company_code = "C01"\nprocess_code = "PROC-TYPO"')
    settings = load_settings(config)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    with pytest.raises(ConfigError) as err:
        plan_extraction(warehouse(url), settings, start, start + timedelta(days=1))
    assert "'PROC-TYPO' is not mapped" in str(err.value) and "PROC-OAFIN-EXPENSE" in str(err.value)
    with pytest.raises(ConfigError, match="PROC-TYPO"):  # `oafin run` stops before Prefect starts
        run_flow(config, "2026-10")


def _copy(reconciled_warehouse: Path, tmp_path: Path) -> str:
    db = tmp_path / "oafin.db"
    shutil.copy(reconciled_warehouse, db)
    return f"sqlite:///{db}"


@pytest.mark.parametrize(
    ("oa", "finance", "source"),
    [
        ('company_code = "C01"', 'company_code = "C99"', "'finance' (kingdee)"),
        ('company_code = "C02"', 'company_code = "C01"', "'oa' (dingtalk)"),
    ],
)
def test_a_source_with_records_but_none_of_its_company_fails_loudly(
    reconciled_warehouse: Path, sandbox_dataset, tmp_path: Path, oa: str, finance: str, source: str
) -> None:
    url = _copy(reconciled_warehouse, tmp_path)
    settings = load_settings(_config(tmp_path, url, oa=oa, finance=finance))
    period = Period.parse(sandbox_dataset.period)
    with pytest.raises(ScopeError) as err:
        reconcile_period(warehouse(url), settings, period, period.end)
    message = str(err.value)
    assert source in message and "none of company_code" in message
    assert "company codes seen: C01" in message


def test_each_source_is_scoped_by_its_own_company(reconciled_warehouse: Path, sandbox_dataset, tmp_path):
    url = _copy(reconciled_warehouse, tmp_path)
    settings = load_settings(_config(tmp_path, url))
    period = Period.parse(sandbox_dataset.period)
    result = reconcile_period(warehouse(url), settings, period, period.end)
    assert result.stats["records_valid"] > 0 and result.company_code == "C01"
