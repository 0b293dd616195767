"""Hesine write-back through the corrections ledger: a chain run's voucher exceptions become actions
on the expense platform (the ERP's voucher number written back, a comment), pushed only when
approved, exactly once, and received by the twin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from oafin.config import OaFinDefaults, load_settings
from oafin.demo import chain_kinds, chain_source_names, sandbox_environment, settings_sources
from oafin.pipeline.corrections.approval import Decision
from oafin.pipeline.corrections.propose import action_targets
from oafin.pipeline.corrections.push import push_approved
from oafin.pipeline.corrections.service import ledger_rows, propose, record_decision
from oafin.pipeline.runtime import code_tables, warehouse
from oafin.run import run_plain
from oafin.sandbox.chain import chain_of
from oafin.sandbox.dataset import Dataset
from oafin.sandbox.generator import generate
from oafin.sandbox_server import SandboxHandle, running_sandbox

CHAIN = ("dingtalk", "hesine", "kingdee")
STAFF = "oafinSandboxCorp:ID01oaf00001"


@pytest.fixture(scope="module")
def month() -> Dataset:
    return generate(seed=31, n_claims=240)


@pytest.fixture
def chain_run(month: Dataset, tmp_path: Path) -> Iterator[tuple[Path, SandboxHandle]]:
    """A fresh sandbox (the writes are the test's own) and a reconciled chain warehouse."""
    with running_sandbox(month) as sandbox:
        names = chain_source_names(CHAIN)
        text = OaFinDefaults.chain_toml([(n, s, sandbox.urls[s]) for n, s in names], chain_kinds(CHAIN))
        text = text.replace('url = "sqlite:///oafin.db"', f'url = "sqlite:///{tmp_path / "w.db"}"')
        config = tmp_path / "oafin.toml"
        config.write_text(text + f'\n[corrections]\ncomment_staff_id = "{STAFF}"\n', encoding="utf-8")
        with pytest.MonkeyPatch.context() as mp:
            for key, value in sandbox_environment(settings_sources(load_settings(config))).items():
                mp.setenv(key, value)
            run_plain(config, month.period, full=True)
            yield config, sandbox


def test_voucher_exceptions_are_pushed_to_the_expense_platform_once_and_only_when_approved(
    chain_run: tuple[Path, SandboxHandle], month: Dataset
) -> None:
    config, sandbox = chain_run
    settings = load_settings(config)
    engine = warehouse(settings.warehouse_url)
    proposed = propose(
        engine,
        code_tables(settings),
        comment_userid=None,
        targets=action_targets([s.system for s in settings.chain_sources]),
        options=settings.corrections.model_dump(),
    )
    rows = {r["idempotency_key"]: r for r in ledger_rows(engine, proposed.keys)}
    mine = {k: r for k, r in rows.items() if r["system"] == "hesine"}
    findings = chain_of(month).findings
    by_action = {
        a: [r for r in mine.values() if r["action"] == a]
        for a in ("expense_write_voucher_no", "expense_comment")
    }
    assert len(by_action["expense_write_voucher_no"]) == sum(k == "VOUCHER_NOT_IN_ERP" for k, _ in findings)
    assert len(by_action["expense_comment"]) == sum(k == "VOUCHER_MISSING" for k, _ in findings)

    # Nothing goes out before approval (dry run is the default: proposing sends nothing).
    assert sandbox.received_writes("hesine") == []
    assert {r.outcome for r in push_approved(engine, settings, list(mine))} == {"not_approved"}
    assert sandbox.received_writes("hesine") == []

    record_decision(engine, Decision(approved={k: "审批人 (P0002)" for k in mine}))
    first = push_approved(engine, settings, list(mine))
    again = push_approved(engine, settings, list(mine))
    assert {r.outcome for r in first} == {"pushed"}
    assert {r.outcome for r in again} == {"skipped_done"}

    writes = sandbox.received_writes("hesine")
    vouchers = [w for w in writes if w["call"] == "flow/data/erpVoucher"]
    comments = [w for w in writes if w["call"] == "flow/data/comment"]
    assert len(vouchers) == len(by_action["expense_write_voucher_no"])
    assert len(comments) == len(by_action["expense_comment"])
    # the number written back is the ERP voucher that books the payment (the chain's own)
    booked = {v.payment.doc_no: v.number for v in chain_of(month).vouchers}
    state = sandbox.state("hesine")
    for w in vouchers:
        (item,) = w["body"]["voucher"]
        doc = state.by_id[item["flowId"]]  # type: ignore[attr-defined]
        assert item["voucherNo"] == booked[doc["form"]["code"]] == doc["form"]["voucherNo"]
    assert all(
        w["body"]["name"] == "freeflow.comment" and "[oafin:" in w["body"]["params"]["comment"]
        for w in comments
    )
