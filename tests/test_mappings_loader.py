"""Loading mapping files: the defaults load, and a wrong file fails early naming file, line and key."""

from __future__ import annotations

import textwrap

import pytest

from mappings import MappingError, default_mapping_path, load_code_tables, load_mapping, map_record
from oafin.records import RawRecord

HEADER = """\
system: acme
entity: finance_doc
forms:
  BILL:
    id_field: FID
    fields:
"""


def write(tmp_path, fields: str, header: str = HEADER):
    path = tmp_path / "acme.yaml"
    path.write_text(header + textwrap.indent(textwrap.dedent(fields), " " * 6), encoding="utf-8")
    return path


def test_default_mappings_load():
    dingtalk = load_mapping(default_mapping_path("dingtalk"))
    kingdee = load_mapping(default_mapping_path("kingdee"))
    assert (dingtalk.system, dingtalk.entity, dingtalk.kinds) == (
        "dingtalk",
        "expense_claim",
        ["PROC-OAFIN-EXPENSE"],
    )
    assert (kingdee.system, kingdee.entity, kingdee.kinds) == (
        "kingdee",
        "finance_doc",
        ["ER_ExpReimbursement", "AP_PAYBILL", "GL_VOUCHER"],
    )
    assert dingtalk.context_keys() == ["company_code"]
    assert kingdee.context_keys() == []


def test_unknown_system_has_no_default():
    with pytest.raises(FileNotFoundError, match="shipped: dingtalk, .*kingdee"):
        default_mapping_path("no-such-oa")


def test_a_typo_names_file_line_and_key(tmp_path):
    path = write(
        tmp_path,
        """\
        doc_no: FBillNo
        amount_fen: {path: FAmount, pasre: money}
        """,
    )
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:8: forms.BILL.fields.amount_fen")
    assert "pasre" in message


def test_a_money_column_read_as_text_is_refused(tmp_path):
    path = write(tmp_path, "amount_fen: FAmount\n")
    with pytest.raises(
        MappingError, match=r"acme\.yaml:7: forms\.BILL\.fields\.amount_fen: .*fen column.*parse: money"
    ):
        load_mapping(path)


def test_an_unknown_parse_kind_lists_the_known_ones(tmp_path):
    path = write(tmp_path, "amount_fen: {path: FAmount, parse: mony}\n")
    with pytest.raises(MappingError, match=r"fields\.amount_fen\.parse\.0: .*'money'"):
        load_mapping(path)


def test_a_column_the_standard_does_not_have(tmp_path):
    path = write(tmp_path, "doc_number: FBillNo\n")
    with pytest.raises(
        MappingError, match=r"forms\.BILL\.fields\.doc_number: 'doc_number' is not a column of finance_doc"
    ):
        load_mapping(path)


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ("status: {path: [FA, FB], values: {[C]: paid}}", "should be a list of 2 values"),
        ("status: {path: [FA, FB]}", "needs a values map"),
        ("status: {path: FA, form: 状态}", "exactly one source"),
        ("status: {path: FA, codes: colours}", "unknown code table"),
        ("payee_id: {path: FA, via: staff.number}", "one of identity, person_id"),
        ("payee_id: {path: FA, via: people.kingdee_staff_number}", "write via: identity"),
        ("doc_id: {template: '{system}:{form}'}", "unknown name"),
        ("posted_at: {path: FDate, parse: datetime, tz: Mars/Olympus}", "unknown time zone"),
        ("period: {period_of: [posted_at]}", "none of posted_at is mapped"),
        ("status: {path: FA, values: {A: x}, when: {currency: CNY}}", "'currency' is not mapped"),
        ("status: {path: FA, values: {A: x, A : y}}", "duplicate key"),
        ("doc_no: {label: 单号}", "only applies to children"),
        ("source_doc_nos: FSOURCEBILLNO", "list column"),
    ],
)
def test_mistakes_are_explained(tmp_path, fields, complaint):
    with pytest.raises(MappingError, match="acme.yaml") as caught:
        load_mapping(write(tmp_path, fields + "\n"))
    assert complaint in str(caught.value)


def test_when_cycle_is_refused(tmp_path):
    path = write(
        tmp_path,
        """\
        status: {path: FA, values: {A: paid}, when: {currency: CNY}}
        currency: {path: FC, values: {P: CNY}, when: {status: paid}}
        """,
    )
    with pytest.raises(MappingError, match="depends on itself"):
        load_mapping(path)


def test_not_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("system: acme\nforms: {BILL: [\n", encoding="utf-8")
    with pytest.raises(MappingError, match=r"broken\.yaml: not valid YAML"):
        load_mapping(path)


def test_missing_file(tmp_path):
    with pytest.raises(MappingError, match="not found"):
        load_mapping(tmp_path / "nope.yaml")


def test_scalars_stay_text_as_typed(tmp_path):
    """YAML 1.1 would read 06 as 6 and NO as false; a value map must compare what was typed."""
    path = write(
        tmp_path,
        """\
        doc_no: FBillNo
        status: {path: FS, values: {06: paid, NO: rejected, 2026-10-01: received}}
        """,
    )
    mapping = load_mapping(path)
    tables = load_code_tables()

    def status(value):
        return map_record(mapping, RawRecord("acme", "BILL", "1", {"FS": value}), tables).values["status"]

    assert (status("06"), status("NO"), status("2026-10-01")) == ("paid", "rejected", "received")
    [issue] = map_record(mapping, RawRecord("acme", "BILL", "1", {"FS": "6"}), tables).issues
    assert issue.code == "UNMAPPED_CODE"


def test_shared_fields_and_form_overrides(tmp_path):
    header = """\
system: acme
entity: finance_doc
fields:
  doc_type: {constant: voucher}
  doc_no: FBillNo
forms:
  BILL:
    fields:
      doc_type: {constant: payment}
  VOUCHER:
    fields:
      account_code: FAccount
"""
    path = tmp_path / "acme.yaml"
    path.write_text(header, encoding="utf-8")
    mapping = load_mapping(path)
    tables = load_code_tables()
    row = {"FBillNo": "X1", "FAccount": "1002"}
    bill = map_record(mapping, RawRecord("acme", "BILL", "1", row), tables).values
    voucher = map_record(mapping, RawRecord("acme", "VOUCHER", "2", row), tables).values
    assert (bill["doc_type"], bill["doc_no"], bill["account_code"]) == ("payment", "X1", None)
    assert (voucher["doc_type"], voucher["doc_no"], voucher["account_code"]) == ("voucher", "X1", "1002")
    assert mapping.field_keys("VOUCHER") == ["FBillNo", "FAccount"]
