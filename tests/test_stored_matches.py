"""Reports and proposals read the chain the engine computed and stored (``match``), not a copy of their own.

The engine links a payment to a claim by number, through a bill, by rule (same person, amount
within tolerance, date within the window) or by group. The report's cycle time once followed only
the number and the bill, so a claim paid by a rule- or group-matched payment was left out.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from data_contracts.frames import to_frame
from mappings.code_tables import load_code_tables
from oafin.engine.reconcile import ReconcileParams, reconcile
from oafin.periods import Period
from oafin.pipeline.corrections.propose import action_targets, build_proposals
from oafin.pipeline.reconcile import store_matches
from oafin.reporting.context import build_report_data
from oafin.warehouse.lifecycle import record_exceptions
from oafin.warehouse.schema import STANDARD_TABLES
from oafin.warehouse.store import upsert

AS_OF = datetime(2026, 10, 31, 16, 0, tzinfo=UTC)  # end of 2026-10 in Asia/Shanghai


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


CLAIMS = [
    {"claim_id": "dingtalk:BX101", "claim_no": "BX101", "company_code": "C01", "applicant_id": "P1",
     "amount_fen": 10_000, "currency": "CNY", "status": "approved",
     "submitted_at": ts("2026-10-01T01:00:00"), "approved_at": ts("2026-10-02T00:00:00")},
    {"claim_id": "dingtalk:BX102", "claim_no": "BX102", "company_code": "C01", "applicant_id": "P2",
     "amount_fen": 5_000, "currency": "CNY", "status": "approved",
     "submitted_at": ts("2026-10-01T01:00:00"), "approved_at": ts("2026-10-05T00:00:00")},
]  # fmt: skip
DOCS = [
    # carries BX101's number: the key pass
    {"doc_id": "kingdee:PAY:1", "doc_no": "FK101", "doc_type": "payment", "company_code": "C01",
     "claim_no_ref": "BX101", "payee_id": "P1", "amount_fen": 10_000, "currency": "CNY", "status": "paid",
     "posted_at": ts("2026-10-04T00:00:00"), "paid_at": ts("2026-10-04T00:00:00")},
    # no OA number at all: only the rule pass (same person, same amount, 3 days later) links it to BX102
    {"doc_id": "kingdee:PAY:2", "doc_no": "FK102", "doc_type": "payment", "company_code": "C01",
     "claim_no_ref": None, "payee_id": "P2", "amount_fen": 5_000, "currency": "CNY", "status": "paid",
     "posted_at": ts("2026-10-08T00:00:00"), "paid_at": ts("2026-10-08T00:00:00")},
]  # fmt: skip


def test_the_cycle_time_kpi_counts_a_rule_matched_payment(warehouse_engine: Engine) -> None:
    claims, docs = to_frame("expense_claim", CLAIMS), to_frame("finance_doc", DOCS)
    result = reconcile(claims, docs, ReconcileParams(period=Period.parse("2026-10"), as_of=AS_OF))
    by_claim = result.matches.set_index("claim_id")["match_pass"]
    assert by_claim.to_dict() == {"dingtalk:BX101": "key", "dingtalk:BX102": "rule"}

    with warehouse_engine.begin() as conn:
        upsert(conn, STANDARD_TABLES["expense_claim"], CLAIMS)
        upsert(conn, STANDARD_TABLES["finance_doc"], DOCS)
        store_matches(conn, result.matches, period="2026-10", company_code="C01")
        recorded = record_exceptions(
            conn, result.exceptions, period="2026-10", as_of=AS_OF, company_code="C01"
        )
    data = build_report_data(
        warehouse_engine, period="2026-10", company_code="C01", as_of=AS_OF, exceptions=recorded, stats={}
    )
    # BX101 paid 2 days after approval (key), BX102 3 days after (rule): both count
    assert data.kpis["cycle_n"] == 2
    assert data.kpis["cycle_median_days"] == 2.5
    assert (data.kpis["matched_claims"], data.kpis["unmatched_claims"]) == (2, 0)


LATE = [
    {"claim_id": "dingtalk:BX201", "claim_no": "BX201", "company_code": "C01", "applicant_id": "P1",
     "amount_fen": 10_000, "currency": "CNY", "status": "approved",
     "submitted_at": ts("2026-10-01T01:00:00"), "approved_at": ts("2026-10-02T00:00:00")},
]  # fmt: skip
LATE_DOCS = [
    # no OA number: the rule pass links it; paid 12 days after approval (SLA 5): LATE_PAYMENT
    {"doc_id": "kingdee:PAY:201", "doc_no": "FK201", "doc_type": "payment", "company_code": "C01",
     "claim_no_ref": None, "payee_id": "P1", "amount_fen": 10_000, "currency": "CNY", "status": "paid",
     "posted_at": ts("2026-10-14T00:00:00"), "paid_at": ts("2026-10-14T00:00:00")},
]  # fmt: skip


def test_a_proposal_names_the_rule_matched_payment_the_engine_stored(warehouse_engine: Engine) -> None:
    claims, docs = to_frame("expense_claim", LATE), to_frame("finance_doc", LATE_DOCS)
    result = reconcile(claims, docs, ReconcileParams(period=Period.parse("2026-10"), as_of=AS_OF))
    assert result.matches["match_pass"].tolist() == ["rule"]
    assert result.exceptions["exception_type"].tolist() == ["LATE_PAYMENT"]
    with warehouse_engine.begin() as conn:
        upsert(conn, STANDARD_TABLES["expense_claim"], LATE)
        upsert(conn, STANDARD_TABLES["finance_doc"], LATE_DOCS)
        store_matches(conn, result.matches, period="2026-10", company_code="C01")
        record_exceptions(conn, result.exceptions, period="2026-10", as_of=AS_OF, company_code="C01")
    with warehouse_engine.connect() as conn:
        proposals = build_proposals(
            conn, load_code_tables(), comment_userid="U1", targets=action_targets(["dingtalk", "kingdee"])
        )
    (action,) = proposals.actions
    assert action.action == "oa_status_comment"
    assert "付款单 FK201 已付款 ¥100.00 2026-10-14" in action.content["text"]
