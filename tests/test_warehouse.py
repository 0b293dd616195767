"""The warehouse on SQLite and PostgreSQL: upserts, syncs, aware timestamps, exception lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from sqlalchemy import select

from oafin.records import RawRecord
from oafin.warehouse.lifecycle import exception_id, record_exceptions
from oafin.warehouse.schema import STANDARD_TABLES, exception, raw_record, raw_record_version
from oafin.warehouse.store import land_raw, read_raw, read_table, sync_rows

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)


def test_landing_twice_keeps_one_row_and_every_version(warehouse_engine):
    rec = RawRecord("dingtalk", "PROC", "i1", {"amount": "12.50", "名称": "差旅"})
    with warehouse_engine.begin() as conn:
        land_raw(conn, [rec])
        land_raw(conn, [rec])
        land_raw(conn, [RawRecord("dingtalk", "PROC", "i1", {"amount": "13.00"})])
    with warehouse_engine.connect() as conn:
        assert conn.execute(select(raw_record)).all().__len__() == 1
        assert len(conn.execute(select(raw_record_version)).all()) == 2
        assert read_raw(conn, "dingtalk")[0].payload == {"amount": "13.00"}


def test_timestamps_come_back_aware_utc(warehouse_engine):
    table = STANDARD_TABLES["finance_doc"]
    shanghai = datetime(2026, 10, 31, 23, 50, tzinfo=ZoneInfo("Asia/Shanghai"))
    row = {c.name: None for c in table.columns} | {"doc_id": "k:1", "posted_at": shanghai, "amount_fen": 10}
    with warehouse_engine.begin() as conn:
        sync_rows(conn, table, [row], table.c.doc_id.startswith("k:"))
    with warehouse_engine.connect() as conn:
        got = read_table(conn, table).loc[0, "posted_at"]
    assert got == shanghai and got.tzinfo is not None


def test_naive_timestamp_is_refused(warehouse_engine):
    table = STANDARD_TABLES["finance_doc"]
    row = {c.name: None for c in table.columns} | {"doc_id": "k:1", "posted_at": datetime(2026, 10, 1)}
    with pytest.raises(Exception, match="naive"), warehouse_engine.begin() as conn:
        sync_rows(conn, table, [row], table.c.doc_id.startswith("k:"))


def test_sync_deletes_rows_that_left_the_scope_only(warehouse_engine):
    table = STANDARD_TABLES["finance_doc"]
    blank = {c.name: None for c in table.columns}
    with warehouse_engine.begin() as conn:
        sync_rows(
            conn,
            table,
            [blank | {"doc_id": "k:1"}, blank | {"doc_id": "k:2"}],
            table.c.doc_id.startswith("k:"),
        )
        sync_rows(conn, table, [blank | {"doc_id": "x:9"}], table.c.doc_id.startswith("x:"))
        sync_rows(conn, table, [blank | {"doc_id": "k:2", "amount_fen": 5}], table.c.doc_id.startswith("k:"))
    with warehouse_engine.connect() as conn:
        rows = read_table(conn, table)
    assert sorted(rows["doc_id"]) == ["k:2", "x:9"]
    assert int(rows.set_index("doc_id").loc["k:2", "amount_fen"]) == 5


def _found(*claims: str) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"exception_type": "MISSING_IN_FINANCE", "claim_no": c, "amount_fen": 100, "detail": "x"}
            for c in claims
        ]
    )


def test_exception_lifecycle_ages_keeps_reviewer_status_and_resolves(warehouse_engine):
    kwargs = {"period": "2026-10", "company_code": "C01"}
    with warehouse_engine.begin() as conn:
        first = record_exceptions(conn, _found("BX1", "BX2"), as_of=AS_OF, **kwargs)
        ack_id = first.loc[first["claim_no"] == "BX2", "exception_id"].item()
        conn.execute(exception.update().where(exception.c.exception_id == ack_id).values(status="ignored"))
        later = AS_OF + timedelta(days=3)
        second = record_exceptions(conn, _found("BX2"), as_of=later, **kwargs)
    with warehouse_engine.connect() as conn:
        table = read_table(conn, exception).set_index("claim_no")
    assert second.loc[0, "status"] == "ignored"  # the reviewer's decision survives the re-run
    assert table.loc["BX2", "first_seen"] == AS_OF and table.loc["BX2", "last_seen"] == later
    assert table.loc["BX1", "status"] == "resolved"  # no longer found: resolved
    assert table.loc["BX1", "exception_id"] == exception_id(
        {
            "exception_type": "MISSING_IN_FINANCE",
            "company_code": "C01",
            "period": "2026-10",
            "claim_no": "BX1",
        }
    )


def test_recording_the_same_run_twice_changes_nothing(warehouse_engine):
    kwargs = {"period": "2026-10", "company_code": "C01", "as_of": AS_OF}
    with warehouse_engine.begin() as conn:
        record_exceptions(conn, _found("BX1", "BX3"), **kwargs)
    with warehouse_engine.connect() as conn:
        before = read_table(conn, exception)
    with warehouse_engine.begin() as conn:
        record_exceptions(conn, _found("BX1", "BX3"), **kwargs)
    with warehouse_engine.connect() as conn:
        after = read_table(conn, exception)
    pd.testing.assert_frame_equal(before, after)


def _statuses(engine) -> dict[tuple[str, str], str]:
    with engine.connect() as conn:
        table = read_table(conn, exception)
    return {(r.period, r.claim_no): r.status for r in table.itertuples()}


def test_resolution_is_scoped_to_the_runs_period_and_company(warehouse_engine):
    with warehouse_engine.begin() as conn:
        record_exceptions(conn, _found("BX1"), period="2026-09", as_of=AS_OF, company_code="C01")
        record_exceptions(conn, _found("BX2"), period="2026-10", as_of=AS_OF, company_code="C02")
        record_exceptions(conn, _found("BX3"), period="2026-10", as_of=AS_OF, company_code="C01")
        # a later run of 2026-10 for C01 finds nothing: only BX3 is resolved
        record_exceptions(conn, _found(), period="2026-10", as_of=AS_OF, company_code="C01")
    assert _statuses(warehouse_engine) == {
        ("2026-09", "BX1"): "open",
        ("2026-10", "BX2"): "open",
        ("2026-10", "BX3"): "resolved",
    }


def test_resolved_reopens_and_ignored_stays_ignored_when_found_again(warehouse_engine):
    kwargs = {"period": "2026-10", "company_code": "C01"}
    with warehouse_engine.begin() as conn:
        first = record_exceptions(conn, _found("BX1", "BX2"), as_of=AS_OF, **kwargs)
        ignored = first.loc[first["claim_no"] == "BX2", "exception_id"].item()
        conn.execute(exception.update().where(exception.c.exception_id == ignored).values(status="ignored"))
        record_exceptions(conn, _found(), as_of=AS_OF + timedelta(days=1), **kwargs)
    assert _statuses(warehouse_engine) == {("2026-10", "BX1"): "resolved", ("2026-10", "BX2"): "ignored"}
    with warehouse_engine.begin() as conn:
        again = record_exceptions(conn, _found("BX1", "BX2"), as_of=AS_OF + timedelta(days=2), **kwargs)
    # found again after it was resolved: reopened (issue 11, "History you can see"), not plain open
    assert dict(zip(again["claim_no"], again["status"], strict=True)) == {"BX1": "reopened", "BX2": "ignored"}
    assert _statuses(warehouse_engine) == {("2026-10", "BX1"): "reopened", ("2026-10", "BX2"): "ignored"}


def test_the_same_budget_line_over_in_two_months_is_two_exceptions(warehouse_engine):
    found = pd.DataFrame([{"exception_type": "BUDGET_OVERRUN", "budget_code": "B-D01-OPS", "amount_fen": 5}])
    with warehouse_engine.begin() as conn:
        oct_ = record_exceptions(conn, found, period="2026-10", as_of=AS_OF, company_code="C01")
        nov = record_exceptions(conn, found, period="2026-11", as_of=AS_OF, company_code="C01")
    assert oct_.loc[0, "exception_id"] != nov.loc[0, "exception_id"]


def test_tens_of_thousands_of_exceptions_resolve_within_the_variable_limit(warehouse_engine):
    """40k ids: more than SQLite's 32766 bound variables in one statement (the old NOT IN broke)."""
    kwargs = {"period": "2026-10", "company_code": "C01"}
    many = _found(*(f"BX{i:06d}" for i in range(40_000)))
    with warehouse_engine.begin() as conn:
        record_exceptions(conn, many, as_of=AS_OF, **kwargs)
        record_exceptions(conn, many.iloc[:1000], as_of=AS_OF + timedelta(days=1), **kwargs)
    with warehouse_engine.connect() as conn:
        counts = read_table(conn, exception)["status"].value_counts().to_dict()
    assert counts == {"resolved": 39_000, "open": 1000}
