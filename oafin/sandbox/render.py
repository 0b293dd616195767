"""Writing the model in the real APIs' shapes.

DingTalk: a ``process_instance`` as the old ``/topapi/processinstance/get`` returns it
(source-systems.md §1.3, §1.4; form labels from default-forms.md). Kingdee: one row per
bill keyed by field key, as ``ExecuteBillQuery`` would return them in ``FieldKeys`` order
(source-systems.md §7.3, §7.5; field keys from default-forms.md).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

from oafin.sandbox.finance_fields import amount_in_words, fen_text, yuan_json_number
from oafin.sandbox.model import Bill, Claim, Invoice, Payment

BEIJING_FORMAT: Final = "%Y-%m-%d %H:%M:%S"  # old API times are Beijing-time strings (§1.3)
KINGDEE_FORMAT: Final = "%Y-%m-%dT%H:%M:%S"  # local ISO without zone (default-forms.md)

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

ER_FIELDS: Final = (
    "FID",
    "FBillNo",
    "FDate",
    "F_OAFIN_OANo",
    "FProposerID.FStaffNumber",
    "FProposerID.FName",
    "FRequestDeptID.FNumber",
    "FExpenseAmount",
    "FCausa",
    "FDocumentStatus",
    "FCloseStatus",
    "FCurrencyID.FNumber",
    "FOrgID.FNumber",
)
PAY_FIELDS: Final = (
    "FID",
    "FBillNo",
    "FDATE",
    "F_OAFIN_OANo",
    "FSOURCEBILLNO",
    "FCONTACTUNITTYPE",
    "FCONTACTUNIT.FNumber",
    "FREALPAYAMOUNTFOR_D",
    "FDOCUMENTSTATUS",
    "FCANCELSTATUS",
    "FPAYORGID.FNumber",
    "FCURRENCYID.FNumber",
    "FSETTLETYPEID.FNumber",
    "FREMARK",
)

FORM_FIELDS: Final = {"ER_ExpReimbursement": ER_FIELDS, "AP_PAYBILL": PAY_FIELDS}


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
    pad = claim.text_pad
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
    if claim.status == "TERMINATED" and claim.finished is not None:
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
    inst: dict[str, Any] = {
        "process_instance_id": claim.instance_id,
        "title": f"{p.name}提交的费用报销",
        "create_time": beijing(claim.created),
    }
    if claim.finished is not None and claim.status != "RUNNING":
        inst["finish_time"] = beijing(claim.finished)
    inst |= {
        "originator_userid": p.userid,
        "originator_dept_id": dept_ids[p.dept_code],
        "originator_dept_name": p.department,
        "status": claim.status,
        "result": claim.result,
        "approver_userids": [a.userid for a in claim.approvers]
        + ([claim.refuser.userid] if claim.refuser else []),
        "cc_userids": [],
        "business_id": claim.business_id,
        "biz_action": "NONE",
        "attached_process_instance_ids": [],
        "main_process_instance_id": "",
        "form_component_values": form_values(claim),
        "operation_records": operation_records(claim),
    }
    return inst


def bill_row(bill: Bill, company_code: str) -> dict[str, Any]:
    amount: int | float | str = yuan_json_number(bill.amount_fen)
    if bill.amount_as_text:
        amount = fen_text(bill.amount_fen)
    return {
        "FID": bill.fid,
        "FBillNo": bill.bill_no,
        "FDate": bill.when.strftime(KINGDEE_FORMAT),
        "F_OAFIN_OANo": bill.oa_no_text,
        "FProposerID.FStaffNumber": bill.proposer.staff_number + bill.staff_pad,
        "FProposerID.FName": bill.proposer.name,
        "FRequestDeptID.FNumber": bill.proposer.dept_code,
        "FExpenseAmount": amount,
        "FCausa": bill.causa,
        "FDocumentStatus": "C",  # audited (§7.4)
        "FCloseStatus": "A",
        "FCurrencyID.FNumber": "PRE001",  # CNY
        "FOrgID.FNumber": company_code,
    }


def payment_row(pay: Payment, company_code: str) -> dict[str, Any]:
    return {
        "FID": pay.fid,
        "FBillNo": pay.bill_no,
        "FDATE": pay.when.strftime(KINGDEE_FORMAT),
        "F_OAFIN_OANo": pay.oa_no_text,
        "FSOURCEBILLNO": ",".join(b.bill_no for b in pay.bills),
        "FCONTACTUNITTYPE": "BD_Empinfo",
        "FCONTACTUNIT.FNumber": pay.payee.staff_number,
        "FREALPAYAMOUNTFOR_D": yuan_json_number(pay.amount_fen),
        "FDOCUMENTSTATUS": "C",
        "FCANCELSTATUS": "A",
        "FPAYORGID.FNumber": company_code,
        "FCURRENCYID.FNumber": "PRE001",
        "FSETTLETYPEID.FNumber": "JSFS04_SYS",  # 电汇 (§7.5)
        "FREMARK": "",
    }
