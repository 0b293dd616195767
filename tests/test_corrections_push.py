"""Proposals, approval rules and the exactly-once push, as plain functions against a real
SQLite warehouse (the session's month, reconciled) and a sandbox of the test's own over HTTP."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mappings.code_tables import CodeTables
from oafin.audit import verify_url
from oafin.config import AutoApproveRule, load_settings
from oafin.pipeline.corrections import push
from oafin.pipeline.corrections.approval import (
    ApprovalError,
    Decision,
    auto_approve,
    resolve_approver,
    review,
    select_keys,
)
from oafin.pipeline.corrections.push import push_approved
from oafin.pipeline.corrections.service import propose, record_decision
from oafin.pipeline.runtime import code_tables
from oafin.sandbox import credentials
from oafin.systems.kingdee.client import KingdeeClient
from oafin.warehouse import ledger
from tests import test_corrections_helpers as helpers
from tests.test_corrections_helpers import add_exception

# Fixtures shared with the other corrections tests.
reconciled_warehouse = helpers.reconciled_warehouse
fresh_sandbox = helpers.fresh_sandbox
corrections_setup = helpers.corrections_setup


def _propose(config, engine, sandbox_dataset):
    for claim_no in sandbox_dataset.truth.query("exception_type == 'DUPLICATE_PAYMENT'").claim_no:
        add_exception(engine, "DUPLICATE_PAYMENT", claim_no)  # whether or not the engine raises it yet
    settings = load_settings(config)
    return settings, propose(
        engine, code_tables(settings), comment_userid="oafin-bot", targets=helpers.chain_targets(settings)
    )


def _approve_all(engine, keys, by="审批人 (P0002)"):
    record_decision(engine, Decision(approved={k: by for k in keys}))


def _rows(engine):
    with engine.connect() as conn:
        return {r["idempotency_key"]: r for r in ledger.rows(conn)}


def test_proposals_cover_the_open_exceptions_and_keys_are_stable(corrections_setup, sandbox_dataset) -> None:
    make, engine, sandbox = corrections_setup
    settings, first = _propose(make(), engine, sandbox_dataset)
    second = propose(
        engine, code_tables(settings), comment_userid="oafin-bot", targets=helpers.chain_targets(settings)
    )
    rows = _rows(engine)

    assert first.keys == second.keys and second.new == []  # same exceptions, same keys, nothing new
    truth = sandbox_dataset.truth
    want = {
        "finance_create_bill": set(truth.query("exception_type == 'MISSING_IN_FINANCE'").claim_no),
        "finance_flag_recall": set(truth.query("exception_type == 'DUPLICATE_PAYMENT'").claim_no),
    }
    for action, claims in want.items():
        assert {r["claim_no"] for r in rows.values() if r["action"] == action} == claims
    comments = {r["claim_no"] for r in rows.values() if r["action"] == "oa_status_comment"}
    assert set(truth.query("exception_type == 'STATUS_MISMATCH'").claim_no) <= comments
    assert all(r["status"] == "proposed" for r in rows.values())
    assert {s["exception_type"] for s in first.skipped} >= {"MISSING_IN_OA", "AMOUNT_MISMATCH"}
    assert sandbox.received_writes() == []  # proposing calls no system


def test_approved_actions_are_pushed_once_and_land(corrections_setup, sandbox_dataset) -> None:
    make, engine, sandbox = corrections_setup
    settings, proposed = _propose(make(), engine, sandbox_dataset)
    _approve_all(engine, proposed.keys)

    results = push_approved(engine, settings, proposed.keys)
    again = push_approved(engine, settings, proposed.keys)

    assert {r.outcome for r in results} == {"pushed"}
    assert {r.outcome for r in again} == {"skipped_done"}
    rows = _rows(engine)
    writes = sandbox.received_writes()
    by_call = pd.Series([f"{w['system']}:{w['call']}:{w.get('formid', '')}" for w in writes]).value_counts()
    n = {
        a: sum(r["action"] == a for r in rows.values())
        for a in ("finance_create_bill", "oa_status_comment", "finance_flag_recall")
    }
    assert by_call.get("kingdee:Save:ER_ExpReimbursement") == n["finance_create_bill"]
    assert by_call.get("kingdee:Submit:ER_ExpReimbursement") == n["finance_create_bill"]
    assert "kingdee:Audit:ER_ExpReimbursement" not in by_call  # allow_audit is off by default
    assert by_call.get("kingdee:Save:AP_PAYBILL") == n["finance_flag_recall"]
    assert by_call.get("dingtalk:process/instance/comment/add:") == n["oa_status_comment"]
    assert all(r["status"] == "done" and r["approved_by"] == "审批人 (P0002)" for r in rows.values())

    # What landed, read back through the real query API: each created bill carries its OA number,
    # submitted (B), and each flagged payment's remark holds the action's marker.
    with KingdeeClient(
        sandbox.kingdee_url,
        credentials.KINGDEE_ACCT_ID,
        credentials.KINGDEE_USERNAME,
        credentials.KINGDEE_APP_ID,
        credentials.KINGDEE_APP_SECRET,
    ) as kd:
        bills = {
            r["F_OAFIN_OANo"]: r
            for r in kd.iter_rows(
                "ER_ExpReimbursement", ["FBillNo", "F_OAFIN_OANo", "FDocumentStatus", "FExpenseAmount"]
            )
        }
        pays = {r["FBillNo"]: r["FREMARK"] for r in kd.iter_rows("AP_PAYBILL", ["FBillNo", "FREMARK"])}
    for row in rows.values():
        content = json.loads(row["content"])
        if row["action"] == "finance_create_bill":
            bill = bills[row["claim_no"]]
            assert bill["FDocumentStatus"] == "B"
            assert bill["FExpenseAmount"] == content["model"]["FExpenseAmount"]
            assert json.loads(row["response"])["number"] == bill["FBillNo"]
        if row["action"] == "finance_flag_recall":
            assert f"[oafin:{row['idempotency_key'][:16]}]" in pays[content["doc_no"]]
    assert verify_url(f"sqlite:///{engine.url.database}").ok


def test_audit_is_called_only_when_the_config_allows(corrections_setup, sandbox_dataset) -> None:
    make, engine, sandbox = corrections_setup
    settings, proposed = _propose(make("allow_audit = true"), engine, sandbox_dataset)
    bills = [k for k, r in _rows(engine).items() if r["action"] == "finance_create_bill"]
    _approve_all(engine, bills)
    results = push_approved(engine, settings, bills)
    assert [r.detail["status"] for r in results] == ["C"] * len(bills)
    assert [w["call"] for w in sandbox.received_writes("kingdee")] == ["Save", "Submit", "Audit"] * len(bills)


class _Crash(BaseException):
    """Raised by the test seam right after a call: the ledger never hears back, as in a crash."""


def test_a_pending_action_that_landed_is_not_sent_again(
    corrections_setup, sandbox_dataset, monkeypatch
) -> None:
    make, engine, sandbox = corrections_setup
    settings, proposed = _propose(make(), engine, sandbox_dataset)
    _approve_all(engine, proposed.keys)

    def crash(key: str) -> None:
        raise _Crash(key)

    # As if the process had died after each call and before its ledger write.
    monkeypatch.setattr(push, "after_send", crash)
    for key in proposed.keys:
        with pytest.raises(_Crash):
            push_approved(engine, settings, [key])
    monkeypatch.setattr(push, "after_send", None)
    sent = len(sandbox.received_writes())
    assert sent > 0 and {r["status"] for r in _rows(engine).values()} == {"pending"}

    results = push_approved(engine, settings, proposed.keys)

    assert {r.outcome for r in results} == {"recovered"}
    assert len(sandbox.received_writes()) == sent
    assert all(r["status"] == "done" for r in _rows(engine).values())
    assert verify_url(f"sqlite:///{engine.url.database}").ok


def test_a_pending_action_that_did_not_land_is_sent(corrections_setup, sandbox_dataset) -> None:
    make, engine, sandbox = corrections_setup
    settings, proposed = _propose(make(), engine, sandbox_dataset)
    key = next(k for k, r in _rows(engine).items() if r["action"] == "oa_status_comment")
    _approve_all(engine, [key])
    with (
        engine.begin() as conn
    ):  # "pending", as the push writes it before the call: it may or may not have gone out
        row = ledger.get(conn, key)
        ledger.transition(conn, key, "pending", event="push", actor=row["approved_by"], attempts=1)
    (result,) = push_approved(engine, settings, [key])
    assert result.outcome == "pushed"
    assert len(sandbox.received_writes("dingtalk")) == 1


def test_unapproved_actions_are_not_pushed(corrections_setup, sandbox_dataset) -> None:
    make, engine, sandbox = corrections_setup
    settings, proposed = _propose(make(), engine, sandbox_dataset)
    results = push_approved(engine, settings, proposed.keys)
    assert {r.outcome for r in results} == {"not_approved"}
    assert sandbox.received_writes() == []


# --- approval rules (plain functions) ------------------------------------------------------


def _tables(people: list[dict], identities: list[tuple[str, str, str]]) -> CodeTables:
    """Code tables with only people and identities (what approval reads)."""
    return CodeTables.from_frames(
        departments=pd.DataFrame(columns=["name", "code"]),
        expense_types=pd.DataFrame(columns=["label", "code"]),
        people=pd.DataFrame(people),
        identities=pd.DataFrame(identities, columns=["person_id", "system", "external_id"]),
        budgets=pd.DataFrame(columns=["budget_code", "department_code", "period", "amount_fen"]),
        approval_matrix={},
    )


PEOPLE = _tables(
    [
        {"person_id": "P0001", "name": "孙超秀"},
        {"person_id": "P0002", "name": "张敏"},
        {"person_id": "P0003", "name": "张敏"},
        {"person_id": "P0004", "name": "李娜"},
    ],
    [
        ("P0001", "dingtalk", "0631"),
        ("P0001", "kingdee", "STF00001"),
        ("P0002", "dingtalk", "0164"),
        ("P0002", "kingdee", "STF00002"),
        ("P0003", "dingtalk", "0609"),
        ("P0003", "kingdee", "STF00003"),
        ("P0001", "wecom", "sun.cx"),
        ("P0004", "wecom", "0164"),  # P0002's DingTalk userid is P0004's WeCom userid
    ],
)


@pytest.mark.parametrize("typed", ["P0001", "0631", "STF00001", "sun.cx", " 孙超秀 "])
def test_an_approver_may_name_themselves_by_any_id(typed: str) -> None:
    assert resolve_approver(typed, PEOPLE).label == "孙超秀 (P0001)"


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("张敏", "names 2 people"),
        ("0164", "names 2 people"),
        ("nobody", "not in the people table"),
        ("", "no approver given"),
    ],
)
def test_an_unknown_or_ambiguous_approver_is_refused(typed: str, message: str) -> None:
    with pytest.raises(ApprovalError, match=message):
        resolve_approver(typed, PEOPLE)


def _row(key: str, applicant: str, action: str = "oa_status_comment", amount: int = 5_000) -> dict:
    return {
        "idempotency_key": key,
        "action": action,
        "exception_type": "STATUS_MISMATCH",
        "claim_no": f"BX-{key}",
        "applicant_id": applicant,
        "amount_fen": amount,
    }


def test_segregation_of_duties_refuses_ones_own_claim() -> None:
    rows = [_row("a" * 64, "P0001"), _row("b" * 64, "P0002")]
    decision = review("STF00001", ["all"], rows, PEOPLE)
    assert decision.approved == {"b" * 64: "self-declared: 孙超秀 (P0001)"}  # typed in the Prefect UI
    assert list(decision.refused) == ["a" * 64]
    assert "孙超秀 (P0001) applied for claim BX-" in decision.refused["a" * 64]
    assert "segregation of duties" in decision.refused["a" * 64]


def test_an_unknown_approver_approves_nothing() -> None:
    decision = review("someone", ["all"], [_row("a" * 64, "P0002")], PEOPLE)
    assert decision.approved == {} and "not in the people table" in decision.refused["a" * 64]


def test_keys_can_be_chosen_by_marker_prefix() -> None:
    keys = ["abcdef0123456789" + "0" * 48, "abcdef0199999999" + "1" * 48]
    assert select_keys(["[oafin:abcdef0123456789]", "abcdef01", "zzz"], keys) == (
        [keys[0]],
        ["abcdef01", "zzz"],
    )


def test_auto_approve_rules_match_action_type_and_amount() -> None:
    rules = [
        AutoApproveRule(name="small-comments", action="oa_status_comment", max_amount_fen=10_000),
        AutoApproveRule(name="late", action="oa_status_comment", exception_types=["LATE_PAYMENT"]),
    ]
    rows = [
        _row("k1", "P1", amount=9_999),
        _row("k2", "P1", amount=10_001),
        _row("k3", "P1", action="finance_create_bill", amount=1),
        {**_row("k4", "P1", amount=99_999), "exception_type": "LATE_PAYMENT"},
    ]
    assert auto_approve(rows, rules) == {"k1": "auto:small-comments", "k4": "auto:late"}


def test_no_environment_variable_can_kill_a_pushing_process(corrections_setup, sandbox_dataset) -> None:
    """The old OAFIN_TEST_CRASH_AFTER_PUSH let an environment variable SIGKILL a production push
    (issue #10 item 16); the crash is now a seam only a test installs (tests/run_with_crash.py)."""
    import multiprocessing
    import os

    make, engine, sandbox = corrections_setup
    settings, proposed = _propose(make(), engine, sandbox_dataset)
    key = next(k for k, r in _rows(engine).items() if r["action"] == "oa_status_comment")
    _approve_all(engine, [key])

    def child() -> None:
        os.environ["OAFIN_TEST_CRASH_AFTER_PUSH"] = "1"
        push_approved(engine, settings, [key])

    proc = multiprocessing.get_context("fork").Process(target=child)
    proc.start()
    proc.join(120)
    assert proc.exitcode == 0
    assert _rows(engine)[key]["status"] == "done"


def test_recall_flags_follow_the_configured_amount_tolerance(corrections_setup, sandbox_dataset) -> None:
    """Which payments are excess depends on the tolerance: a first payment 5 fen short of the
    bill settles it under a 10 fen tolerance (the 2nd and 3rd are excess), not under 1 fen (only
    the 3rd is; the 2nd completes the bill). The configured tolerance is used (issue #10 item 16)."""
    from sqlalchemy import insert, select

    from oafin.warehouse.schema import STANDARD_TABLES, match

    make, engine, sandbox = corrections_setup
    docs = STANDARD_TABLES["finance_doc"]
    with engine.begin() as conn:
        found = None
        for claim_no in sandbox_dataset.truth.query("exception_type == 'DUPLICATE_PAYMENT'").claim_no:
            bills = [
                dict(r)
                for r in conn.execute(
                    select(docs).where(docs.c.doc_type != "payment", docs.c.claim_no_ref == claim_no)
                ).mappings()
            ]
            if len(bills) != 1:
                continue
            pays = sorted(
                (
                    dict(r)
                    for r in conn.execute(select(docs).where(docs.c.doc_type == "payment")).mappings()
                    if (r["source_doc_nos"] or "").split(",") == [bills[0]["doc_no"]]
                ),
                key=lambda d: d["paid_at"],
            )
            if len(pays) == 2:
                found = claim_no, bills[0], pays
                break
        assert found, "the test needs a claim with one bill paid twice"
        claim_no, bill, pays = found
        amount = int(bill["amount_fen"])
        conn.execute(docs.update().where(docs.c.doc_id == pays[0]["doc_id"]).values(amount_fen=amount - 5))
        third = {
            **pays[-1],
            "doc_id": "kingdee:AP_PAYBILL:990001",
            "doc_no": "FKD-TEST-3",
            "amount_fen": amount,
        }
        third["paid_at"] = pays[-1]["paid_at"] + pd.Timedelta(days=1)
        conn.execute(insert(docs).values(**third))
        # proposals read the engine's stored links: the third payment is linked as the second is
        linked = conn.execute(select(match).where(match.c.doc_id == pays[-1]["doc_id"])).mappings().all()
        assert linked, "the engine stored no link for the second payment"
        for row in linked:
            conn.execute(insert(match).values(**{**dict(row), "doc_id": third["doc_id"]}))
    add_exception(engine, "DUPLICATE_PAYMENT", claim_no)
    settings = load_settings(make())
    tables = code_tables(settings)

    def flagged(tolerance: int) -> set[str]:
        proposed = propose(
            engine,
            tables,
            comment_userid="oafin-bot",
            tolerance_fen=tolerance,
            targets=helpers.chain_targets(settings),
        )
        rows = _rows(engine)
        return {
            json.loads(rows[k]["content"])["doc_no"]
            for k in proposed.keys
            if rows[k]["action"] == "finance_flag_recall" and rows[k]["claim_no"] == claim_no
        }

    assert flagged(1) == {"FKD-TEST-3"}
    assert flagged(10) == {pays[1]["doc_no"], "FKD-TEST-3"}
