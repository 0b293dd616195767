"""Two companies in one warehouse schema (issue #16: a group close on a shared warehouse). A source's
standardize step makes the schema hold exactly its system's rows, so a second company's run would
silently delete the first company's records (and ``<system>:<source id>`` ids may collide between
two instances of a system). The run is refused instead, naming the other company and what to do."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from oafin.config import ConfigError, OaFinDefaults, load_settings
from oafin.demo import sandbox_environment, settings_sources
from oafin.run import run_plain
from oafin.sandbox.generator import generate
from oafin.sandbox_server import running_sandbox
from oafin.warehouse.schema import STANDARD_TABLES


def _config(folder: Path, handle, company: str, warehouse: Path) -> Path:  # noqa: ANN001 - a SandboxHandle
    text = OaFinDefaults.demo_toml(handle.urls["dingtalk"], handle.urls["kingdee"])
    text = text.replace('company_code = "C01"', f'company_code = "{company}"')
    text = text.replace('url = "sqlite:///oafin.db"', f'url = "sqlite:///{warehouse}"')
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "oafin.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _counts(warehouse: Path) -> dict[str, int]:
    engine = create_engine(f"sqlite:///{warehouse}")
    try:
        with engine.connect() as conn:
            out = {}
            for entity in ("expense_claim", "finance_doc"):
                table = STANDARD_TABLES[entity]
                rows = conn.execute(select(table.c.company_code, func.count()).group_by(table.c.company_code))
                out |= {f"{entity}:{company}": n for company, n in rows}
            return out
    finally:
        engine.dispose()


def test_a_second_company_in_the_same_schema_is_refused_and_deletes_nothing(tmp_path: Path) -> None:
    warehouse = tmp_path / "shared.db"
    first = generate(seed=31, n_claims=100, company_code="C01")
    second = generate(seed=32, n_claims=100, company_code="C02")
    with running_sandbox(first) as one, running_sandbox(second) as two, pytest.MonkeyPatch.context() as mp:
        c01 = _config(tmp_path / "c01", one, "C01", warehouse)
        c02 = _config(tmp_path / "c02", two, "C02", warehouse)
        for key, value in sandbox_environment(settings_sources(load_settings(c01))).items():
            mp.setenv(key, value)
        run_plain(c01, first.period, full=True)
        before = _counts(warehouse)
        assert before["expense_claim:C01"] > 0 and before["finance_doc:C01"] > 0
        with pytest.raises(
            ConfigError, match=r"already holds dingtalk records of company C01.*its own schema"
        ):
            run_plain(c02, second.period, full=True)
        assert _counts(warehouse) == before  # C01's records are all still there
        run_plain(c01, first.period, full=True)  # the company itself re-runs as before
        assert _counts(warehouse) == before
