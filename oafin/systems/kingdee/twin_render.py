"""The neutral sandbox month in Kingdee's shapes: what the Kingdee twin serves.

One row per bill or payment keyed by field key, as ``ExecuteBillQuery`` would return them in
``FieldKeys`` order (source-systems.md §7.3, §7.5; field keys from default-forms.md). Times are
local ISO without a zone; amounts JSON numbers in yuan (or numeric text where the month says so).
"""

from __future__ import annotations

from typing import Any, Final

from oafin.sandbox.dataset import Dataset
from oafin.sandbox.finance_fields import fen_text, yuan_json_number
from oafin.sandbox.model import Bill, Payment

NAME: Final = "kingdee"
KINGDEE_FORMAT: Final = "%Y-%m-%dT%H:%M:%S"  # local ISO without zone (default-forms.md)

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


def bill_row(bill: Bill, company_code: str) -> dict[str, Any]:
    amount: int | float | str = yuan_json_number(bill.amount_fen)
    if bill.amount_as_text:
        amount = fen_text(bill.amount_fen)
    return {
        "FID": bill.doc_id,
        "FBillNo": bill.doc_no,
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
        "FID": pay.doc_id,
        "FBillNo": pay.doc_no,
        "FDATE": pay.when.strftime(KINGDEE_FORMAT),
        "F_OAFIN_OANo": pay.oa_no_text,
        "FSOURCEBILLNO": ",".join(b.doc_no for b in pay.bills),
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


def render(dataset: Dataset) -> dict[str, list[dict[str, Any]]]:
    """FormId -> rows: the month's bills and payments, in FID order."""
    company = dataset.company_code
    return {
        "ER_ExpReimbursement": [bill_row(b, company) for b in dataset.bills],
        "AP_PAYBILL": [payment_row(p, company) for p in dataset.payments],
    }


def form_rows(dataset: Dataset) -> dict[str, list[dict[str, Any]]]:
    """The month's rows as the Kingdee twin serves them (rendered once per dataset; do not change)."""
    return dataset.rendered(NAME, render)
