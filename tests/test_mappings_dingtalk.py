"""The default DingTalk mapping on hand-built process instances in the shapes of default-forms.md."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime
from typing import Any

import pytest

from mappings import default_mapping_path, load_code_tables, load_mapping, map_record, map_records
from oafin.records import RawRecord
from oafin.standard import ENTITIES

TABLES = load_code_tables()
# person_id, name, ... and each person's DingTalk userid (identities.csv, system dingtalk)
PEOPLE = TABLES.people.assign(dingtalk_userid=TABLES.people.person_id.map(TABLES.external_ids("dingtalk")))
CONTEXT = {"company_code": "C01"}
PROCESS_CODE = "PROC-OAFIN-EXPENSE"


# -- fixture builders: the topapi/processinstance/get shape (source-systems.md §1.3) ------------


def form(name: str, value: str, component_type: str = "TextField") -> dict[str, Any]:
    return {"name": name, "value": value, "component_type": component_type, "id": f"{component_type}-{name}"}


def invoice(
    code: str = "011002100111",
    number: str = "12345678",
    issued: str = "2026-10-20",
    ex_tax: str = "1000.00",
    tax: str = "60.00",
    total: str = "1060.00",
    rate: str = "6%",
    seller: str = "91350100M000100Y43",
) -> dict[str, Any]:
    cells = {
        "发票代码": code,
        "发票号码": number,
        "开票日期": issued,
        "不含税金额": ex_tax,
        "税额": tax,
        "价税合计": total,
        "税率": rate,
        "销售方纳税人识别号": seller,
    }
    return {"rowValue": [{"label": label, "value": value} for label, value in cells.items()]}


def operation(person: int, result: str, kind: str = "EXECUTE_TASK_NORMAL") -> dict[str, Any]:
    return {
        "userid": PEOPLE.dingtalk_userid[person],
        "date": "2026-10-31 23:50:00",
        "operation_type": kind,
        "operation_result": result,
        "remark": "",
    }


def instance(
    *,
    status: str = "COMPLETED",
    result: str = "agree",
    amount: str = "1,234.50",
    expense_type: str = "差旅费",
    department: str = "财务部",
    applicant: int = 3,
    operations: list[dict[str, Any]] | None = None,
    invoices: list[dict[str, Any]] | None = None,
    forms: dict[str, str] | None = None,
    **top: Any,
) -> dict[str, Any]:
    """A whole ``processinstance/get`` answer, envelope included."""
    if operations is None:
        operations = [
            operation(applicant, "NONE", "START_PROCESS_INSTANCE"),
            operation(1, "AGREE"),
            operation(0, "AGREE"),
        ]
    if invoices is None:
        invoices = [invoice()]
    fields = {
        "所属部门": (department, "DepartmentField"),
        "报销事由": (" 出差（上海） ", "TextareaField"),
        "费用类型": (expense_type, "DDSelectField"),
        "报销金额": (amount, "MoneyField"),
        "预算编号": ("B-D01-OPS", "TextField"),
        "项目编号": ("", "TextField"),
        "收款账号": ("6222021234567890123", "TextField"),
        "发票明细": (json.dumps(invoices, ensure_ascii=False), "TableField"),
    }
    for name, value in (forms or {}).items():
        fields[name] = (value, fields.get(name, ("", "TextField"))[1])
    process_instance = {
        "title": f"{PEOPLE.name[applicant]}提交的报销",
        "create_time": "2026-10-30 09:15:00",
        "finish_time": "2026-10-31 23:50:00",
        "originator_userid": PEOPLE.dingtalk_userid[applicant],
        "originator_dept_id": "1",
        "originator_dept_name": department,
        "status": status,
        "result": result,
        "business_id": "202610301234000123",
        "biz_action": "NONE",
        "form_component_values": [form(name, value, kind) for name, (value, kind) in fields.items()],
        "operation_records": operations,
        "tasks": [],
    }
    process_instance.update(top)
    return {"errcode": 0, "errmsg": "ok", "request_id": "r1", "process_instance": process_instance}


def raw(payload: dict[str, Any], source_id: str = "a1b2-c3d4") -> RawRecord:
    return RawRecord(system="dingtalk", kind=PROCESS_CODE, source_id=source_id, payload=payload)


@pytest.fixture(scope="module")
def mapping():
    return load_mapping(default_mapping_path("dingtalk"))


def mapped(mapping, payload, **kw):
    return map_record(mapping, raw(payload, **kw), TABLES, CONTEXT)


# -- a clean claim ---------------------------------------------------------------------------


def test_clean_instance_maps_every_field(mapping):
    record = mapped(mapping, instance())
    v = record.values
    assert record.issues == []
    assert set(v) == set(ENTITIES["expense_claim"])
    assert (record.entity, record.system, record.kind, record.source_id) == (
        "expense_claim",
        "dingtalk",
        PROCESS_CODE,
        "a1b2-c3d4",
    )
    assert v["claim_id"] == "dingtalk:a1b2-c3d4"
    assert v["claim_no"] == "202610301234000123"
    assert v["company_code"] == "C01"  # from the source config, not the form
    assert v["applicant_id"] == PEOPLE.person_id[3]
    assert v["department_code"] == "D01"  # default-forms.md: 财务部 → D01
    assert v["expense_type_code"] == "TRAVEL"
    assert v["amount_fen"] == 123450 and type(v["amount_fen"]) is int
    assert v["currency"] == "CNY"
    assert v["status"] == "approved"
    assert v["submitted_at"] == datetime(2026, 10, 30, 1, 15, tzinfo=UTC)
    # 2026-10-31 23:50:00 Beijing is 15:50 UTC the same day
    assert v["approved_at"] == datetime(2026, 10, 31, 15, 50, tzinfo=UTC)
    assert v["approved_at"].utcoffset().total_seconds() == 0
    assert v["approver_ids"] == f"{PEOPLE.person_id[1]},{PEOPLE.person_id[0]}"
    assert v["budget_code"] == "B-D01-OPS"
    assert v["project_code"] is None  # empty is missing, not an issue
    assert v["title"] == "出差(上海)"  # NFKC: full-width brackets, stripped
    assert "6222021234567890123" not in json.dumps(v, default=str)  # the bank card is not mapped
    assert record.raw["process_instance"]["business_id"] == "202610301234000123"


def test_invoices_map_with_the_claim_id(mapping):
    digital = invoice(
        code="", number="26312000000123456789", ex_tax="１００.00", tax="13", total="113.00", rate="13%"
    )
    record = mapped(mapping, instance(invoices=[invoice(), digital]))
    assert record.issues == []
    first, second = record.children["claim_invoice"]
    assert set(first) == set(ENTITIES["claim_invoice"])
    assert first == {
        "claim_id": "dingtalk:a1b2-c3d4",
        "invoice_code": "011002100111",
        "invoice_no": "12345678",
        "issue_date": date(2026, 10, 20),
        "amount_ex_tax_fen": 100000,
        "tax_fen": 6000,
        "total_fen": 106000,
        "tax_rate_bp": 600,
        "seller_tax_id": "91350100M000100Y43",
    }
    assert second["invoice_code"] is None  # a fully digital invoice has no code
    assert second["invoice_no"] == "26312000000123456789"
    assert (second["amount_ex_tax_fen"], second["tax_fen"], second["total_fen"]) == (10000, 1300, 11300)
    assert second["tax_rate_bp"] == 1300


def test_no_invoice_table_means_no_children(mapping):
    payload = instance()
    cells = payload["process_instance"]["form_component_values"]
    payload["process_instance"]["form_component_values"] = [c for c in cells if c["name"] != "发票明细"]
    record = mapped(mapping, payload)
    assert record.children == {"claim_invoice": []}
    assert record.issues == []


def test_payload_without_the_api_envelope_maps_the_same(mapping):
    wrapped = mapped(mapping, instance())
    bare = mapped(mapping, instance()["process_instance"])
    assert bare.values == wrapped.values
    assert bare.children == wrapped.children


@pytest.mark.parametrize(
    "amount", ["1234.50", "1,234.50", "¥1,234.50", "￥1234.5", "１２３４．５０", "１，２３４．５０ "]
)
def test_amount_written_any_way_is_the_same_fen(mapping, amount):
    assert mapped(mapping, instance(amount=amount)).values["amount_fen"] == 123450


# -- status ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "result", "expected"),
    [
        ("COMPLETED", "agree", "approved"),
        ("COMPLETED", "refuse", "rejected"),
        ("RUNNING", "", "pending"),
        ("NEW", "", "draft"),
        ("TERMINATED", "", "withdrawn"),
        ("TERMINATED", "refuse", "withdrawn"),
        ("CANCELED", "", "withdrawn"),
    ],
)
def test_status_and_result_combinations(mapping, status, result, expected):
    record = mapped(mapping, instance(status=status, result=result))
    assert record.values["status"] == expected
    assert record.issues == []
    # approved_at only when approved
    assert (record.values["approved_at"] is not None) == (expected == "approved")


def test_completed_without_a_result_is_unmapped_not_guessed(mapping):
    record = mapped(mapping, instance(status="COMPLETED", result=""))
    assert record.values["status"] is None
    assert record.values["approved_at"] is None
    [issue] = record.issues
    assert (issue.code, issue.field, issue.value) == ("UNMAPPED_CODE", "status", "COMPLETED+")


def test_undocumented_status_is_unmapped(mapping):
    [issue] = mapped(mapping, instance(status="ERROR", result="")).issues
    assert (issue.code, issue.field, issue.value) == ("UNMAPPED_CODE", "status", "ERROR+")


def test_missing_status_is_none_without_issue(mapping):
    record = mapped(mapping, instance(status="", result=""))
    assert record.values["status"] is None
    assert record.issues == []


# -- approvers -------------------------------------------------------------------------------


def test_approvers_are_those_who_agreed_in_order(mapping):
    operations = [
        operation(3, "NONE", "START_PROCESS_INSTANCE"),
        operation(5, "AGREE"),
        operation(6, "REFUSE", "REDIRECT_PROCESS"),
        operation(2, "NONE", "ADD_REMARK"),
        operation(4, "AGREE"),
        operation(1, "AGREE"),
    ]
    record = mapped(mapping, instance(operations=operations))
    assert record.values["approver_ids"] == ",".join(PEOPLE.person_id[i] for i in (5, 4, 1))


def test_no_approver_yet_is_an_empty_list(mapping):
    record = mapped(mapping, instance(status="RUNNING", result="", operations=[]))
    assert record.values["approver_ids"] == ""
    assert record.issues == []


def test_unknown_approver_is_unmapped(mapping):
    stranger = {"userid": "0999", "operation_type": "EXECUTE_TASK_NORMAL", "operation_result": "AGREE"}
    record = mapped(mapping, instance(operations=[operation(1, "AGREE"), stranger]))
    assert record.values["approver_ids"] is None
    [issue] = record.issues
    assert (issue.code, issue.field, issue.value) == ("UNMAPPED_CODE", "approver_ids", "0999")


def test_unknown_applicant_is_unmapped(mapping):
    record = mapped(mapping, instance(originator_userid="0123"))
    assert record.values["applicant_id"] is None
    assert [(i.code, i.field, i.value) for i in record.issues] == [("UNMAPPED_CODE", "applicant_id", "0123")]


def test_an_id_of_another_system_is_not_a_dingtalk_identity(mapping):
    staff_number = TABLES.external_ids("kingdee")[PEOPLE.person_id[3]]
    record = mapped(mapping, instance(originator_userid=staff_number))
    assert record.values["applicant_id"] is None
    [issue] = record.issues
    assert (issue.code, issue.field, issue.value) == ("UNMAPPED_CODE", "applicant_id", staff_number)
    assert "dingtalk" in issue.message


def test_a_new_identity_row_maps_without_a_schema_change(mapping, tmp_path):
    import shutil

    from mappings import DEFAULT_TABLES_DIR

    for path in DEFAULT_TABLES_DIR.glob("*.csv"):
        shutil.copy(path, tmp_path / path.name)
    with (tmp_path / "identities.csv").open("a", encoding="utf-8") as fh:
        fh.write(f"{PEOPLE.person_id[7]},dingtalk,manager-7-second-account\n")
    tables = load_code_tables(tmp_path)
    raw = RawRecord("dingtalk", PROCESS_CODE, "x", instance(originator_userid="manager-7-second-account"))
    assert map_record(mapping, raw, tables, CONTEXT).values["applicant_id"] == PEOPLE.person_id[7]


# -- what the mapping does not know or cannot read -------------------------------------------


def test_unknown_expense_type_is_an_issue_with_the_value(mapping):
    record = mapped(mapping, instance(expense_type="团建费"))
    assert record.values["expense_type_code"] is None
    [issue] = record.issues
    assert (issue.code, issue.field, issue.value) == ("UNMAPPED_CODE", "expense_type_code", "团建费")
    assert "expense_types" in issue.message
    # the rest of the record is still mapped
    assert record.values["amount_fen"] == 123450
    assert record.values["department_code"] == "D01"


def test_expense_type_in_full_width_or_with_spaces_still_maps(mapping):
    assert mapped(mapping, instance(expense_type=" 差旅费\u3000")).values["expense_type_code"] == "TRAVEL"


@pytest.mark.parametrize("amount", ["一千元", "1,23.4", "12.3.4", "1e3"])
def test_bad_money_text_is_a_contract_violation(mapping, amount):
    record = mapped(mapping, instance(amount=amount))
    assert record.values["amount_fen"] is None
    [issue] = record.issues
    assert (issue.code, issue.field, issue.value) == ("CONTRACT_VIOLATION", "amount_fen", amount)


def test_bad_time_is_a_contract_violation(mapping):
    record = mapped(mapping, instance(create_time="2026-10-30"))
    assert record.values["submitted_at"] is None
    assert [(i.code, i.field) for i in record.issues] == [("CONTRACT_VIOLATION", "submitted_at")]


def test_bad_invoice_cell_is_named_by_row_and_column(mapping):
    record = mapped(mapping, instance(invoices=[invoice(), invoice(number="87654321", tax="六十")]))
    [issue] = record.issues
    assert (issue.code, issue.field, issue.value) == (
        "CONTRACT_VIOLATION",
        "claim_invoice[1].tax_fen",
        "六十",
    )
    assert record.children["claim_invoice"][1]["tax_fen"] is None
    assert record.children["claim_invoice"][1]["total_fen"] == 106000
    assert record.values["amount_fen"] == 123450


def test_invoice_table_that_is_not_json_is_an_issue(mapping):
    payload = instance()
    for cell in payload["process_instance"]["form_component_values"]:
        if cell["name"] == "发票明细":
            cell["value"] = "[{rowValue:"
    record = mapped(mapping, payload)
    assert record.children["claim_invoice"] == []
    assert [(i.code, i.field) for i in record.issues] == [("CONTRACT_VIOLATION", "claim_invoice")]


def test_garbage_shapes_do_not_raise(mapping):
    payload = instance(operation_records="not a list", status=["COMPLETED"], business_id={"x": 1})
    payload["process_instance"]["form_component_values"].append("not a dict")
    record = mapped(mapping, payload)
    fields = {i.field for i in record.issues}
    assert {"approver_ids", "status", "claim_no"} <= fields
    assert all(i.code == "CONTRACT_VIOLATION" for i in record.issues)


# -- the caller's side -----------------------------------------------------------------------


def test_company_code_must_come_from_the_config(mapping):
    with pytest.raises(ValueError, match="company_code"):
        map_record(mapping, raw(instance()), TABLES, {})


def test_a_process_code_the_mapping_does_not_know_is_a_caller_error(mapping):
    other = RawRecord(system="dingtalk", kind="PROC-LEAVE", source_id="x", payload=instance())
    with pytest.raises(KeyError, match="PROC-LEAVE"):
        map_record(mapping, other, TABLES, CONTEXT)


def test_map_records_keeps_order(mapping):
    raws = [raw(instance(business_id=f"B{i}"), source_id=f"id{i}") for i in range(5)]
    out = map_records(mapping, raws, TABLES, CONTEXT)
    assert [r.values["claim_no"] for r in out] == [f"B{i}" for i in range(5)]
    assert [r.values["claim_id"] for r in out] == [f"dingtalk:id{i}" for i in range(5)]


def test_a_relabelled_form_is_read_by_editing_the_yaml_only(mapping, tmp_path):
    """A customer whose form says 金额（元） instead of 报销金额 edits a copy of the YAML."""
    copy = tmp_path / "dingtalk.yaml"
    shutil.copy(default_mapping_path("dingtalk"), copy)
    text = copy.read_text(encoding="utf-8")
    assert "{form: 报销金额, parse: money}" in text
    copy.write_text(
        text.replace("{form: 报销金额, parse: money}", "{form: 金额（元）, parse: money}"), encoding="utf-8"
    )
    customer = load_mapping(copy)

    payload = instance()
    for cell in payload["process_instance"]["form_component_values"]:
        if cell["name"] == "报销金额":
            cell["name"] = "金额(元)"  # and half-width brackets in the form: NFKC makes them equal

    assert map_record(customer, raw(payload), TABLES, CONTEXT).values["amount_fen"] == 123450
    assert mapped(mapping, payload).values["amount_fen"] is None  # the default no longer finds it
