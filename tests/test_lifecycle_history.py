"""An exception's history stays on its row: a resolved one that comes back shows as reopened, with
when and why, next to the reviewer's comments (issue 11, "History you can see").

Runs on SQLite and on the real PostgreSQL (``warehouse_url``).
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
from openpyxl import load_workbook
from sqlalchemy import select

from oafin.pipeline.corrections.propose import action_targets, build_proposals
from oafin.reporting.context import build_report_data
from oafin.review import import_review
from oafin.warehouse.lifecycle import record_exceptions
from oafin.warehouse.review_table import exception_review
from oafin.warehouse.schema import exception
from tests.test_review_import import AS_OF, edit, sheet_of, workbook_for

PAID_TWICE = pd.DataFrame(
    [
        {
            "exception_type": "DUPLICATE_PAYMENT",
            "claim_no": "BX100",
            "person_id": "P0001",
            "amount_fen": 30_000,
            "detail": "2 payments totalling 60000 fen for 30000 fen",
        },
        {
            "exception_type": "MISSING_IN_FINANCE",
            "claim_no": "BX101",
            "person_id": "P0001",
            "amount_fen": 500,
        },
    ]
)


def run(engine, found: pd.DataFrame, days: int) -> pd.DataFrame:
    with engine.begin() as conn:
        return record_exceptions(
            conn, found, period="2026-10", as_of=AS_OF + timedelta(days=days), company_code="C01"
        )


def row(frame: pd.DataFrame, claim_no: str) -> dict:
    return frame.loc[frame["claim_no"] == claim_no].iloc[0].to_dict()


def test_a_resolved_exception_that_comes_back_is_reopened_with_when_and_why(warehouse_engine, tmp_path):
    first = run(warehouse_engine, PAID_TWICE, 0)
    book = workbook_for(warehouse_engine, first, tmp_path / "reconciliation.xlsx")
    edit(book, {"BX100": ("已解决", "已追回多付款项")})
    import_review(warehouse_engine, book, now=AS_OF + timedelta(days=1, hours=2))

    again = run(warehouse_engine, PAID_TWICE, 3)  # the next run finds the double payment again
    assert row(again, "BX100")["status"] == "reopened"
    assert row(again, "BX101")["status"] == "open"

    data = build_report_data(
        warehouse_engine,
        period="2026-10",
        company_code="C01",
        as_of=AS_OF + timedelta(days=3),
        exceptions=again,
        stats={},
    )
    shown = row(data.exceptions, "BX100")
    assert shown["comment"] == "已追回多付款项"  # the reviewer's comment stays on the row
    history = shown["history"].splitlines()
    assert history[0].startswith("2026-11-02 复核：已解决，备注“已追回多付款项”")
    assert history[1].startswith("2026-11-04 重新打开：2026-11-02 复核人标记为已解决，备注“已追回多付款项”")
    assert "截至 2026-11-04 的运行再次发现" in history[1]
    assert data.kpis["exceptions_reopened"] == 1

    # and the workbook shows it: status 重新打开 reopened, the history in its column
    later = workbook_for_as_of(warehouse_engine, again, tmp_path / "later.xlsx", days=3)
    wb = load_workbook(later, read_only=True)
    rows = list(sheet_of(wb, "BX100").iter_rows(values_only=True))
    wb.close()
    header = rows[0]
    bx100 = next(r for r in rows[1:] if "BX100" in r)
    assert bx100[header.index("Status 状态")] == "重新打开 reopened"
    assert "重新打开" in bx100[header.index("History 处理记录")]


def workbook_for_as_of(engine, recorded, path, *, days: int):
    from oafin.reporting.workbook import write_workbook

    data = build_report_data(
        engine,
        period="2026-10",
        company_code="C01",
        as_of=AS_OF + timedelta(days=days),
        exceptions=recorded,
        stats={},
    )
    return write_workbook(data, path)


def test_one_resolved_by_a_run_says_so_when_it_comes_back_and_reruns_add_nothing(warehouse_engine):
    run(warehouse_engine, PAID_TWICE, 0)
    run(warehouse_engine, PAID_TWICE.iloc[1:], 2)  # not found: resolved by the run
    back = run(warehouse_engine, PAID_TWICE, 4)
    assert row(back, "BX100")["status"] == "reopened"
    run(warehouse_engine, PAID_TWICE, 4)  # the same run again
    with warehouse_engine.connect() as conn:
        from oafin.warehouse.lifecycle import read_events

        events = read_events(conn, [row(back, "BX100")["exception_id"]]).sort_values("at")
    assert events["event"].tolist() == ["resolved", "reopened"]
    assert "自动标记为已解决" in events["note"].iloc[1]


def test_a_reopened_duplicate_payment_is_not_proposed_for_recall_again(warehouse_engine, tmp_path):
    first = run(warehouse_engine, PAID_TWICE, 0)
    book = workbook_for(warehouse_engine, first, tmp_path / "reconciliation.xlsx")
    edit(book, {"BX100": ("resolved", "已追回多付款项")})
    import_review(warehouse_engine, book)
    run(warehouse_engine, PAID_TWICE, 3)
    with warehouse_engine.connect() as conn:
        proposals = build_proposals(
            conn,
            pd.DataFrame(columns=["person_id"]),
            comment_userid=None,
            targets=action_targets(["dingtalk", "kingdee"]),
        )
        eid = conn.execute(
            select(exception.c.exception_id).where(exception.c.claim_no == "BX100")
        ).scalar_one()
        assert conn.execute(select(exception_review.c.comment)).scalars().all() == ["已追回多付款项"]
    considered = {a.exception_id for a in proposals.actions} | {s["exception_id"] for s in proposals.skipped}
    assert eid not in considered  # a reviewer sees it reopened, with its history, before anything is proposed
    assert any(s["exception_type"] == "MISSING_IN_FINANCE" for s in proposals.skipped)  # the open one is


def test_a_rerun_of_the_same_as_of_lists_the_reopening_after_the_decision(warehouse_engine, tmp_path):
    first = run(warehouse_engine, PAID_TWICE, 0)
    book = workbook_for(warehouse_engine, first, tmp_path / "reconciliation.xlsx")
    edit(book, {"BX100": ("resolved", "已追回多付款项")})
    import_review(warehouse_engine, book, now=AS_OF + timedelta(hours=9))
    again = run(warehouse_engine, PAID_TWICE, 0)  # the same period end, run again that morning
    data = build_report_data(
        warehouse_engine, period="2026-10", company_code="C01", as_of=AS_OF, exceptions=again, stats={}
    )
    history = row(data.exceptions, "BX100")["history"].splitlines()
    assert [line.split(" ", 1)[1][:4] for line in history] == ["复核：已", "重新打开"]
