"""The numbers reports show, from small hand-made standard frames (no warehouse, no Prefect).

The frames here are shared by the other report tests (workbook, HTML, GX).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from data_contracts.frames import to_frame
from oafin.engine.reconcile import ReconcileParams, reconcile
from oafin.periods import Period
from oafin.reporting.context import ReportData, assemble_report_data

AS_OF = datetime(2026, 10, 31, 16, 0, tzinfo=UTC)  # end of 2026-10 in Asia/Shanghai
CARD = "6222020200112233445"  # Luhn-valid, 19 digits
RESIDENT_ID = "11010519491231002X"
PHONE = "13800138000"


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def claim(n: str, approved: str | None, amount: int, *, status: str = "approved", person: str = "P1") -> dict:
    return {
        "claim_id": f"dingtalk:{n}",
        "claim_no": n,
        "company_code": "C01",
        "applicant_id": person,
        "department_code": {"P1": "D01", "P2": "D02"}[person],
        "amount_fen": amount,
        "status": status,
        "submitted_at": ts("2026-10-01T01:00:00"),
        "approved_at": ts(approved) if approved else None,
    }


def doc(
    n: str,
    kind: str,
    amount: int,
    *,
    ref: str | None = None,
    src: str = "",
    paid: str | None = None,
    status=None,
) -> dict:
    return {
        "doc_id": f"kingdee:{kind}:{n}",
        "doc_no": n,
        "doc_type": kind,
        "company_code": "C01",
        "claim_no_ref": ref,
        "source_doc_nos": src,
        "amount_fen": amount,
        "status": status or ("paid" if kind == "payment" else "audited"),
        "posted_at": ts("2026-10-02T00:00:00"),
        "paid_at": ts(paid) if paid else None,
    }


CLAIMS = [
    claim("BX001", "2026-10-03T02:00:00", 10_000),  # bill FY1, paid by FK1 (via source_doc_nos) and FK2
    claim("BX002", "2026-10-10T00:00:00", 25_050, person="P2"),  # paid directly by FK3
    claim("BX003", "2026-10-20T00:00:00", 7_700),  # bill only, never paid
    claim("BX004", "2026-09-05T00:00:00", 3_300),  # last period, paid: trend
    claim("BX005", None, 999, status="rejected"),
    claim("BX006", "2026-09-30T17:00:00", 1_000, person="P2"),  # 2026-10-01 01:00 in Shanghai: October
]
DOCS = [
    doc("FY1", "reimbursement", 10_000, ref="BX001"),
    doc("FK1", "payment", 6_000, src="FY1", paid="2026-10-05T02:00:00"),  # 2.0 days after approval
    doc("FK2", "payment", 4_000, src="FY1", paid="2026-10-07T02:00:00"),
    doc("FK3", "payment", 25_050, ref="BX002", paid="2026-10-14T00:00:00"),  # 4.0 days
    doc("FY3", "reimbursement", 7_700, ref="BX003"),
    doc("FK9", "payment", 7_700, ref="BX003", paid="2026-11-20T00:00:00"),  # after as_of: not yet
    doc("FK8", "payment", 7_700, ref="BX003", paid="2026-10-21T00:00:00", status="reversed"),
    doc("FY4", "reimbursement", 3_300, ref="BX004"),
    doc("FK4", "payment", 3_300, src="FY4", paid="2026-09-06T00:00:00"),  # 1.0 day, in 2026-09
    doc("FK6", "payment", 1_000, ref="BX006", paid="2026-10-01T17:00:00"),  # 1.0 day
]
PEOPLE = [
    {"person_id": "P1", "name": "张三", "department": "财务部"},
    {"person_id": "P2", "name": "李四", "department": "销售部"},
]


def exception_rows() -> pd.DataFrame:
    base = {
        "company_code": "C01",
        "period": "2026-10",
        "status": "open",
        "first_seen": AS_OF,
        "last_seen": AS_OF,
    }
    rows = [
        {"exception_id": "e1", "exception_type": "MISSING_IN_FINANCE", "claim_no": "0012345", "person_id": "P1",
         "amount_fen": 123_456, "detail": "approved 2026-10-03, no finance document"},
        {"exception_id": "e2", "exception_type": "AMOUNT_MISMATCH", "claim_no": "BX002", "person_id": "P2",
         "amount_fen": -250, "detail": "OA 25050 fen, finance 24800 fen"},
        {"exception_id": "e3", "exception_type": "UNMAPPED_CODE", "claim_no": "BX009", "person_id": "P9",
         "amount_fen": None,
         "detail": f'[{{"code": "UNMAPPED_CODE", "field": "expense_type_code", "message": "not in expense_types", "value": "{CARD}"}}]'},
        {"exception_id": "e4", "exception_type": "MISSING_IN_OA", "doc_no": "FK77", "person_id": "P2",
         "amount_fen": 5_000, "detail": f"payee phone {PHONE}, id {RESIDENT_ID} </script><script>alert(1)</script>"},
        {"exception_id": "e5", "exception_type": "MISSING_IN_FINANCE", "claim_no": "BX003", "person_id": "P1",
         "amount_fen": 7_700, "detail": "=HYPERLINK(\"http://x\")"},
    ]  # fmt: skip
    return pd.DataFrame([{**base, **r} for r in rows])


def engine_matches(
    claims: list[dict] = CLAIMS, docs: list[dict] = DOCS, as_of: datetime = AS_OF
) -> pd.DataFrame:
    """The ``match`` table after runs of 2026-09 and 2026-10, both as of ``as_of`` (the real
    engine's links; the documents here are all posted in October, so September is re-run then)."""
    runs = []
    for name in ("2026-09", "2026-10"):
        params = ReconcileParams(period=Period.parse(name), as_of=as_of)
        result = reconcile(to_frame("expense_claim", claims), to_frame("finance_doc", docs), params)
        runs.append(result.matches.assign(period=name))
    return pd.concat(runs, ignore_index=True)


def report_data(exceptions: pd.DataFrame | None = None, reviews: pd.DataFrame | None = None) -> ReportData:
    claims = to_frame("expense_claim", CLAIMS)
    return assemble_report_data(
        period="2026-10",
        company_code="C01",
        as_of=AS_OF,
        exceptions=exception_rows() if exceptions is None else exceptions,
        stats={"auto_match_rate": 0.6667, "data_accuracy": 0.95, "docs_in_scope": 8},
        claims=claims,
        docs=to_frame("finance_doc", DOCS),
        people=to_frame("person", PEOPLE),
        reviews=pd.DataFrame(columns=["exception_id", "comment"]) if reviews is None else reviews,
        matches=engine_matches(),
    )


# --- tests -----------------------------------------------------------------------------------------

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from oafin.reporting.context import (  # noqa: E402
    age_bucket,
    cycle_stats,
    cycle_times,
    enrich_exceptions,
    first_payments,
    humanize_detail,
    summarise,
)


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    return to_frame("expense_claim", CLAIMS), to_frame("finance_doc", DOCS)


def test_first_payment_follows_the_bill_or_the_claim_number_and_ignores_later_or_reversed_ones():
    claims, docs = frames()
    paid = first_payments(claims, docs, AS_OF, engine_matches()).set_index("claim_id")["paid_at"]
    assert paid["dingtalk:BX001"] == pd.Timestamp("2026-10-05T02:00:00Z")  # FK1 via FY1, not FK2
    assert paid["dingtalk:BX002"] == pd.Timestamp("2026-10-14T00:00:00Z")  # FK3 carries BX002
    assert "dingtalk:BX003" not in paid.index  # FK9 after as_of, FK8 reversed
    assert paid["dingtalk:BX004"] == pd.Timestamp("2026-09-06T00:00:00Z")


def test_cycle_times_are_days_from_approval_to_first_payment_per_china_month():
    claims, docs = frames()
    cycles = cycle_times(claims, docs, AS_OF, engine_matches()).set_index("claim_no")
    assert cycles.loc["BX001", "cycle_days"] == pytest.approx(2.0)
    assert cycles.loc["BX002", "cycle_days"] == pytest.approx(4.0)
    assert cycles.loc["BX006", "period"] == "2026-10"  # 2026-09-30 17:00 UTC is October in Shanghai
    assert cycles.loc["BX004", "period"] == "2026-09"
    assert "BX005" not in cycles.index  # rejected
    # a later as_of lets BX003's payment count
    later_as_of = datetime(2026, 12, 1, tzinfo=UTC)
    later = cycle_times(claims, docs, later_as_of, engine_matches(as_of=later_as_of)).set_index("claim_no")
    assert later.loc["BX003", "cycle_days"] == pytest.approx(31.0)


def test_kpis_cycle_median_p90_and_trend():
    data = report_data()
    assert data.kpis["cycle_n"] == 3
    assert data.kpis["cycle_median_days"] == 2.0
    assert data.kpis["cycle_p90_days"] == 3.6  # linear percentile of [1, 2, 4]
    trend = data.cycle_trend.set_index("period")
    assert trend.loc["2026-09", "n"] == 1 and trend.loc["2026-09", "median_days"] == 1.0
    assert list(trend.index) == ["2026-09", "2026-10"]
    assert cycle_stats(pd.Series([], dtype=float)) == {"n": 0, "median_days": None, "p90_days": None}
    values = np.array([0.5, 9.0, 3.25, 7.0, 1.0])
    stats = cycle_stats(pd.Series(values))
    assert stats["p90_days"] == round(float(np.quantile(values, 0.9)), 1)


def test_matched_and_unmatched_totals_of_the_periods_approved_claims():
    k = report_data().kpis
    assert k["claims_in_scope"] == 5  # four approved in October (Shanghai) + the rejected one submitted then
    assert k["approved_in_scope"] == 4
    # BX003 has a live bill; BX006 is paid (FK6 carries its number)
    assert (k["matched_claims"], k["matched_fen"]) == (4, 10_000 + 25_050 + 7_700 + 1_000)
    assert (k["unmatched_claims"], k["unmatched_fen"]) == (0, 0)
    assert k["missing_in_oa_fen"] == 5_000
    assert k["exceptions_amount_fen"] == 123_456 + 250 + 5_000 + 7_700


def test_enriched_exceptions_carry_name_department_age_and_reasons():
    ex = report_data().exceptions.set_index("exception_id")
    assert ex.loc["e2", ["person_name", "department"]].tolist() == ["李四", "销售部"]
    assert pd.isna(ex.loc["e3", "person_name"])  # unknown person: blank, not a guess
    assert ex.loc["e2", "age_days"] == 21 and ex.loc["e2", "age_bucket"] == "8-30 d"
    assert ex.loc["e5", "age_days"] == 11
    assert ex.loc["e1", "age_days"] == 0  # no record behind it: aged from first_seen
    assert ex.loc["e1", "reason_zh"] == "OA已审批，财务无单据"
    assert CARD not in ex.loc["e3", "detail_text"] and CARD[-4:] in ex.loc["e3", "detail_text"]
    assert ex.loc["e3", "detail_text"].startswith("费用类型“")  # the field's Chinese label
    assert ex.loc["e3", "detail_text"].endswith("在映射表中不存在，无法转换")


def test_summaries_by_type_age_and_department():
    data = report_data()
    by_type = data.by_type.set_index("exception_type")
    assert by_type.loc["MISSING_IN_FINANCE"].tolist() == [2, 123_456 + 7_700, 123_456 + 7_700]
    # what finance acts on first: money paid out, unapproved, owed, then control findings
    assert list(by_type.index) == ["AMOUNT_MISMATCH", "MISSING_IN_OA", "MISSING_IN_FINANCE", "UNMAPPED_CODE"]
    ages = data.by_age.set_index("exception_type")
    assert ages.loc["MISSING_IN_FINANCE", "0-7 d"] == 1 and ages.loc["MISSING_IN_FINANCE", "8-30 d"] == 1
    top = data.top_departments.set_index("department")
    assert top.loc["财务部", "amount_fen"] == 123_456 + 7_700
    assert top.index[0] == "财务部"
    assert "(unknown 未知)" in top.index
    empty = summarise(data.exceptions.iloc[0:0])
    assert all(len(frame) == 0 for frame in empty)


@pytest.mark.parametrize(
    ("days", "bucket"), [(0, "0-7 d"), (7, "0-7 d"), (8, "8-30 d"), (30, "8-30 d"), (31, "31-60 d"),
                         (90, "61-90 d"), (91, ">90 d"), (-2, "0-7 d"), (None, None)]
)  # fmt: skip
def test_age_buckets(days, bucket):
    assert age_bucket(days) == bucket


def test_humanize_detail_keeps_plain_text_and_masks():
    assert humanize_detail("OA 100 fen, finance 90 fen") == "OA ¥1.00, finance ¥0.90"
    assert humanize_detail("diff -123456 fen") == "diff -¥1,234.56"
    assert (
        humanize_detail("approved 2026-10-02, no finance document")
        == "approved 2026-10-02, no finance document"
    )
    assert humanize_detail(None) == ""
    assert humanize_detail("[{broken json") == "[{broken json"
    assert PHONE not in humanize_detail(f"call {PHONE}")


def test_a_budget_line_exception_takes_its_budgets_department():
    claims, docs = frames()
    budget = pd.DataFrame([{"exception_id": "b1", "exception_type": "BUDGET_OVERRUN", "budget_code": "B-D02-OPS",
                            "amount_fen": 100, "status": "open", "first_seen": AS_OF, "detail": "x"}])  # fmt: skip
    budgets = to_frame(
        "budget", [{"budget_code": "B-D02-OPS", "department_code": "D02", "period": "2026-10"}]
    )
    ex = enrich_exceptions(budget, claims, docs, to_frame("person", PEOPLE), pd.DataFrame(), AS_OF, budgets)
    assert ex.loc[0, "department"] == "销售部"  # D02's claims are P2's, and P2 is in 销售部
    assert pd.isna(ex.loc[0, "person_name"])


def test_invoice_and_quarantine_rows_carry_their_records_business_date():
    """Issue 11, "The right dates": not the as-of date with age 0."""
    claims, docs = frames()
    base = {"status": "open", "first_seen": AS_OF, "last_seen": AS_OF, "company_code": "C01"}
    found = pd.DataFrame(
        [
            {**base, "exception_id": "i1", "exception_type": "INVALID_INVOICE", "invoice_no": "1100-0001",
             "person_id": "P2", "detail": "claim BX002: total_matches: total must equal ex-tax amount + tax "
             "exactly (total_fen=67042)"},
            {**base, "exception_id": "i2", "exception_type": "DUPLICATE_INVOICE", "invoice_no": "1100-0002",
             "person_id": "P1", "detail": "on claim BX003, first on claim BX001"},
            {**base, "exception_id": "q1", "exception_type": "CONTRACT_VIOLATION", "claim_no": "BX777",
             "detail": '[{"code": "CONTRACT_VIOLATION", "field": "amount_fen", "value": null, '
             '"message": "not_nullable: a value is required"}]'},
            {**base, "exception_id": "q3", "exception_type": "CONTRACT_VIOLATION", "claim_no": "BX778",
             "detail": '[{"code": "CONTRACT_VIOLATION", "field": "amount_fen", "value": "-13734", '
             '"message": "amount_positive: must be > 0 fen"}]'},
            {**base, "exception_id": "q2", "exception_type": "UNMAPPED_CODE", "doc_no": "FK777",
             "detail": '[{"code": "UNMAPPED_CODE", "field": "expense_type_code", "value": "X9", '
             '"message": "\'X9\' is not a code"}]'},
        ]
    )  # fmt: skip
    dates = pd.Series([ts("2026-10-12T03:00:00"), ts("2026-10-25T03:00:00")], index=["BX777", "FK777"])
    ex = enrich_exceptions(
        found, claims, docs, to_frame("person", PEOPLE), pd.DataFrame(), AS_OF, quarantine_dates=dates
    ).set_index("exception_id")
    assert ex.loc["i1", "event_at"] == pd.Timestamp("2026-10-10T00:00:00", tz="UTC")  # BX002's approval
    assert ex.loc["i1", "age_days"] == 21
    assert ex.loc["i2", "event_at"] == pd.Timestamp("2026-10-20T00:00:00", tz="UTC")  # BX003's approval
    assert ex.loc["q1", "age_days"] == 19 and ex.loc["q2", "age_days"] == 6
    # details as sentences: the fields' Chinese labels, no raw field names or fen
    assert ex.loc["q1", "detail_text"] == "金额不能为空"
    assert ex.loc["q3", "detail_text"] == "金额“-¥137.34”：应大于零"  # in ¥, not fen
    assert ex.loc["q2", "detail_text"] == "费用类型“X9”在映射表中不存在，无法转换"
    assert (
        ex.loc["i1", "detail_text"]
        == "报销单 BX002 所附发票：价税合计不等于不含税金额加税额（价税合计：67042）"
    )
    assert (
        "total_fen" not in ex.loc["i1", "detail_text"] and "not_nullable" not in ex.loc["q1", "detail_text"]
    )
    assert ex.loc["i1", "type_label"] == "发票无效 INVALID_INVOICE"
    assert ex.loc["i1", "risk_fen"] == 0 and ex.loc["i1", "risk_category"].startswith("内控发现")


def test_money_at_risk_per_type_and_the_order_to_act_on():
    """Issue 11, "Amounts that mean one thing"."""
    claims, docs = frames()
    base = {
        "status": "open",
        "first_seen": AS_OF,
        "last_seen": AS_OF,
        "company_code": "C01",
        "person_id": "P1",
    }
    found = pd.DataFrame(
        [
            {**base, "exception_id": "a", "exception_type": "APPROVAL_LIMIT", "claim_no": "BX001",
             "amount_fen": 10_000, "detail": "approved by P2 whose limit is 8000 fen"},
            {**base, "exception_id": "b", "exception_type": "BUDGET_OVERRUN", "budget_code": "B1",
             "amount_fen": 700, "detail": "approved 10700 fen against a budget of 10000 fen"},
            {**base, "exception_id": "c", "exception_type": "DUPLICATE_PAYMENT", "claim_no": "BX002",
             "amount_fen": 300, "detail": "2 payments totalling 25350 fen for 25050 fen"},
            {**base, "exception_id": "d", "exception_type": "SELF_APPROVAL", "claim_no": "BX003",
             "amount_fen": 7_700, "detail": "the applicant approved their own claim"},
            {**base, "exception_id": "e", "exception_type": "LATE_PAYMENT", "claim_no": "BX001",
             "amount_fen": 10_000, "detail": "first payment 9.0 days after approval"},
            {**base, "exception_id": "f", "exception_type": "LATE_PAYMENT", "claim_no": "BX003",
             "amount_fen": 7_700, "detail": "unpaid"},
        ]
    )  # fmt: skip
    ex = enrich_exceptions(found, claims, docs, to_frame("person", PEOPLE), pd.DataFrame(), AS_OF)
    risk = dict(zip(ex["exception_id"], ex["risk_fen"], strict=True))
    assert risk == {"a": 2_000, "b": 700, "c": 300, "d": 0, "e": 0, "f": 7_700}
    # money paid out wrongly first, however small; control findings last
    assert ex["exception_id"].tolist() == ["c", "a", "b", "f", "e", "d"]
    a = ex.set_index("exception_id").loc["a", "detail_text"]
    assert a == "审批人 李四（销售部） 的审批权限为 ¥80.00，报销金额 ¥100.00，超出 ¥20.00"
    assert ex.set_index("exception_id").loc["c", "detail_text"] == (
        "付款 2 笔，合计 ¥253.50，应付 ¥250.50，多付 ¥3.00"
    )
