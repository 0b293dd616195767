"""The neutral sandbox month in Hesine/Ekuaibao's shapes: what the Hesine twin serves.

Each reimbursement bill of the month is an expense document (报销单, ``type=expense``) carrying
the OA number in a template field; each payment is a payment document (付款单, ``type=payment``)
linking the expense documents it pays. Shapes from source-systems.md §6.3: ``id`` is the flowId,
``createTime``/``updateTime`` ms epochs, ``ownerId``/``submitterId`` ``<corpId>:<staffId>``, and
every amount a money object whose ``standard`` is text and whose ``standardScale`` is a number or
text (both appear in the docs). A paid payment document carries the ERP ``voucherNo`` written
back to it (the chain, ``oafin.sandbox.chain``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from oafin.sandbox.chain import chain_of, period_of
from oafin.sandbox.dataset import Dataset
from oafin.sandbox.finance_fields import fen_text
from oafin.sandbox.model import Bill, Payment

NAME: Final = "hesine"
CORP: Final = "oafinSandboxCorp"
EXPENSE_SPEC: Final = "ID01oafinExpenseSpec"  # the company's expense template (specificationId)
PAYMENT_SPEC: Final = "ID01oafinPaymentSpec"
OA_NO_FIELD: Final = "u_OA单号"  # a template field (custom fields are u_ prefixed) holding the OA number
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def flow_id(doc_id: int) -> str:
    """The flowId of a neutral document (bills and payments have disjoint internal ids)."""
    return f"ID01oafin{doc_id}"


def money(fen: int, scale_as_text: bool = False) -> dict[str, Any]:
    """Hesine's money object (source-systems.md §6.3): ``standard`` always text."""
    return {
        "standard": fen_text(fen),
        "standardUnit": "元",
        "standardScale": "2" if scale_as_text else 2,
        "standardSymbol": "¥",
        "standardNumCode": "156",
        "standardStrCode": "CNY",
    }


def staff(person_identities: dict[str, str], pad: str = "") -> str:
    return person_identities[NAME] + pad


def expense_doc(bill: Bill, paid: bool) -> dict[str, Any]:
    when = epoch_ms(bill.when)
    owner = staff(bill.proposer.identities)
    return {
        "id": flow_id(bill.doc_id),
        "active": True,
        "createTime": when,
        "updateTime": when,
        "corporationId": CORP,
        "ownerId": owner,
        "ownerDefaultDepartment": f"{CORP}:{bill.proposer.dept_code}",
        # an approved expense document waits in paying (待支付) until its payment document pays it
        "state": "paid" if paid else "paying",
        "formType": "expense",
        "flowType": "freeflow",
        "form": {
            "code": bill.doc_no,
            "title": bill.causa,
            "submitterId": staff(bill.proposer.identities, bill.staff_pad),
            "submitDate": when,
            "expenseDate": when,
            "expenseDepartment": bill.proposer.dept_code,
            "specificationId": f"{EXPENSE_SPEC}:1",
            OA_NO_FIELD: bill.oa_no_text,
            "expenseMoney": money(bill.amount_fen, bill.amount_as_text),
            "payMoney": money(bill.amount_fen, bill.amount_as_text),
            "voucherNo": "",
            "voucherStatus": "未生成",
            "details": [],
        },
        "logs": [],
        "actions": {},
    }


def payment_doc(pay: Payment, voucher_no: str) -> dict[str, Any]:
    when = epoch_ms(pay.when)
    return {
        "id": flow_id(pay.doc_id),
        "active": True,
        "createTime": when,
        "updateTime": when,
        "corporationId": CORP,
        "ownerId": staff(pay.payee.identities),
        "state": "paid",
        "formType": "payment",
        "flowType": "freeflow",
        "form": {
            "code": pay.doc_no,
            "title": "报销付款",
            "submitterId": staff(pay.payee.identities),
            "submitDate": when,
            "payDate": when,
            "specificationId": f"{PAYMENT_SPEC}:1",
            OA_NO_FIELD: pay.oa_no_text,
            # the expense documents it pays (expenseLinks, §6.3), by flowId and code
            "expenseLinks": [{"id": flow_id(b.doc_id), "code": b.doc_no} for b in pay.bills],
            # the sandbox's payee accounts are its staff: a tenant maps its own payee list here
            "payeeId": staff(pay.payee.identities),
            "payMoney": money(pay.amount_fen),
            "paymentChannel": "OFFLINE",
            "voucherNo": voucher_no,
            "voucherStatus": "已生成" if voucher_no else "未生成",
            "voucherCreateTime": str(when) if voucher_no else "",
        },
        "logs": [],
        "actions": {},
    }


DELETED_DRAFTS: Final = 3


def deleted_draft(bill: Bill) -> dict[str, Any]:
    """A draft someone started and deleted (``active: false``): no OA number, never approved.

    Read as live it would be an expense document with no OA approval behind it; read with the
    deleted documents (``active`` not ``true``, §6.2) it is what it is, a deleted draft."""
    doc = expense_doc(bill, False)
    doc.update(id=f"{doc['id']}D", active=False, state="draft")
    doc["form"] = {**doc["form"], "code": f"{bill.doc_no}D", OA_NO_FIELD: ""}
    return doc


def render(dataset: Dataset) -> dict[str, list[dict[str, Any]]]:
    """``type`` → documents: the month's bills (``expense``) and payments (``payment``), plus a few
    deleted drafts of expense documents."""
    chain = chain_of(dataset)
    paid = {b.doc_id for p in dataset.payments for b in p.bills}
    expense = [expense_doc(b, b.doc_id in paid) for b in dataset.bills]
    in_period = [b for b in dataset.bills if period_of(b.when) == dataset.period]
    expense += [deleted_draft(b) for b in in_period[:DELETED_DRAFTS]]
    return {
        "expense": expense,
        "payment": [payment_doc(p, chain.voucher_nos.get(p.doc_id, "")) for p in dataset.payments],
    }


def documents(dataset: Dataset) -> dict[str, list[dict[str, Any]]]:
    """The documents as the twin serves them (rendered once per dataset; do not change)."""
    return dataset.rendered(NAME, render)
