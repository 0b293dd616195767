"""The neutral sandbox month in DingTalk's shapes: what the DingTalk twin serves.

Each claim becomes a ``process_instance`` as the old ``/topapi/processinstance/get`` returns it
(source-systems.md §1.3, §1.4; form labels from default-forms.md). Times are Beijing-time
strings, statuses the ``(status, result)`` pairs of §1.4; the noise in the neutral month (how an
amount was typed, trailing spaces) is written as it is.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

from oafin.sandbox.dataset import Dataset
from oafin.sandbox.finance_fields import amount_in_words, fen_text
from oafin.sandbox.model import Claim, Invoice

BEIJING_FORMAT: Final = "%Y-%m-%d %H:%M:%S"  # old API times are Beijing-time strings (§1.3)
NAME: Final = "dingtalk"
# The standard's claim status -> DingTalk's (status, result) (source-systems.md §1.4).
STATUS: Final = {
    "pending": ("RUNNING", ""),
    "approved": ("COMPLETED", "agree"),
    "rejected": ("COMPLETED", "refuse"),
    "withdrawn": ("TERMINATED", ""),
}
# The neutral month's padded fields -> the form labels carrying them.
PADDED_LABELS: Final = {"department": "所属部门", "expense_type": "费用类型", "title": "报销事由"}

# Form design: label -> (component_type, component id). Ids are fixed per form design.
FORM: Final = {
    "所属部门": ("DepartmentField", "DepartmentField_1QX7C2K0ZLA80"),
    "费用类型": ("DDSelectField", "DDSelectField_2BH3R8MJ4TKW0"),
    "报销金额": ("MoneyField", "MoneyField_1M5G0O6TQ3GG0"),
    "报销事由": ("TextareaField", "TextareaField_9AC3YXR5W8S0"),
    "预算编号": ("TextField", "TextField_1U8W3ZQ0X5KW0"),
    "项目编号": ("TextField", "TextField_3H0V7AE6N3400"),
    "收款账号": ("TextField", "TextField_2S9P4Y1C6JZ40"),
    "发票明细": ("TableField", "TableField_1E3QJ8B7VY6O0"),
}


def beijing(moment: datetime) -> str:
    return moment.strftime(BEIJING_FORMAT)


def _component(label: str, value: str, ext_value: str | None = None) -> dict[str, Any]:
    kind, cid = FORM[label]
    out: dict[str, Any] = {"name": label, "value": value, "id": cid, "component_type": kind}
    if ext_value is not None:
        out["ext_value"] = ext_value
    return out


def invoice_rows(invoices: list[Invoice]) -> str:
    """The 发票明细 TableField value: JSON rows of ``{"rowValue": [{"label", "value"}]}`` (default-forms.md)."""
    rows = []
    for inv in invoices:
        cells = {
            "发票代码": inv.code,
            "发票号码": inv.number,
            "开票日期": inv.issued.isoformat(),
            "不含税金额": fen_text(inv.ex_tax_fen),
            "税额": fen_text(inv.tax_fen),
            "价税合计": fen_text(inv.total_fen),
            "税率": f"{inv.rate_pct}%",
            "销售方纳税人识别号": inv.seller_id,
        }
        rows.append({"rowValue": [{"label": k, "value": v} for k, v in cells.items()]})
    return json.dumps(rows, ensure_ascii=False)


def form_values(claim: Claim) -> list[dict[str, Any]]:
    pad = {PADDED_LABELS[name]: spaces for name, spaces in claim.text_pad.items()}
    values = [
        _component("所属部门", claim.dept_label + pad.get("所属部门", "")),
        _component("费用类型", claim.expense_label + pad.get("费用类型", "")),
    ]
    if claim.amount_text is not None:  # None: the component is missing altogether
        upper = None
        if claim.kind != "CONTRACT_VIOLATION":
            upper = json.dumps({"upper": amount_in_words(claim.amount_fen)}, ensure_ascii=False)
        values.append(_component("报销金额", claim.amount_text, upper))
    values += [
        _component("报销事由", claim.title + pad.get("报销事由", "")),
        _component("预算编号", claim.budget_code),
        _component("项目编号", claim.project_code),
        _component("收款账号", claim.card),
        _component("发票明细", invoice_rows(claim.invoices)),
    ]
    return values


def operation_records(claim: Claim) -> list[dict[str, Any]]:
    """START by the originator, then AGREE/REFUSE/TERMINATE records (§1.4 enumerations)."""
    records = [_record(claim.originator.userid, claim.created, "START_PROCESS_INSTANCE", "NONE")]
    for person, when in zip(claim.approvers, claim.approval_times, strict=True):
        records.append(_record(person.userid, when, "EXECUTE_TASK_NORMAL", "AGREE", "同意"))
    if claim.refuser is not None and claim.finished is not None:
        records.append(
            _record(claim.refuser.userid, claim.finished, "EXECUTE_TASK_NORMAL", "REFUSE", "不符合报销规定")
        )
    if claim.status == "withdrawn" and claim.finished is not None:
        records.append(
            _record(claim.originator.userid, claim.finished, "TERMINATE_PROCESS_INSTANCE", "NONE", "撤销")
        )
    return records


def _record(userid: str, when: datetime, op: str, result: str, remark: str = "") -> dict[str, Any]:
    return {
        "userid": userid,
        "date": beijing(when),
        "operation_type": op,
        "operation_result": result,
        "remark": remark,
    }


def process_instance(claim: Claim, dept_ids: dict[str, str]) -> dict[str, Any]:
    """``process_instance`` plus ``process_instance_id`` (which the fake server strips again)."""
    p = claim.originator
    status, result = STATUS[claim.status]
    inst: dict[str, Any] = {
        "process_instance_id": claim.source_id,
        "title": f"{p.name}提交的费用报销",
        "create_time": beijing(claim.created),
    }
    if claim.finished is not None and claim.status != "pending":
        inst["finish_time"] = beijing(claim.finished)
    inst |= {
        "originator_userid": p.userid,
        "originator_dept_id": dept_ids[p.dept_code],
        "originator_dept_name": p.department,
        "status": status,
        "result": result,
        "approver_userids": [a.userid for a in claim.approvers]
        + ([claim.refuser.userid] if claim.refuser else []),
        "cc_userids": [],
        "business_id": claim.claim_no,
        "biz_action": "NONE",
        "attached_process_instance_ids": [],
        "main_process_instance_id": "",
        "form_component_values": form_values(claim),
        "operation_records": operation_records(claim),
    }
    return inst


def department_ids(dataset: Dataset) -> dict[str, str]:
    """DingTalk's numeric dept_id for each department code (fixed by the code tables' order)."""
    codes = sorted({p.dept_code for p in dataset.people})
    return {code: str(58_000_000 + 101 * i) for i, code in enumerate(codes)}


def render(dataset: Dataset) -> list[dict[str, Any]]:
    """Every claim of the month as a ``process_instance`` (with ``process_instance_id``), in submission order."""
    dept_ids = department_ids(dataset)
    return [process_instance(c, dept_ids) for c in dataset.claims]


def instances(dataset: Dataset) -> list[dict[str, Any]]:
    """The month's instances as the DingTalk twin serves them (rendered once per dataset; do not change)."""
    return dataset.rendered(NAME, render)
