"""The engine's key pass and the skeleton's exception types, on tiny hand-made frames."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from oafin.engine.reconcile import ReconcileParams, reconcile
from oafin.periods import Period
from oafin.standard import columns

OCT = Period.parse("2026-10")


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="Asia/Shanghai").tz_convert("UTC")


def claims_frame(*rows: dict) -> pd.DataFrame:
    base = {
        "company_code": "C01",
        "applicant_id": "P0001",
        "currency": "CNY",
        "status": "approved",
        "submitted_at": ts("2026-10-01 09:00"),
        "approved_at": ts("2026-10-02 10:00"),
        "approver_ids": "P0002",
    }
    df = pd.DataFrame([{**base, **r} for r in rows], columns=columns("expense_claim"))
    for col in ("submitted_at", "approved_at"):
        df[col] = pd.to_datetime(df[col], utc=True)
    df["amount_fen"] = df["amount_fen"].astype("int64")
    return df


def docs_frame(*rows: dict) -> pd.DataFrame:
    base = {
        "company_code": "C01",
        "payee_id": "P0001",
        "currency": "CNY",
        "source_doc_nos": "",
        "claim_no_ref": None,
    }
    df = pd.DataFrame([{**base, **r} for r in rows], columns=columns("finance_doc"))
    for col in ("posted_at", "paid_at"):
        df[col] = pd.to_datetime(df[col], utc=True)
    df["amount_fen"] = df["amount_fen"].astype("int64")
    return df


def bill(no: str, ref: str | None, fen: int, when: str = "2026-10-03 10:00", **kw) -> dict:
    return {
        "doc_id": f"k:ER:{no}",
        "doc_no": no,
        "doc_type": "reimbursement",
        "claim_no_ref": ref,
        "amount_fen": fen,
        "status": "audited",
        "posted_at": ts(when),
        **kw,
    }


def pay(no: str, sources: str, fen: int, when: str = "2026-10-04 10:00", **kw) -> dict:
    return {
        "doc_id": f"k:AP:{no}",
        "doc_no": no,
        "doc_type": "payment",
        "source_doc_nos": sources,
        "amount_fen": fen,
        "status": "paid",
        "posted_at": ts(when),
        "paid_at": ts(when),
        **kw,
    }


def claim(no: str, fen: int, **kw) -> dict:
    return {"claim_id": f"dingtalk:{no}", "claim_no": no, "amount_fen": fen, **kw}


def run(claims: pd.DataFrame, docs: pd.DataFrame, **kw) -> pd.DataFrame:
    params = ReconcileParams(period=OCT, as_of=OCT.end, **kw)
    return reconcile(claims, docs, params).exceptions


def found(ex: pd.DataFrame) -> set[tuple[str, str]]:
    return {
        (r.exception_type, r.claim_no if isinstance(r.claim_no, str) else r.doc_no) for r in ex.itertuples()
    }


def test_clean_chain_with_noise_raises_nothing():
    claims = claims_frame(claim("BX1", 123450), claim("BX2", 1000), claim("BX3", 2000), claim("BX4", 500))
    docs = docs_frame(
        bill("FY1", " ｂｘ1 ", 123451),  # hand-typed ref, full-width; 1 fen off is within tolerance
        pay("FK1a", "FY1", 100000),
        pay("FK1b", "FY1", 23451),  # split payment
        bill("FY2", "BX2", 1000),
        bill("FY3", "BX3", 2000),
        pay("FK23", "FY2,FY3", 3000),  # batch payment
        bill("FY4", "BX4", 500),
        pay("FK4", "fy4", 500),
    )
    assert run(claims, docs).empty


def test_missing_in_finance_respects_the_sla():
    claims = claims_frame(
        claim("BX1", 100, approved_at=ts("2026-10-10 10:00")),
        claim("BX2", 100, approved_at=ts("2026-10-29 10:00")),  # within 5 days of period end
    )
    assert found(run(claims, docs_frame(bill("FYX", "BX9", 1, posted_at=ts("2026-09-01"))))) == {
        ("MISSING_IN_FINANCE", "BX1")
    }


def test_amount_mismatch_beyond_tolerance_carries_the_difference():
    claims = claims_frame(claim("BX1", 10000), claim("BX2", 10000))
    docs = docs_frame(
        bill("FY1", "BX1", 9000), pay("FK1", "FY1", 9000), bill("FY2", "BX2", 10001), pay("FK2", "FY2", 10001)
    )
    ex = run(claims, docs)
    assert found(ex) == {("AMOUNT_MISMATCH", "BX1")}
    assert ex.loc[0, "amount_fen"] == -1000


def test_rejected_but_paid_is_a_status_mismatch_only():
    claims = claims_frame(claim("BX1", 10000, status="rejected", approved_at=None))
    docs = docs_frame(bill("FY1", "BX1", 9000), pay("FK1", "FY1", 9000))
    assert found(run(claims, docs)) == {("STATUS_MISMATCH", "BX1")}


def test_missing_in_oa_is_raised_once_per_chain():
    claims = claims_frame(claim("BX1", 100))
    docs = docs_frame(
        bill("FY1", "BX1", 100),
        pay("FK1", "FY1", 100),
        bill("FY9", "", 5000),
        pay("FK9", "FY9", 5000),  # bill with no OA number, and its payment
        pay("FK8", "", 700),  # a payment with nothing behind it
        bill("FY7", "BX404", 100, posted_at=ts("2026-09-10")),  # outside the period: not in scope
    )
    assert found(run(claims, docs)) == {("MISSING_IN_OA", "FY9"), ("MISSING_IN_OA", "FK8")}


def test_quarantined_partner_suppresses_missing_findings():
    claims = claims_frame(claim("BX1", 100))
    docs = docs_frame(bill("FY2", "BX2", 100))
    quarantined = pd.DataFrame(
        [
            {
                "entity": "finance_doc",
                "business_key": "FY1",
                "claim_no_ref": "BX1",
                "scope_at": ts("2026-10-03"),
                "exception_type": "CONTRACT_VIOLATION",
                "person_id": None,
                "amount_fen": None,
                "company_code": "C01",
                "reasons": "amount_fen: missing",
            },
            {
                "entity": "expense_claim",
                "business_key": "BX2",
                "claim_no_ref": None,
                "scope_at": None,
                "exception_type": "UNMAPPED_CODE",
                "person_id": "P0001",
                "amount_fen": 100,
                "company_code": "C01",
                "reasons": "expense_type_code: 礼品费",
            },
        ]
    )
    params = ReconcileParams(period=OCT, as_of=OCT.end)
    ex = reconcile(claims, docs, params, quarantined).exceptions
    assert found(ex) == {("CONTRACT_VIOLATION", "FY1"), ("UNMAPPED_CODE", "BX2")}


@pytest.mark.parametrize("approved", ["2026-10-31 23:50", "2026-10-01 00:10"])
def test_scope_is_the_month_in_china_time(approved):
    claims = claims_frame(claim("BX1", 100, approved_at=ts(approved)))
    as_of = datetime(2026, 12, 31, tzinfo=UTC)
    ex = reconcile(
        claims, docs_frame(bill("FY0", "BX0", 1, posted_at=ts("2026-08-01"))), ReconcileParams(OCT, as_of)
    ).exceptions
    assert found(ex) == {("MISSING_IN_FINANCE", "BX1")}
