"""Helpers shared by the orchestration, fault and crash tests (no tests of its own)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import create_engine

from oafin.config import OaFinDefaults
from oafin.warehouse.schema import STATE_TABLES
from oafin.warehouse.store import read_table


def write_config(
    folder: Path,
    sandbox,  # noqa: ANN001 - a SandboxHandle
    warehouse_url: str,
    *,
    timeout_seconds: float | None = None,
    oa_rate: float | None = None,
    finance_rate: float | None = None,
    oa_page_size: int | None = None,
    finance_page_size: int | None = None,
    name: str = "oafin.toml",
) -> Path:
    """The demo's config pointed at ``sandbox`` and ``warehouse_url``, with optional overrides."""
    folder.mkdir(parents=True, exist_ok=True)
    text = OaFinDefaults.demo_toml(sandbox.dingtalk_url, sandbox.kingdee_url)
    text = text.replace('url = "sqlite:///oafin.db"', f'url = "{warehouse_url}"')
    if oa_rate is not None:
        text = text.replace("rate_limit_per_second = 500", f"rate_limit_per_second = {oa_rate}")
    if finance_rate is not None:
        text = text.replace("rate_limit_per_second = 200", f"rate_limit_per_second = {finance_rate}")
    if timeout_seconds is not None:
        text = text.replace(
            'company_code = "C01"', f'company_code = "C01"\ntimeout_seconds = {timeout_seconds}'
        )
    for name, size in (("oa", oa_page_size), ("finance", finance_page_size)):
        if size is not None:
            text = text.replace(f'name = "{name}"\n', f'name = "{name}"\npage_size = {size}\n')
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def snapshot(url: str) -> dict[str, pd.DataFrame]:
    """Every table a re-run must leave identical, read in key order."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {t.name: read_table(conn, t) for t in STATE_TABLES}
    finally:
        engine.dispose()


def assert_same(
    expected: dict[str, pd.DataFrame],
    actual: dict[str, pd.DataFrame],
    *,
    skip: tuple[str, ...] = (),
    drop_columns: dict[str, tuple[str, ...]] | None = None,
) -> None:
    drop_columns = drop_columns or {}
    for name, frame in expected.items():
        if name in skip:
            continue
        cols = [c for c in frame.columns if c not in drop_columns.get(name, ())]
        pd.testing.assert_frame_equal(
            frame[cols].reset_index(drop=True), actual[name][cols].reset_index(drop=True), obj=name
        )
