"""Rule and group passes, ties, and the controls, on tiny hand-made frames."""

from __future__ import annotations

import pandas as pd

from oafin.engine.reconcile import ReconcileParams, References, reconcile
from tests.test_engine_reconcile import OCT, bill, claim, claims_frame, docs_frame, found, pay, ts


def result(claims: pd.DataFrame, docs: pd.DataFrame, **kw):
    refs = kw.pop("references", None)
    invoices = kw.pop("invoices", None)
    return reconcile(
        claims, docs, ReconcileParams(period=OCT, as_of=OCT.end, **kw), invoices=invoices, references=refs
    )


def passes(res) -> set[tuple[str, str, str, str]]:
    return set(res.matches[["claim_id", "doc_id", "match_pass", "rule"]].itertuples(index=False, name=None))


def test_rule_pass_pairs_a_document_without_oa_number_by_person_amount_and_date():
    claims = claims_frame(claim("BX1", 5000), claim("BX2", 7000, applicant_id="P0004"))
    docs = docs_frame(
        pay("FK1", "", 5001, when="2026-10-04 10:00"),  # no OA number, 1 fen off: within tolerance
        pay("FK2", "", 7000, when="2026-10-04 10:00", payee_id="P0003"),  # right amount, wrong person
    )
    res = result(claims, docs)
    assert ("dingtalk:BX1", "k:AP:FK1", "rule", "person_amount_date") in passes(res)
    assert found(res.exceptions) == {("MISSING_IN_FINANCE", "BX2"), ("MISSING_IN_OA", "FK2")}


def test_rule_pass_respects_the_date_window():
    claims = claims_frame(claim("BX1", 5000))
    docs = docs_frame(pay("FK1", "", 5000, when="2026-10-25 10:00"))  # 23 days after approval
    assert found(result(claims, docs, date_window_days=15).exceptions) == {
        ("MISSING_IN_FINANCE", "BX1"),
        ("MISSING_IN_OA", "FK1"),
    }
    assert found(result(claims, docs, date_window_days=30).exceptions) == {("LATE_PAYMENT", "BX1")}


def test_a_tie_is_reported_not_guessed():
    """Two claims of one person, same amount, same day; two bills with no OA number: no pairing."""
    claims = claims_frame(
        claim("BX1", 5000, approved_at=ts("2026-10-02 09:00")),
        claim("BX2", 5000, approved_at=ts("2026-10-02 15:00")),
    )
    docs = docs_frame(bill("FY1", "", 5000), bill("FY2", "", 5000))
    res = result(claims, docs)
    assert res.matches.empty
    assert found(res.exceptions) == {
        ("MISSING_IN_FINANCE", "BX1"),
        ("MISSING_IN_FINANCE", "BX2"),
        ("MISSING_IN_OA", "FY1"),
        ("MISSING_IN_OA", "FY2"),
    }
    assert res.exceptions["detail"].str.contains("ambiguous rule match").all()
    assert res.stats["ambiguous_candidates"] == 4


def test_the_key_pass_settles_one_of_two_twins_and_the_rule_pass_the_other():
    claims = claims_frame(
        claim("BX1", 5000, approved_at=ts("2026-10-02 09:00")),
        claim("BX2", 5000, approved_at=ts("2026-10-02 15:00")),
    )
    docs = docs_frame(
        bill("FY1", "BX1", 5000), pay("FK1", "FY1", 5000), bill("FY2", "", 5000), pay("FK2", "FY2", 5000)
    )
    res = result(claims, docs)
    assert res.exceptions.empty
    assert {
        ("dingtalk:BX1", "k:ER:FY1", "key", "claim_no_ref"),
        ("dingtalk:BX2", "k:ER:FY2", "rule", "person_amount_date"),
        ("dingtalk:BX2", "k:AP:FK2", "rule", "source_doc_nos"),
    } <= passes(res)


def test_group_pass_split_and_batch_payments_without_keys():
    claims = claims_frame(
        claim("BX1", 10000),
        claim("BX2", 3000, applicant_id="P0004"),
        claim("BX3", 4500, applicant_id="P0004"),
    )
    docs = docs_frame(
        pay("FK1a", "", 6000, when="2026-10-03 10:00"),
        pay("FK1b", "", 4000, when="2026-10-05 10:00"),  # 6000 + 4000 = BX1
        pay("FK23", "", 7500, when="2026-10-04 10:00", payee_id="P0004"),  # BX2 + BX3 in one payment
    )
    res = result(claims, docs)
    assert res.exceptions.empty, res.exceptions
    assert {
        ("dingtalk:BX1", "k:AP:FK1a", "group", "split"),
        ("dingtalk:BX1", "k:AP:FK1b", "group", "split"),
        ("dingtalk:BX2", "k:AP:FK23", "group", "batch"),
        ("dingtalk:BX3", "k:AP:FK23", "group", "batch"),
    } == passes(res)


def test_split_paid_and_short_paid_is_an_amount_mismatch_only():
    claims = claims_frame(claim("BX1", 10000))
    docs = docs_frame(bill("FY1", "BX1", 10000), pay("FK1a", "FY1", 6000), pay("FK1b", "FY1", 3000))
    ex = result(claims, docs).exceptions
    assert found(ex) == {("AMOUNT_MISMATCH", "BX1")}
    assert ex.loc[0, "amount_fen"] == -1000


def test_duplicate_payment_is_not_also_an_amount_mismatch_and_payee_late_are_separate():
    claims = claims_frame(claim("BX1", 10000), claim("BX2", 2000), claim("BX3", 3000))
    docs = docs_frame(
        bill("FY1", "BX1", 10000),
        pay("FK1a", "FY1", 10000),
        pay("FK1b", "FY1", 10000, when="2026-10-04 12:00"),
        bill("FY2", "BX2", 2000),
        pay("FK2", "FY2", 2000, payee_id="P0009"),
        bill("FY3", "BX3", 3000),
        pay("FK3", "FY3", 3000, when="2026-10-09 10:00"),  # 7 days after approval
    )
    assert found(result(claims, docs).exceptions) == {
        ("DUPLICATE_PAYMENT", "BX1"),
        ("PAYEE_MISMATCH", "BX2"),
        ("LATE_PAYMENT", "BX3"),
    }


def test_controls_self_approval_approval_limit_and_budget():
    claims = claims_frame(
        claim("BX1", 1000, applicant_id="P0002", approver_ids="P0002", budget_code="B1"),
        claim("BX2", 3_000_000, approver_ids="P0002", budget_code="B1"),  # manager limit 2,000,000
        claim("BX3", 100, approver_ids="P0003", budget_code="B2"),
    )
    docs = docs_frame(
        *(
            d
            for no, fen in (("1", 1000), ("2", 3_000_000), ("3", 100))
            for d in (bill(f"FY{no}", f"BX{no}", fen), pay(f"FK{no}", f"FY{no}", fen))
        )
    )
    docs.loc[docs["doc_no"] == "FK1", "payee_id"] = "P0002"
    refs = References(
        people=pd.DataFrame(
            {"person_id": ["P0001", "P0002", "P0003"], "role": ["employee", "manager", "cfo"]}
        ),
        approval_matrix={"employee": 0, "manager": 2_000_000, "cfo": 100_000_000},
        budgets=pd.DataFrame(
            {"budget_code": ["B1", "B2"], "period": ["2026-10", "2026-10"], "amount_fen": [3_001_000, 100]}
        ),
    )
    assert found(result(claims, docs, references=refs).exceptions) == {
        ("SELF_APPROVAL", "BX1"),
        ("APPROVAL_LIMIT", "BX2"),
    }
    refs = References(
        people=refs.people,
        approval_matrix=refs.approval_matrix,
        budgets=refs.budgets.assign(amount_fen=[3_000_999, 100]),
    )
    ex = result(claims, docs, references=refs).exceptions
    over = ex.loc[ex["exception_type"] == "BUDGET_OVERRUN"]
    assert list(over["budget_code"]) == ["B1"] and list(over["amount_fen"]) == [1]


def test_duplicate_invoice_is_the_later_use_and_invalid_invoice_is_reported():
    claims = claims_frame(
        claim("BX0", 500, submitted_at=ts("2026-09-20 09:00"), approved_at=ts("2026-09-21 09:00")),
        claim("BX1", 500, submitted_at=ts("2026-10-01 09:00")),
    )
    docs = docs_frame(
        bill("FY0", "BX0", 500, when="2026-09-22 10:00"),
        pay("FK0", "FY0", 500, when="2026-09-22 12:00"),
        bill("FY1", "BX1", 500),
        pay("FK1", "FY1", 500),
    )
    invoices = pd.DataFrame(
        {
            "claim_id": ["dingtalk:BX0", "dingtalk:BX1", "dingtalk:BX1"],
            "invoice_code": ["", "", "0440"],
            "invoice_no": ["26311176584554204236", "26311176584554204236", "1234"],
        }
    )
    invalid = pd.DataFrame(
        {"claim_id": ["dingtalk:BX1"], "invoice_key": ["0440-1234"], "reasons": ["format"]}
    )
    res = reconcile(
        claims, docs, ReconcileParams(period=OCT, as_of=OCT.end), invoices=invoices, invalid_invoices=invalid
    )
    got = set(zip(res.exceptions["exception_type"], res.exceptions["invoice_no"], strict=True))
    assert got == {("DUPLICATE_INVOICE", "26311176584554204236"), ("INVALID_INVOICE", "0440-1234")}
