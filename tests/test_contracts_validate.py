"""Contracts applied: failing records are quarantined with every reason; invoices are reported."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_contracts.checks import (
    USCC_ALPHABET,
    invoice_format_ok,
    invoice_key,
    tax_matches_rate,
    total_matches,
    uscc_check_char,
    uscc_checksum_ok,
    uscc_format_ok,
    vat_rate_legal,
)
from data_contracts.frames import dtypes, to_frame
from data_contracts.validate import check_invoices, contract_failures, validate_records
from oafin.records import Issue, MappedRecord
from oafin.standard import columns

SHANGHAI = ZoneInfo("Asia/Shanghai")
TABLES = Path(__file__).resolve().parent.parent / "mappings" / "tables"
SELLER = "91350100M000100Y43"  # the standard's example with its correct check character


def claim(n: int = 1, **changes) -> MappedRecord:
    values = {
        "claim_id": f"dingtalk:PI-{n}",
        "claim_no": f"2026100500{n:04d}",
        "company_code": "C01",
        "applicant_id": "P0005",
        "department_code": "D01",
        "expense_type_code": "TRAVEL",
        "amount_fen": 123_450,
        "currency": "CNY",
        "status": "approved",
        "submitted_at": dt.datetime(2026, 10, 5, 9, 0, tzinfo=SHANGHAI),
        "approved_at": dt.datetime(2026, 10, 6, 0, 30, tzinfo=SHANGHAI),
        "approver_ids": "P0002,P0001",
        "budget_code": "B-D01-OPS",
        "project_code": None,
        "title": "上海出差",
    }
    values.update(changes)
    return MappedRecord(
        "expense_claim", "dingtalk", "PROC-OAFIN-EXPENSE", f"PI-{n}", values, {"business_id": n}
    )


def doc(**changes) -> MappedRecord:
    values = {
        "doc_id": "kingdee:AP_PAYBILL:100231",
        "doc_no": "FKD00000231",
        "doc_type": "payment",
        "company_code": "C01",
        "claim_no_ref": None,
        "source_doc_nos": "FYBX0001,FYBX0002",
        "payee_id": "P0005",
        "department_code": None,
        "amount_fen": 123_450,
        "currency": "CNY",
        "status": "paid",
        "posted_at": None,
        "paid_at": dt.datetime(2026, 10, 8, tzinfo=dt.UTC),
        "account_code": "100201",
        "period": "2026-10",
    }
    values.update(changes)
    return MappedRecord(
        "finance_doc", "kingdee", "AP_PAYBILL", "100231", values, {"FBillNo": values["doc_no"]}
    )


def test_clean_claims_pass_with_standard_dtypes():
    records = [claim(n) for n in range(3)]
    result = validate_records("expense_claim", records)
    assert result.quarantined == []
    assert list(result.valid.columns) == columns("expense_claim")
    assert result.valid.dtypes.to_dict() == dtypes("expense_claim")
    assert result.valid["claim_id"].tolist() == [r.values["claim_id"] for r in records]
    assert result.valid.at[0, "amount_fen"] == 123_450
    # 00:30 in Shanghai is 16:30 UTC the day before
    assert result.valid.at[0, "approved_at"] == pd.Timestamp("2026-10-05 16:30", tz="UTC")


@pytest.mark.parametrize(
    ("changes", "field", "value", "check"),
    [
        ({"amount_fen": None}, "amount_fen", None, "not_nullable"),
        ({"amount_fen": -100}, "amount_fen", "-100", "amount_positive"),
        ({"amount_fen": 0}, "amount_fen", "0", "amount_positive"),
        ({"amount_fen": 1234.5}, "amount_fen", "1234.5", "integer_kind"),
        ({"status": "paid"}, "status", "paid", "claim_status"),
        ({"status": "approved", "approved_at": None}, "approved_at", None, "approved_at_required"),
        (
            {"submitted_at": dt.datetime(2026, 10, 5, 9, 0)},
            "submitted_at",
            "2026-10-05 09:00:00",
            "timestamp_tz_aware",
        ),
        (
            {"approved_at": dt.datetime(2026, 10, 4, tzinfo=dt.UTC)},
            "approved_at",
            "2026-10-04 00:00:00+00:00",
            "approved_after_submitted",
        ),
        ({"currency": "rmb"}, "currency", "rmb", "currency_code"),
        ({"claim_no": ""}, "claim_no", "", "non_empty"),
        ({"claim_id": "PI-1"}, "claim_id", "PI-1", "standard_id"),
        ({"applicant_id": None}, "applicant_id", None, "not_nullable"),
    ],
)
def test_one_fault_quarantines_the_claim_with_its_field_and_reason(changes, field, value, check):
    good, bad = claim(1), claim(2, **changes)
    result = validate_records("expense_claim", [good, bad])
    assert result.valid["claim_id"].tolist() == [good.values["claim_id"]]
    [quarantined] = result.quarantined
    assert quarantined.source_id == bad.source_id and quarantined.raw == bad.raw
    [issue] = quarantined.issues
    assert (issue.code, issue.field, issue.value) == ("CONTRACT_VIOLATION", field, value)
    assert issue.message.startswith(f"{check}: ")


def test_a_record_with_several_faults_lists_all_of_them():
    bad = claim(
        amount_fen=-5, currency="rmb", status="done", submitted_at=dt.datetime(2026, 10, 5), title=1.5
    )
    [quarantined] = validate_records("expense_claim", [bad]).quarantined
    found = {(i.field, i.message.split(":")[0]) for i in quarantined.issues}
    assert found == {
        ("amount_fen", "amount_positive"),
        ("currency", "currency_code"),
        ("status", "claim_status"),
        ("submitted_at", "timestamp_tz_aware"),
        ("title", "text_kind"),
    }
    assert {i.code for i in quarantined.issues} == {"CONTRACT_VIOLATION"}


def test_a_mapping_issue_quarantines_and_is_kept_first():
    unmapped = Issue("UNMAPPED_CODE", "expense_type_code", "旅游费", "费用类型 not in expense_types")
    record = claim(expense_type_code=None, currency="rmb")
    record.issues.append(unmapped)
    result = validate_records("expense_claim", [record, claim(2)])
    assert len(result.valid) == 1
    [quarantined] = result.quarantined
    assert quarantined.issues[0] == unmapped
    # the missing expense_type_code is explained by the mapping issue, not reported twice
    assert [(i.code, i.field) for i in quarantined.issues] == [
        ("UNMAPPED_CODE", "expense_type_code"),
        ("CONTRACT_VIOLATION", "currency"),
    ]
    assert record.issues == [unmapped]  # the input record is not changed


def test_a_mapping_issue_alone_still_quarantines():
    record = claim()
    record.issues.append(Issue("UNMAPPED_CODE", "department_code", "外星部", "unknown department"))
    result = validate_records("expense_claim", [record])
    assert result.valid.empty and result.valid.dtypes.to_dict() == dtypes("expense_claim")
    assert [i.code for i in result.quarantined[0].issues] == ["UNMAPPED_CODE"]


def test_no_records_give_an_empty_valid_frame():
    result = validate_records("finance_doc", [])
    assert result.quarantined == [] and list(result.valid.columns) == columns("finance_doc")


def test_a_record_of_another_entity_is_a_caller_bug():
    with pytest.raises(ValueError, match="finance_doc"):
        validate_records("expense_claim", [doc()])


def test_finance_docs_amount_rules_spare_reversed_documents():
    reversed_zero = doc(doc_id="kingdee:AP_PAYBILL:1", status="reversed", amount_fen=0)
    received_zero = doc(doc_id="kingdee:AP_PAYBILL:2", status="received", amount_fen=0)
    paid_undated = doc(doc_id="kingdee:AP_PAYBILL:3", paid_at=None)
    bad_period = doc(doc_id="kingdee:AP_PAYBILL:4", period="2026-13")
    result = validate_records("finance_doc", [reversed_zero, received_zero, paid_undated, bad_period])
    assert result.valid["doc_id"].tolist() == ["kingdee:AP_PAYBILL:1"]
    reasons = {
        r.values["doc_id"]: [(i.field, i.message.split(":")[0]) for i in r.issues] for r in result.quarantined
    }
    assert reasons == {
        "kingdee:AP_PAYBILL:2": [("amount_fen", "doc_amount_positive")],
        "kingdee:AP_PAYBILL:3": [("posted_at", "doc_dated"), ("paid_at", "paid_at_required")],
        "kingdee:AP_PAYBILL:4": [("period", "period_format")],
    }


def _table(name: str) -> list[dict]:
    with (TABLES / name).open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_the_shipped_code_tables_pass_their_contracts():
    budgets = [{**row, "amount_fen": int(row["amount_fen"])} for row in _table("budgets.csv")]
    people = _table("people.csv")
    identities = _table("identities.csv")
    for entity, rows in (("budget", budgets), ("person", people), ("person_identity", identities)):
        records = [MappedRecord(entity, "tables", entity, str(i), row, row) for i, row in enumerate(rows)]
        result = validate_records(entity, records)
        assert result.quarantined == [] and len(result.valid) == len(rows) > 0


@pytest.mark.parametrize(
    ("changes", "field", "check"),
    [
        ({"period": "2026-1"}, "period", "period_format"),
        ({"amount_fen": -1}, "amount_fen", "amount_not_negative"),
        ({"budget_code": ""}, "budget_code", "non_empty"),
    ],
)
def test_a_bad_budget_line_is_quarantined(changes, field, check):
    values = {
        "budget_code": "B-D01-OPS",
        "department_code": "D01",
        "period": "2026-10",
        "amount_fen": 0,
        **changes,
    }
    result = validate_records("budget", [MappedRecord("budget", "tables", "budget", "1", values, values)])
    [issue] = result.quarantined[0].issues
    assert issue.field == field and issue.message.startswith(check)


# --- invoices: reported, not quarantined --------------------------------------------------------


def invoice(claim_id: str = "dingtalk:PI-1", **changes) -> dict:
    row = {
        "claim_id": claim_id,
        "invoice_code": "044002600111",
        "invoice_no": "12345678",
        "issue_date": dt.date(2026, 10, 5),
        "amount_ex_tax_fen": 100_000,
        "tax_fen": 6_000,
        "total_fen": 106_000,
        "tax_rate_bp": 600,
        "seller_tax_id": SELLER,
    }
    row.update(changes)
    return row


GOOD_INVOICES = [
    invoice(),
    invoice(
        invoice_code="3100261234", invoice_no="00012345", tax_rate_bp=1300, tax_fen=13_000, total_fen=113_000
    ),
    invoice(invoice_code=None, invoice_no="26442000000000000001"),
    invoice(
        invoice_code="", invoice_no="26442000000000000002", tax_rate_bp=100, tax_fen=1_000, total_fen=101_000
    ),
    invoice(issue_date=dt.date(2019, 3, 31), tax_rate_bp=1600, tax_fen=16_000, total_fen=116_000),
    invoice(amount_ex_tax_fen=10_005, tax_fen=600, total_fen=10_605),  # 600.3 fen of tax
]


def test_good_invoices_are_not_reported():
    report = check_invoices(to_frame("claim_invoice", GOOD_INVOICES))
    assert list(report.columns) == ["claim_id", "invoice_key", "reasons"]
    assert report.empty


@pytest.mark.parametrize(
    ("changes", "rules"),
    [
        ({"invoice_code": "04400260011"}, ["invoice_format"]),
        ({"invoice_no": "1234567"}, ["invoice_format"]),
        ({"invoice_no": None}, ["invoice_format"]),
        ({"invoice_code": None, "invoice_no": "25442000000000000001"}, ["digital_invoice_year"]),
        ({"tax_rate_bp": 1600, "tax_fen": 16_000, "total_fen": 116_000}, ["vat_rate_legal"]),
        (
            {"issue_date": dt.date(2019, 4, 1), "tax_rate_bp": 1600, "tax_fen": 16_000, "total_fen": 116_000},
            ["vat_rate_legal"],
        ),
        ({"tax_rate_bp": None}, ["vat_rate_legal"]),
        ({"total_fen": 106_001}, ["total_matches"]),
        ({"tax_fen": 6_002, "total_fen": 106_002}, ["tax_matches_rate"]),
        ({"tax_fen": 6_002}, ["total_matches", "tax_matches_rate"]),
        ({"total_fen": None}, ["amounts_required"]),
        ({"amount_ex_tax_fen": -100_000, "tax_fen": -6_000, "total_fen": -106_000}, ["amounts_positive"]),
        ({"issue_date": None}, ["issue_date_required"]),
        ({"seller_tax_id": "91350100M000100Y40"}, ["seller_tax_id_checksum"]),
        ({"seller_tax_id": "91350100M000100Y4Z"}, ["seller_tax_id_format"]),
        ({"seller_tax_id": None}, ["seller_tax_id_format"]),
    ],
)
def test_a_failing_invoice_is_reported_with_every_reason(changes, rules):
    frame = to_frame("claim_invoice", [invoice("dingtalk:PI-1"), invoice("dingtalk:PI-2", **changes)])
    report = check_invoices(frame)
    assert report.index.tolist() == [1]
    [(claim_id, key, reasons)] = report.itertuples(index=False)
    assert claim_id == "dingtalk:PI-2"
    row = {**invoice(), **changes}
    if row["invoice_no"] is None:
        assert pd.isna(key)
    else:
        assert key == invoice_key(row["invoice_code"], row["invoice_no"])
    assert [part.split(":")[0] for part in reasons.split("; ")] == rules


def test_invoice_reasons_name_the_field_and_value():
    report = check_invoices(to_frame("claim_invoice", [invoice(total_fen=106_001)]))
    assert (
        report.at[0, "reasons"]
        == "total_matches: total must equal ex-tax amount + tax exactly (total_fen=106001)"
    )


def test_invoice_options_tolerance_and_allow_list():
    frame = to_frame(
        "claim_invoice", [invoice(tax_fen=6_002, total_fen=106_002, seller_tax_id="91350100M000100Y40")]
    )
    assert check_invoices(frame).at[0, "reasons"].count(";") == 1
    assert check_invoices(frame, tax_tolerance_fen=2, uscc_allow={"91350100M000100Y40"}).empty


def test_the_report_keeps_the_failing_rows_index_labels():
    frame = to_frame("claim_invoice", [invoice(), invoice(total_fen=1), invoice()]).set_index(
        pd.Index([7, 8, 9])
    )
    report = check_invoices(frame)
    assert report.index.tolist() == [8]
    assert frame.loc[report.index, "total_fen"].tolist() == [1]


def test_the_invoice_model_and_check_invoices_agree():
    rows = [*GOOD_INVOICES, invoice(total_fen=1), invoice(seller_tax_id="X"), invoice(tax_rate_bp=1700)]
    frame = to_frame("claim_invoice", rows)
    report = check_invoices(frame)
    failures = contract_failures("claim_invoice", frame)
    by_model = {(row, check) for row, check in zip(failures["row"], failures["check"], strict=True)}
    by_report = {
        (row, part.split(":")[0])
        for row, reasons in report["reasons"].items()
        for part in reasons.split("; ")
    }
    assert by_model == by_report
    assert {row for row, _ in by_report} == {6, 7, 8}


def test_ten_thousand_invoices_report_exactly_the_bad_ones():
    """(How fast: ``python -m bench.suite_timings``.)"""
    rows = [invoice(f"dingtalk:PI-{i}", invoice_no=f"{i:08d}") for i in range(10_000)]
    for i in range(0, 10_000, 50):
        rows[i] = {**rows[i], "tax_rate_bp": 1600}
    report = check_invoices(to_frame("claim_invoice", rows))
    assert len(report) == 200
    assert set(report["claim_id"]) == {f"dingtalk:PI-{i}" for i in range(0, 10_000, 50)}


# The vectorised invoice rules must say what the scalar checks say, row for row.

digits = st.text(alphabet="0123456789", min_size=1, max_size=21)
uscc = st.one_of(
    st.text(alphabet=USCC_ALPHABET, min_size=17, max_size=17).map(lambda s: s + uscc_check_char(s)),
    st.text(alphabet=USCC_ALPHABET + "Z", min_size=17, max_size=19),
    st.none(),
)
invoice_rows = st.fixed_dictionaries(
    {
        "claim_id": st.just("dingtalk:PI-1"),
        "invoice_code": st.one_of(
            st.none(), st.just(""), st.from_regex(r"[0-9]{10}|[0-9]{12}", fullmatch=True), digits
        ),
        "invoice_no": st.one_of(st.none(), st.from_regex(r"2[0-9]{19}|[0-9]{8}", fullmatch=True), digits),
        "issue_date": st.one_of(st.none(), st.dates(dt.date(2016, 1, 1), dt.date(2029, 12, 31))),
        "amount_ex_tax_fen": st.one_of(st.none(), st.integers(-(10**6), 10**9)),
        "tax_fen": st.one_of(st.none(), st.integers(-(10**3), 10**8)),
        "total_fen": st.one_of(st.none(), st.integers(-(10**6), 10**9)),
        "tax_rate_bp": st.one_of(
            st.none(), st.sampled_from([0, 100, 300, 500, 600, 900, 1000, 1100, 1300, 1600, 1700, 800])
        ),
        "seller_tax_id": uscc,
    }
)


@settings(max_examples=60, deadline=None)
@given(st.lists(invoice_rows, min_size=1, max_size=20))
def test_vectorised_invoice_rules_match_the_scalar_checks(rows):
    report = check_invoices(to_frame("claim_invoice", rows))
    reported = {i: {p.split(":")[0] for p in r.split("; ")} for i, r in report["reasons"].items()}
    for i, row in enumerate(rows):
        code, number, issued = row["invoice_code"], row["invoice_no"], row["issue_date"]
        ex, tax, total, rate = row["amount_ex_tax_fen"], row["tax_fen"], row["total_fen"], row["tax_rate_bp"]
        amounts = None not in (ex, tax, total)
        expected = {
            "invoice_format": not invoice_format_ok(code, number),
            "digital_invoice_year": invoice_format_ok(code, number)
            and not invoice_format_ok(code, number, issued),
            "issue_date_required": issued is None,
            "amounts_required": not amounts,
            # each amount present must be in range, whether or not the others are
            "amounts_positive": (ex is not None and ex <= 0)
            or (tax is not None and tax < 0)
            or (total is not None and total <= 0),
            "total_matches": amounts and not total_matches(ex, tax, total),
            "tax_matches_rate": None not in (ex, tax, rate) and not tax_matches_rate(ex, rate, tax),
            "vat_rate_legal": issued is not None and not vat_rate_legal(rate, issued),
            "seller_tax_id_format": not uscc_format_ok(row["seller_tax_id"]),
            "seller_tax_id_checksum": uscc_format_ok(row["seller_tax_id"])
            and not uscc_checksum_ok(row["seller_tax_id"]),
        }
        assert reported.get(i, set()) == {name for name, failed in expected.items() if failed}, row
