"""Shared set-up for the corrections tests (no tests here).

``reconciled_warehouse`` (session): a SQLite warehouse holding the session dataset's month,
landed as the connectors would land it, mapped, validated and reconciled with the real
pipeline functions. Tests copy the file, point a config at it and at a sandbox of their own
(``fresh_sandbox``: the writes a test makes never reach the session's shared sandbox).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from oafin.config import OaFinDefaults, load_settings
from oafin.periods import Period
from oafin.pipeline.corrections.propose import action_targets
from oafin.pipeline.reconcile import reconcile_period
from oafin.pipeline.runtime import code_tables
from oafin.pipeline.standardize import map_source, store_reference_tables, store_standard
from oafin.records import RawRecord
from oafin.sandbox.dataset import Dataset
from oafin.sandbox_server import SandboxHandle, running_sandbox
from oafin.systems.dingtalk.twin_render import instances as dingtalk_instances
from oafin.systems.kingdee.twin_render import form_rows as kingdee_rows
from oafin.warehouse.lifecycle import exception_id
from oafin.warehouse.schema import STANDARD_TABLES, exception
from oafin.warehouse.store import connect, land_raw

COMMENT_USER = "oafin-bot"


def raw_records(dataset: Dataset) -> list[RawRecord]:
    """The dataset as the connectors return it (DingTalkClient.get_instance adds the id)."""
    records = [
        RawRecord("dingtalk", dataset.process_code, inst["process_instance_id"], dict(inst))
        for inst in dingtalk_instances(dataset)
    ]
    for form, rows in kingdee_rows(dataset).items():
        records += [RawRecord("kingdee", form, str(row["FID"]), dict(row)) for row in rows]
    return records


def write_config(
    path: Path, sandbox_urls: tuple[str, str], warehouse_url: str, corrections: str = ""
) -> Path:
    text = OaFinDefaults.demo_toml(*sandbox_urls).replace(
        'url = "sqlite:///oafin.db"', f'url = "{warehouse_url}"'
    )
    text += f'\n[corrections]\ncomment_userid = "{COMMENT_USER}"\napproval_poll_seconds = 1\n{corrections}\n'
    path.write_text(text, encoding="utf-8")
    return path


def build_warehouse(dataset: Dataset, url: str, config: Path) -> Engine:
    settings = load_settings(config)
    engine = connect(url)
    with engine.begin() as conn:
        land_raw(conn, raw_records(dataset))
    tables = code_tables(settings)
    store_reference_tables(engine, tables)
    for name in settings.chain:
        source = settings.source(name)
        store_standard(engine, source, map_source(engine, settings, source, tables))
    period = Period.parse(dataset.period)
    reconcile_period(engine, settings, period, period.end)
    return engine


@pytest.fixture(scope="session")
def reconciled_warehouse(sandbox_dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corrections-template")
    db = folder / "oafin.db"
    config = write_config(
        folder / "oafin.toml", ("http://127.0.0.1:9", "http://127.0.0.1:9/k3cloud/"), f"sqlite:///{db}"
    )
    build_warehouse(sandbox_dataset, f"sqlite:///{db}", config).dispose()
    return db


@pytest.fixture
def fresh_sandbox(sandbox_dataset: Dataset) -> Iterator[SandboxHandle]:
    with running_sandbox(sandbox_dataset) as handle:
        yield handle


@pytest.fixture
def corrections_setup(reconciled_warehouse: Path, fresh_sandbox: SandboxHandle, tmp_path: Path):
    """(config path, warehouse engine, sandbox): a private copy of the reconciled warehouse."""
    db = tmp_path / "oafin.db"
    shutil.copyfile(reconciled_warehouse, db)
    url = f"sqlite:///{db}"

    def make(corrections: str = "") -> Path:
        return write_config(
            tmp_path / "oafin.toml", (fresh_sandbox.dingtalk_url, fresh_sandbox.kingdee_url), url, corrections
        )

    engine = connect(url)
    yield make, engine, fresh_sandbox
    engine.dispose()


def chain_targets(settings: Any) -> dict[str, str]:
    """Action -> system from the config's chain, as the corrections task passes them: several
    registered OA systems offer ``oa_status_comment``, so the registry alone names none."""
    return action_targets([s.system for s in settings.chain_sources])


def add_exception(engine: Engine, exception_type: str, claim_no: str, period: str = "2026-10") -> str:
    """Insert an open exception row as the engine would record it (for types it may not raise yet)."""
    with engine.begin() as conn:
        claim = (
            conn.execute(
                select(STANDARD_TABLES["expense_claim"]).where(
                    STANDARD_TABLES["expense_claim"].c.claim_no == claim_no
                )
            )
            .mappings()
            .first()
        )
        row = {
            "exception_type": exception_type,
            "company_code": claim["company_code"],
            "claim_no": claim_no,
            "doc_no": None,
            "invoice_no": None,
            "budget_code": None,
        }
        row["exception_id"] = exception_id(row)
        moment = datetime(2026, 10, 31, 16, tzinfo=UTC)
        conn.execute(exception.delete().where(exception.c.exception_id == row["exception_id"]))
        conn.execute(
            exception.insert().values(
                **row,
                period=period,
                person_id=claim["applicant_id"],
                amount_fen=claim["amount_fen"],
                detail=None,
                status="open",
                first_seen=moment,
                last_seen=moment,
            )
        )
    return row["exception_id"]
