"""The default Kingdee mapping on hand-built ExecuteBillQuery rows in the shapes of default-forms.md."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from mappings import default_mapping_path, load_code_tables, load_mapping, map_record, map_records
from oafin.records import RawRecord
from oafin.standard import ENTITIES

TABLES = load_code_tables()
# person_id, name, ... and each person's Kingdee staff number (identities.csv, system kingdee)
PEOPLE = TABLES.people.assign(
    kingdee_staff_number=TABLES.people.person_id.map(TABLES.external_ids("kingdee"))
)

# default-forms.md, "Kingdee K/3 Cloud": the keys each form's default mapping must read
REIMBURSEMENT_KEYS = {
    "FID",
    "FBillNo",
    "FDate",
    "F_OAFIN_OANo",
    "FProposerID.FStaffNumber",
    "FRequestDeptID.FNumber",
    "FExpenseAmount",
    "FDocumentStatus",
    "FCloseStatus",
    "FCurrencyID.FNumber",
    "FOrgID.FNumber",
}
PAYMENT_KEYS = {
    "FID",
    "FBillNo",
    "FDATE",
    "F_OAFIN_OANo",
    "FSOURCEBILLNO",
    "FCONTACTUNIT.FNumber",
    "FCONTACTUNITTYPE",
    "FREALPAYAMOUNTFOR_D",
    "FDOCUMENTSTATUS",
    "FCANCELSTATUS",
    "FPAYORGID.FNumber",
}


# -- fixture builders: one ExecuteBillQuery row, keyed by field key ----------------------------


def reimbursement(**overrides: Any) -> dict[str, Any]:
    row = {
        "FID": 100234,
        "FBillNo": "FYBX2026100001",
        "FDate": "2026-10-31T10:00:00",
        "F_OAFIN_OANo": "202610301234000123",
        "FProposerID.FStaffNumber": PEOPLE.kingdee_staff_number[3],
        "FRequestDeptID.FNumber": "D01",
        "FExpenseAmount": Decimal("1234.50"),
        "FDocumentStatus": "C",
        "FCloseStatus": "A",
        "FCurrencyID.FNumber": "PRE001",
        "FOrgID.FNumber": "C01",
    }
    row.update(overrides)
    return row


def payment(**overrides: Any) -> dict[str, Any]:
    row = {
        "FID": 200117,
        "FBillNo": "FKD2026110003",
        "FDATE": "2026-11-02T14:30:00",
        "F_OAFIN_OANo": "",
        "FSOURCEBILLNO": "FYBX2026100001",
        "FCONTACTUNITTYPE": "BD_Empinfo",
        "FCONTACTUNIT.FNumber": PEOPLE.kingdee_staff_number[3],
        "FREALPAYAMOUNTFOR_D": "1234.50",
        "FDOCUMENTSTATUS": "C",
        "FCANCELSTATUS": "A",
        "FPAYORGID.FNumber": "C01",
    }
    row.update(overrides)
    return row


def raw(form_id: str, row: dict[str, Any]) -> RawRecord:
    return RawRecord(system="kingdee", kind=form_id, source_id=str(row["FID"]), payload=row)


@pytest.fixture(scope="module")
def mapping():
    return load_mapping(default_mapping_path("kingdee"))


def bill(mapping, **overrides):
    return map_record(mapping, raw("ER_ExpReimbursement", reimbursement(**overrides)), TABLES)


def pay(mapping, **overrides):
    return map_record(mapping, raw("AP_PAYBILL", payment(**overrides)), TABLES)


# -- the reimbursement bill ------------------------------------------------------------------


def test_reimbursement_bill_maps_every_field(mapping):
    record = bill(mapping)
    v = record.values
    assert record.issues == []
    assert set(v) == set(ENTITIES["finance_doc"])
    assert v["doc_id"] == "kingdee:ER_ExpReimbursement:100234"
    assert v["doc_no"] == "FYBX2026100001"
    assert v["doc_type"] == "reimbursement"
    assert v["company_code"] == "C01"
    assert v["claim_no_ref"] == "202610301234000123"
    assert v["source_doc_nos"] == ""
    assert v["payee_id"] == PEOPLE.person_id[3]
    assert v["department_code"] == "D01"
    assert v["amount_fen"] == 123450 and type(v["amount_fen"]) is int
    assert v["currency"] == "CNY"
    assert v["status"] == "audited"
    assert v["posted_at"] == datetime(2026, 10, 31, 2, 0, tzinfo=UTC)  # China time, no zone in the source
    assert v["paid_at"] is None
    assert v["period"] == "2026-10"


@pytest.mark.parametrize(
    "amount", [Decimal("1234.50"), Decimal("1234.5"), 1234.5, "1234.50", "1,234.50", " １２３４.５ "]
)
def test_amount_as_number_or_text(mapping, amount):
    assert bill(mapping, FExpenseAmount=amount).values["amount_fen"] == 123450


def test_whole_yuan_integer(mapping):
    assert bill(mapping, FExpenseAmount=800).values["amount_fen"] == 80000


@pytest.mark.parametrize(
    ("typed", "expected"), [(" 2026103012 34000123 ", "202610301234000123"), ("", None), (None, None)]
)
def test_hand_typed_oa_number(mapping, typed, expected):
    record = bill(mapping, F_OAFIN_OANo=typed)
    assert record.values["claim_no_ref"] == expected
    assert record.issues == []


@pytest.mark.parametrize(
    ("close", "amount", "document", "expected"),
    [
        ("A", "1234.50", "Z", "received"),
        ("A", "1234.50", "A", "received"),
        ("A", "1234.50", "B", "received"),
        ("A", "1234.50", "C", "audited"),
        ("A", "1234.50", "D", "received"),
        ("B", 0, "C", "reversed"),  # closed with nothing on it
        ("B", "0.00", "C", "reversed"),
        ("B", Decimal("0"), "A", "reversed"),
        ("B", "1234.50", "C", "audited"),  # closed after being paid in full is not reversed
        ("", "0", "C", "audited"),  # zero but not closed
    ],
)
def test_reimbursement_status(mapping, close, amount, document, expected):
    record = bill(mapping, FCloseStatus=close, FExpenseAmount=amount, FDocumentStatus=document)
    assert record.values["status"] == expected
    assert record.issues == []


def test_unknown_document_status_is_unmapped(mapping):
    [issue] = bill(mapping, FDocumentStatus="X").issues
    assert (issue.code, issue.field, issue.value) == ("UNMAPPED_CODE", "status", "A+123450+X")


def test_unknown_currency_and_staff_are_unmapped(mapping):
    record = bill(mapping, **{"FCurrencyID.FNumber": "PRE007", "FProposerID.FStaffNumber": "STF99999"})
    assert record.values["currency"] is None and record.values["payee_id"] is None
    assert {(i.code, i.field, i.value) for i in record.issues} == {
        ("UNMAPPED_CODE", "currency", "PRE007"),
        ("UNMAPPED_CODE", "payee_id", "STF99999"),
    }


def test_bad_amount_text_is_a_contract_violation(mapping):
    record = bill(mapping, FExpenseAmount="1.234,50")
    assert record.values["amount_fen"] is None
    assert ("CONTRACT_VIOLATION", "amount_fen", "1.234,50") in {
        (i.code, i.field, i.value) for i in record.issues
    }


# -- the payment bill ------------------------------------------------------------------------


def test_payment_bill_maps_every_field(mapping):
    record = pay(mapping)
    v = record.values
    assert record.issues == []
    assert v["doc_id"] == "kingdee:AP_PAYBILL:200117"
    assert v["doc_no"] == "FKD2026110003"
    assert v["doc_type"] == "payment"
    assert v["company_code"] == "C01"
    assert v["claim_no_ref"] is None
    assert v["source_doc_nos"] == "FYBX2026100001"
    assert v["payee_id"] == PEOPLE.person_id[3]
    assert v["amount_fen"] == 123450
    assert v["currency"] == "CNY"
    assert v["status"] == "paid"
    assert v["posted_at"] is None
    assert v["paid_at"] == datetime(2026, 11, 2, 6, 30, tzinfo=UTC)
    assert v["period"] == "2026-11"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FYBX001,FYBX002", "FYBX001,FYBX002"),
        ("FYBX001, FYBX002 ,FYBX003", "FYBX001,FYBX002,FYBX003"),
        ("FYBX001，FYBX002", "FYBX001,FYBX002"),  # a full-width comma typed in Kingdee
        ("FYBX001,,", "FYBX001"),
        ("", ""),
    ],
)
def test_payment_settles_several_bills(mapping, text, expected):
    assert pay(mapping, FSOURCEBILLNO=text).values["source_doc_nos"] == expected


@pytest.mark.parametrize(
    ("cancel", "document", "expected"),
    [
        ("A", "C", "paid"),
        ("A", "A", "received"),
        ("A", "B", "received"),
        ("B", "C", "reversed"),
        ("B", "A", "reversed"),
    ],
)
def test_payment_status(mapping, cancel, document, expected):
    assert pay(mapping, FCANCELSTATUS=cancel, FDOCUMENTSTATUS=document).values["status"] == expected


def test_payment_to_a_supplier_has_no_person_payee(mapping):
    record = pay(mapping, FCONTACTUNITTYPE="BD_Supplier", **{"FCONTACTUNIT.FNumber": "VEN0001"})
    assert record.values["payee_id"] is None
    assert record.issues == []


def test_period_is_the_shanghai_month_across_midnight(mapping):
    record = pay(mapping, FDATE="2026-11-01T00:30:00")
    assert record.values["paid_at"] == datetime(2026, 10, 31, 16, 30, tzinfo=UTC)
    assert record.values["period"] == "2026-11"


def test_paid_straight_from_the_claim(mapping):
    record = pay(mapping, F_OAFIN_OANo="202610301234000123", FSOURCEBILLNO="")
    assert (record.values["claim_no_ref"], record.values["source_doc_nos"]) == ("202610301234000123", "")


# -- field keys: what the connector asks ExecuteBillQuery for --------------------------------


def test_field_keys_are_exactly_the_documented_keys_id_first(mapping):
    for form_id, documented in (("ER_ExpReimbursement", REIMBURSEMENT_KEYS), ("AP_PAYBILL", PAYMENT_KEYS)):
        keys = mapping.field_keys(form_id)
        assert keys[0] == "FID"
        assert len(keys) == len(set(keys))
        assert set(keys) == documented


def test_field_keys_order_is_stable(mapping):
    again = load_mapping(default_mapping_path("kingdee"))
    for form_id in mapping.kinds:
        assert mapping.field_keys(form_id) == again.field_keys(form_id) == mapping.field_keys(form_id)


def test_rows_zipped_back_from_arrays_in_field_keys_order(mapping):
    """ExecuteBillQuery answers bare arrays in FieldKeys order (source-systems.md §7.3)."""
    for form_id, row in (("ER_ExpReimbursement", reimbursement()), ("AP_PAYBILL", payment())):
        keys = mapping.field_keys(form_id)
        array = [row[k] for k in keys]  # what the server sends
        zipped = dict(zip(keys, array, strict=True))  # what the connector lands
        assert (
            map_record(mapping, raw(form_id, zipped), TABLES).values
            == map_record(mapping, raw(form_id, row), TABLES).values
        )


def test_both_forms_in_one_batch(mapping):
    out = map_records(
        mapping, [raw("ER_ExpReimbursement", reimbursement()), raw("AP_PAYBILL", payment())], TABLES
    )
    assert [r.values["doc_type"] for r in out] == ["reimbursement", "payment"]
    assert all(r.entity == "finance_doc" and r.issues == [] for r in out)


def test_a_dingtalk_record_is_refused(mapping):
    with pytest.raises(ValueError, match="dingtalk"):
        map_record(mapping, RawRecord("dingtalk", "AP_PAYBILL", "1", payment()), TABLES)
