"""The neutral sandbox month in Kingdee's shapes: what the Kingdee twin serves.

One row per bill or payment keyed by field key, as ``ExecuteBillQuery`` would return them in
``FieldKeys`` order (source-systems.md §7.3, §7.5; field keys from default-forms.md). Times are
local ISO without a zone; amounts JSON numbers in yuan (or numeric text where the month says so).
"""

from __future__ import annotations

from typing import Any, Final

from oafin.sandbox.chain import SHANGHAI, Voucher, chain_of
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

# GL_VOUCHER 凭证 (source-systems.md §7.5): header fields, then the entry (FEntity) line's; one row
# per entry line, the header repeated on each (§7.3). F_OAFIN_SourceBillNo / F_OAFIN_SourceFlowId:
# customer fields carrying the expense platform's document code and flowId (the chain's link key;
# FSourceBillKey is what a Save payload names the source by, §7.5).
GL_HEADER_FIELDS: Final = (
    "FVOUCHERID",
    "FBILLNO",
    "FDate",
    "FYEAR",
    "FPERIOD",
    "FVOUCHERGROUPID.FNumber",
    "FVOUCHERGROUPNO",
    "FACCBOOKORGID.FNumber",
    "FAccountBookID.FNumber",
    "FCURRENCYID.FNumber",
    "FDocumentStatus",
    "F_OAFIN_SourceBillNo",
    "F_OAFIN_SourceFlowId",
)
GL_ENTRY_FIELDS: Final = (
    "FEntity_FEntryID",
    "FEXPLANATION",
    "FACCOUNTID.FNUMBER",
    "FDC",
    "FDEBIT",
    "FCREDIT",
)
GL_FIELDS: Final = (*GL_HEADER_FIELDS, *GL_ENTRY_FIELDS)

FORM_FIELDS: Final = {"ER_ExpReimbursement": ER_FIELDS, "AP_PAYBILL": PAY_FIELDS, "GL_VOUCHER": GL_FIELDS}


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


def voucher_rows(voucher: Voucher, company_code: str) -> list[dict[str, Any]]:
    """A voucher's two entry lines (debit the expense, credit the bank), the header on each."""
    year, month = voucher.period.split("-")
    header = {
        "FVOUCHERID": voucher.voucher_id,
        "FBILLNO": voucher.number,
        "FDate": voucher.when.astimezone(SHANGHAI).strftime("%Y-%m-%dT00:00:00"),
        "FYEAR": int(year),
        "FPERIOD": int(month),
        "FVOUCHERGROUPID.FNumber": "PRE001",  # 记 (the default voucher word)
        "FVOUCHERGROUPNO": voucher.group_no,
        "FACCBOOKORGID.FNumber": company_code,
        "FAccountBookID.FNumber": f"{company_code}-01",
        "FCURRENCYID.FNumber": "PRE001",
        "FDocumentStatus": "C",
        "F_OAFIN_SourceBillNo": voucher.payment.doc_no,
        "F_OAFIN_SourceFlowId": f"ID01oafin{voucher.payment.doc_id}",
    }
    amount = yuan_json_number(voucher.amount_fen)
    text = f"报销付款 {voucher.payment.doc_no}"
    return [
        {**header, "FEntity_FEntryID": voucher.voucher_id * 10 + 1, "FEXPLANATION": text,
         "FACCOUNTID.FNUMBER": voucher.expense_account, "FDC": 1, "FDEBIT": amount, "FCREDIT": 0},
        {**header, "FEntity_FEntryID": voucher.voucher_id * 10 + 2, "FEXPLANATION": text,
         "FACCOUNTID.FNUMBER": voucher.bank_account, "FDC": -1, "FDEBIT": 0, "FCREDIT": amount},
    ]  # fmt: skip


def render(dataset: Dataset) -> dict[str, list[dict[str, Any]]]:
    """FormId -> rows: the month's bills and payments, in FID order."""
    company = dataset.company_code
    return {
        "ER_ExpReimbursement": [bill_row(b, company) for b in dataset.bills],
        "AP_PAYBILL": [payment_row(p, company) for p in dataset.payments],
    }


def render_vouchers(dataset: Dataset) -> dict[str, list[dict[str, Any]]]:
    """``GL_VOUCHER`` -> its rows: the vouchers booking the month's payments (``oafin.sandbox.chain``),
    in FVOUCHERID order, one row per entry line."""
    company = dataset.company_code
    return {"GL_VOUCHER": [row for v in chain_of(dataset).vouchers for row in voucher_rows(v, company)]}


def voucher_form_rows(dataset: Dataset) -> dict[str, list[dict[str, Any]]]:
    """The vouchers as the twin serves them, beside ``form_rows`` (rendered once per dataset)."""
    return dataset.rendered(f"{NAME}:vouchers", render_vouchers)


def form_rows(dataset: Dataset) -> dict[str, list[dict[str, Any]]]:
    """The month's rows as the Kingdee twin serves them (rendered once per dataset; do not change)."""
    return dataset.rendered(NAME, render)
