"""Yonyou write-back through the corrections ledger (issue #15): an accrual voucher (``addVoucher``)
for each approved OA claim finance does not have, pushed exactly once; Yonyou's duplicate-voucher
codes (310504 / 310074, source-systems.md §8.1) count as "already done", never as a second voucher.

The warehouse is a real run of DingTalk → Yonyou over HTTP (``oafin.run.run_plain``); the pushes go
to a twin of the test's own and are read back with ``queryVouchers`` and the default mapping.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from mappings.apply import map_records
from mappings.code_tables import load_code_tables
from mappings.loader import default_mapping_path, load_mapping
from oafin.config import OaFinDefaults, load_settings
from oafin.connectors.limits import no_limit
from oafin.demo import sandbox_environment, settings_sources
from oafin.pipeline.corrections import push
from oafin.pipeline.corrections.approval import Decision
from oafin.pipeline.corrections.propose import action_targets
from oafin.pipeline.corrections.push import push_approved
from oafin.pipeline.corrections.service import propose, record_decision
from oafin.pipeline.runtime import code_tables, warehouse
from oafin.run import run_plain
from oafin.sandbox import credentials
from oafin.sandbox.dataset import Dataset
from oafin.sandbox.generator import generate
from oafin.sandbox_server import SandboxHandle, running_sandbox
from oafin.systems.dingtalk.twin import TWIN as DINGTALK_TWIN
from oafin.systems.yonyou.actions import CreateVoucher
from oafin.systems.yonyou.client import YonyouClient
from oafin.systems.yonyou.twin import TWIN as YONYOU_TWIN
from oafin.warehouse import ledger
from oafin.warehouse.store import connect

SEED = 23
N_CLAIMS = 50
BOT = "oafin-bot"


class _Crash(BaseException):
    """Raised by the push's test seam right after the call: the ledger never hears back."""


@pytest.fixture(scope="module")
def month() -> Dataset:
    return generate(seed=SEED, n_claims=N_CLAIMS)


def _config(folder: Path, handle: SandboxHandle, db: Path) -> Path:
    text = OaFinDefaults.demo_toml(handle.url("dingtalk"), handle.url("yonyou"), finance="yonyou")
    text = text.replace('url = "sqlite:///oafin.db"', f'url = "sqlite:///{db}"')
    text += f'\n[corrections]\ncomment_userid = "{BOT}"\n'
    path = folder / "oafin.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def reconciled(month: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse of one DingTalk → Yonyou run (read over HTTP from a sandbox that is then gone)."""
    folder = tmp_path_factory.mktemp("yonyou-run")
    db = folder / "w.db"
    with (
        running_sandbox(month, twins=[DINGTALK_TWIN, YONYOU_TWIN]) as handle,
        pytest.MonkeyPatch.context() as mp,
    ):
        config = _config(folder, handle, db)
        for key, value in sandbox_environment(settings_sources(load_settings(config))).items():
            mp.setenv(key, value)
        run = run_plain(config, month.period, full=True)
    assert len(run["result"].exceptions) > 0
    warehouse(f"sqlite:///{db}").dispose()  # the run's engine: its writes in the file before the copies
    return db


@pytest.fixture
def setup(
    reconciled: Path, month: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, Engine, SandboxHandle, list[str]]]:
    """(settings, engine, a fresh sandbox, the approved finance_create_bill keys)."""
    db = tmp_path / "w.db"
    shutil.copyfile(reconciled, db)
    with running_sandbox(month, twins=[DINGTALK_TWIN, YONYOU_TWIN]) as handle:
        config = _config(tmp_path, handle, db)
        settings = load_settings(config)
        for key, value in sandbox_environment(settings_sources(settings)).items():
            monkeypatch.setenv(key, value)
        engine = connect(f"sqlite:///{db}")
        targets = action_targets([s.system for s in settings.chain_sources])
        proposed = propose(engine, code_tables(settings), comment_userid=BOT, targets=targets)
        with engine.connect() as conn:
            rows = {r["idempotency_key"]: r for r in ledger.rows(conn, proposed.keys)}
        keys = [k for k, r in rows.items() if r["action"] == "finance_create_bill"]
        record_decision(engine, Decision(approved=dict.fromkeys(keys, "审批人 (P0002)")))
        yield settings, engine, handle, keys
        engine.dispose()


def _rows(engine: Engine, keys: list[str]) -> dict[str, Any]:
    with engine.connect() as conn:
        return {r["idempotency_key"]: r for r in ledger.rows(conn, keys)}


def _client(handle: SandboxHandle) -> YonyouClient:
    return YonyouClient(
        handle.url("yonyou"),
        credentials.YONYOU_APP_KEY,
        credentials.YONYOU_APP_SECRET,
        accbook_code=credentials.YONYOU_ACCBOOK_CODE,
        limiter=no_limit,
    )


def _vouchers_of(handle: SandboxHandle, claim_no: str) -> list[dict[str, Any]]:
    """Every voucher of the book carrying ``claim_no`` in 自定义项1, read with queryVouchers."""
    query = {"accbookCode": credentials.YONYOU_ACCBOOK_CODE, "periodStart": "2020-01", "periodEnd": "2030-12"}
    with _client(handle) as client:
        return [
            r
            for r in client.iter_records(query)
            if (r["header"].get("defines") or {}).get("define1") == claim_no
        ]


def test_approved_vouchers_are_added_once_and_read_back(setup, month: Dataset) -> None:
    settings, engine, handle, keys = setup
    missing = set(month.truth.query("exception_type == 'MISSING_IN_FINANCE'").claim_no)
    rows = _rows(engine, keys)
    assert {r["claim_no"] for r in rows.values()} == missing and keys

    results = push_approved(engine, settings, keys)
    again = push_approved(engine, settings, keys)

    assert {r.outcome for r in results} == {"pushed"}
    assert {r.outcome for r in again} == {"skipped_done"}
    writes = handle.received_writes("yonyou")
    assert [w["call"] for w in writes] == ["addVoucher"] * len(keys)
    mapping, tables = load_mapping(default_mapping_path("yonyou")), load_code_tables()
    claims = {c.claim_no: c for c in month.claims}
    for key, row in _rows(engine, keys).items():
        assert row["status"] == "done"
        (voucher,) = _vouchers_of(handle, row["claim_no"])
        assert json.loads(row["response"])["voucherId"] == voucher["header"]["id"]
        raw = YONYOU_TWIN.name, "vouchers", voucher["header"]["id"]
        from oafin.records import RawRecord

        (mapped,) = map_records(mapping, [RawRecord(*raw, voucher)], tables, {"company_code": "C01"})
        claim = claims[row["claim_no"]]
        assert not mapped.issues, mapped.issues
        facts = {
            k: mapped.values[k] for k in ("doc_type", "claim_no_ref", "amount_fen", "payee_id", "status")
        }
        assert facts == {
            "doc_type": "reimbursement",
            "claim_no_ref": claim.claim_no,
            "amount_fen": claim.amount_fen,
            "payee_id": claim.originator.person_id,
            "status": "received",  # 01 保存: booked, not yet audited
        }, key


def test_a_rerun_after_a_lost_answer_recovers_without_a_second_voucher(setup, monkeypatch) -> None:
    settings, engine, handle, keys = setup
    key = keys[0]

    def crash(k: str) -> None:
        raise _Crash(k)

    monkeypatch.setattr(push, "after_send", crash)
    with pytest.raises(_Crash):
        push_approved(engine, settings, [key])
    monkeypatch.setattr(push, "after_send", None)
    assert _rows(engine, [key])[key]["status"] == "pending"

    (result,) = push_approved(engine, settings, [key])

    assert result.outcome == "recovered"  # found by reading Yonyou, not sent again
    assert len(handle.received_writes("yonyou")) == 1
    assert len(_vouchers_of(handle, _rows(engine, [key])[key]["claim_no"])) == 1


def test_the_duplicate_code_on_a_rerun_counts_as_done(setup) -> None:
    """The voucher is there but the read before sending does not see it (booked in another period by
    hand): addVoucher answers 310504, and the push is done with that answer, no second voucher."""
    settings, engine, handle, keys = setup
    key = keys[0]
    row = _rows(engine, [key])[key]
    content = json.loads(row["content"])
    by_hand = json.loads(json.dumps(content["voucher"]))
    year, month_no = map(int, by_hand["makeTime"][:7].split("-"))
    by_hand["makeTime"] = f"{year + month_no // 12:04d}-{month_no % 12 + 1:02d}-01"  # the next period
    with _client(handle) as client:
        client.add_voucher({"accbookCode": credentials.YONYOU_ACCBOOK_CODE, **by_hand})
        assert CreateVoucher().landed(client, content, "", {}) is None  # the check before sending misses it

    (result,) = push_approved(engine, settings, [key])

    assert result.outcome == "pushed"
    assert result.detail["already"] is True and result.detail["found"]
    assert "310504" in result.detail["answer"]
    assert _rows(engine, [key])[key]["status"] == "done"
    assert [w["call"] for w in handle.received_writes("yonyou")] == ["addVoucher", "addVoucher"]
    assert len(_vouchers_of(handle, row["claim_no"])) == 1
    (again,) = push_approved(engine, settings, [key])
    assert again.outcome == "skipped_done" and len(handle.received_writes("yonyou")) == 2
