"""Frames of standard entities: every column, in order, one dtype per kind, nothing guessed."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from data_contracts.frames import dtypes, empty_frame, to_frame, to_frame_checked
from oafin.standard import ENTITIES, columns

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize("entity", list(ENTITIES))
def test_every_entity_gets_its_columns_in_order_with_standard_dtypes(entity):
    frame = to_frame(entity, [{}])
    assert list(frame.columns) == columns(entity)
    assert frame.dtypes.to_dict() == dtypes(entity)
    assert empty_frame(entity).dtypes.to_dict() == dtypes(entity)
    assert to_frame(entity, []).dtypes.to_dict() == dtypes(entity)


def test_missing_keys_are_missing_values_and_extra_keys_are_ignored():
    frame = to_frame("budget", [{"budget_code": "B-D01-OPS", "note": "not standard"}])
    assert list(frame.columns) == columns("budget")
    assert frame.at[0, "budget_code"] == "B-D01-OPS"
    assert pd.isna(frame.at[0, "period"]) and pd.isna(frame.at[0, "amount_fen"])


def test_kinds_are_converted_exactly():
    approved = dt.datetime(2026, 10, 6, 7, 30, tzinfo=SHANGHAI)  # 23:30 UTC the day before
    frame = to_frame(
        "expense_claim",
        [{"amount_fen": 9_007_199_254_740_993, "approved_at": approved, "approver_ids": ["P0002", "P0003"]}],
    )
    assert frame.at[0, "amount_fen"] == 9_007_199_254_740_993  # above 2**53: no float on the way
    assert frame.at[0, "approved_at"] == pd.Timestamp("2026-10-05 23:30", tz="UTC")
    assert frame.at[0, "approver_ids"] == "P0002,P0003"
    invoices = to_frame("claim_invoice", [{"issue_date": dt.date(2026, 10, 5)}])
    assert invoices.at[0, "issue_date"] == pd.Timestamp("2026-10-05")


def test_a_list_column_without_values_is_the_empty_string():
    frame = to_frame("finance_doc", [{"source_doc_nos": None}, {}])
    assert frame["source_doc_nos"].tolist() == ["", ""]


@pytest.mark.parametrize(
    ("column", "value", "check"),
    [
        ("amount_fen", 123.45, "integer_kind"),
        ("amount_fen", "12345", "integer_kind"),
        ("amount_fen", True, "integer_kind"),
        ("amount_fen", 2**63, "integer_range"),
        ("submitted_at", dt.datetime(2026, 10, 5, 9, 0), "timestamp_tz_aware"),
        ("submitted_at", "2026-10-05 09:00:00", "timestamp_tz_aware"),
        ("submitted_at", dt.datetime(2300, 1, 1, tzinfo=dt.UTC), "timestamp_range"),
        ("title", 1.5, "text_kind"),
        ("approver_ids", 7, "list_kind"),
    ],
)
def test_a_value_of_the_wrong_kind_becomes_missing_and_is_named(column, value, check):
    frame, errors = to_frame_checked("expense_claim", [{"claim_no": "A1"}, {column: value}])
    assert [(e.row, e.column, e.check) for e in errors] == [(1, column, check)]
    assert errors[0].value is value
    missing = frame.at[1, column]
    assert missing == "" if column == "approver_ids" else pd.isna(missing)
    assert frame.dtypes.to_dict() == dtypes("expense_claim")


def test_a_date_column_refuses_times_and_zones():
    rows = [
        {"issue_date": dt.datetime(2026, 10, 5)},  # midnight: a date written as a datetime
        {"issue_date": dt.datetime(2026, 10, 5, 12)},
        {"issue_date": dt.datetime(2026, 10, 5, tzinfo=SHANGHAI)},
        {"issue_date": "2026-10-05"},
    ]
    frame, errors = to_frame_checked("claim_invoice", rows)
    assert frame.at[0, "issue_date"] == pd.Timestamp("2026-10-05")
    assert [(e.row, e.check) for e in errors] == [(1, "date_kind"), (2, "date_kind"), (3, "date_kind")]


def test_ids_sent_as_numbers_become_text():
    row = {"person_id": "P0001", "system": "kingdee", "external_id": 10023}
    frame, errors = to_frame_checked("person_identity", [row])
    assert errors == []
    assert frame.at[0, "external_id"] == "10023"
