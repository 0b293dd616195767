"""The neutral sandbox month in Yonyou YonBIP's shapes: what the Yonyou twin serves.

YonBIP has no reimbursement or payment document in the reference (source-systems.md §8.1 documents
only vouchers), so the month is booked as general-ledger vouchers, one per bill or payment, each
``{"header": {...}, "body": [entry lines]}`` as ``queryVouchers`` returns them (§8.1, §2.6):

- a reimbursement bill is an accrual voucher (转): Dr 6602 管理费用 (aux: staff, department) /
  Cr 2241 其他应付款 (aux: staff);
- a payment is a payment voucher (付): Dr 2241 其他应付款 (aux: staff; its ``defines.define1``
  names the bill vouchers it settles, comma-separated) / Cr 1002 银行存款.

Header fields are the ones clients read (§2.6): ``id`` (a 19-digit number), ``billcode``,
``vouchertype{code,voucherstr,name}``, ``voucherstatus`` (00 暂存 … 04 已记账, 05 作废), ``maketime``,
``period``, ``maker{id,code,name}``, ``srcsystem``, ``totaldebit_org``/``totalcredit_org``, plus
``ts`` (最后操作时间, the ``tsStart``/``tsEnd`` cursor) and ``defines.define1`` (自定义项1: the OA
number, the company's reference field as Kingdee's ``F_OAFIN_OANo`` is). Line fields beyond the
subject and amounts (``clientauxiliary``, ``defines``) are the sandbox's reading of YonBIP's
辅助核算 and 自定义项 [U]: no public reply shows them.

In a chain OA → expense platform → ERP (``oafin.sandbox.chain``), the ERP also books each of the
platform's payments as a voucher of its own (``chain_of(dataset).vouchers``): a 付款凭证 Dr 6602 管理费用
(aux: staff, department) / Cr 1002 银行存款, made by the platform through the OpenAPI (``srcsystem``
``OPENAPI``, as ``addVoucher`` makes them), carrying no OA number but the platform's document code in
自定义项2 (``defines.define2``) and its flowId in 自定义项3 (the sandbox's convention, as Kingdee's
``F_OAFIN_SourceBillNo``/``F_OAFIN_SourceFlowId``). Their ids are ``VOUCHER_ID_BASE`` plus the chain's
voucher id (300001 on, above every bill's and payment's doc_id); the ledger's own query (subject
2241) never returns them, and a chain's ``platform_vouchers`` query (subject 6602, type 付) returns
only them.

Times are China-time ``yyyy-MM-dd HH:mm:ss``; amounts JSON numbers in yuan (numeric text where the
month says so). ``billcode`` is the month's document number (the truth is keyed by it).
"""

from __future__ import annotations

from typing import Any, Final

from oafin.sandbox.chain import Voucher, chain_of
from oafin.sandbox.dataset import Dataset
from oafin.sandbox.finance_fields import fen_text, yuan_json_number
from oafin.sandbox.model import Bill, Payment
from oafin.sandbox.tables import OTHER_SYSTEM_IDS
from oafin.standard import BUSINESS_TZ

NAME: Final = "yonyou"
YONYOU_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
# 19-digit ids (§2.6): the voucher's is this plus the month's doc_id; a line's adds its number.
VOUCHER_ID_BASE: Final = 1_874_650_000_000_000_000
LINE_ID_BASE: Final = 1_874_660_000_000_000_000
# A Chinese chart of accounts (企业会计准则): what the twin books on.
EXPENSE: Final = {"code": "6602", "name": "管理费用"}
PAYABLE: Final = {"code": "2241", "name": "其他应付款"}
BANK: Final = {"code": "1002", "name": "银行存款"}
ACCRUAL_TYPE: Final = {"code": "3", "voucherstr": "转", "name": "转账凭证"}
PAYMENT_TYPE: Final = {"code": "2", "voucherstr": "付", "name": "付款凭证"}
CNY: Final = {"code": "CNY", "name": "人民币"}
MAKER: Final = {"id": "1874600000000000001", "code": "CW001", "name": "财务制单"}
POSTED: Final = "04"  # 已记账 (§2.6)


def staff_code(person_id: str) -> str:
    """A person's Yonyou staff code (人员编码), as identities.csv has it."""
    return OTHER_SYSTEM_IDS[NAME](int(person_id[1:]))


def _amount(fen: int, as_text: bool) -> int | float | str:
    return fen_text(fen) if as_text else yuan_json_number(fen)


def _aux(kind: str, name: str, code: str, value_name: str) -> dict[str, Any]:
    return {"type": {"code": kind, "name": name}, "code": code, "name": value_name}


def voucher_line(
    voucher_id: int,
    number: int,
    description: str,
    subject: dict[str, str],
    fen: int,
    *,
    debit: bool,
    as_text: bool,
    aux: list[dict[str, Any]],
    defines: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One entry line of voucher ``voucher_id`` (its ``number`` from 1), debit or credit ``fen``."""
    amount = _amount(fen, as_text)
    zero: int | str = "0.00" if as_text else 0
    return {
        "id": str(LINE_ID_BASE + (voucher_id - VOUCHER_ID_BASE) * 10 + number),
        "recordnumber": number,
        "description": description,
        "accsubject": dict(subject),
        "currency": dict(CNY),
        "debit_original": amount if debit else zero,
        "credit_original": zero if debit else amount,
        "debit_org": amount if debit else zero,
        "credit_org": zero if debit else amount,
        "rate_org": 1,
        "clientauxiliary": aux,
        "defines": defines or {},
    }


def voucher_header(
    doc_id: int,
    doc_no: str,
    kind: dict[str, str],
    when: str,
    fen: int,
    as_text: bool,
    oa_no: str,
    company: str,
    *,
    srcsystem: str = "GL",
    defines: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A voucher header as queryVouchers returns it. Public for other renderings of the month (a
    three-way chain books an expense system's documents as vouchers: ``srcsystem`` and a second
    自定义项 in ``defines`` can carry that document's code)."""
    amount = _amount(fen, as_text)
    return {
        "id": VOUCHER_ID_BASE + doc_id,  # a JSON number of 19 digits, as YonBIP sends it (§2.6)
        "billcode": doc_no,
        "vouchertype": dict(kind),
        "voucherstatus": POSTED,
        "maketime": when,
        "period": when[:7],
        "ts": when,
        "maker": dict(MAKER),
        "srcsystem": srcsystem,
        "accbook": {"code": company, "name": f"{company} 主账簿"},
        "currency": dict(CNY),
        "totaldebit_org": amount,
        "totalcredit_org": amount,
        "defines": {"define1": oa_no, **(defines or {})},
    }


def bill_voucher(bill: Bill, company: str) -> dict[str, Any]:
    when = bill.when.astimezone(_zone()).strftime(YONYOU_FORMAT)
    header = voucher_header(
        bill.doc_id,
        bill.doc_no,
        ACCRUAL_TYPE,
        when,
        bill.amount_fen,
        bill.amount_as_text,
        bill.oa_no_text,
        company,
    )
    person = bill.proposer
    staff = _aux("bd_staff", "人员", staff_code(person.person_id) + bill.staff_pad, person.name)
    dept = _aux("bd_dept", "部门", person.dept_code, person.department)
    vid = header["id"]
    text = f"报销 {bill.causa}"
    body = [
        voucher_line(
            vid, 1, text, EXPENSE, bill.amount_fen, debit=True, as_text=bill.amount_as_text, aux=[staff, dept]
        ),
        voucher_line(
            vid, 2, text, PAYABLE, bill.amount_fen, debit=False, as_text=bill.amount_as_text, aux=[staff]
        ),
    ]
    return {"header": header, "body": body}


def payment_voucher(pay: Payment, company: str) -> dict[str, Any]:
    when = pay.when.astimezone(_zone()).strftime(YONYOU_FORMAT)
    header = voucher_header(
        pay.doc_id, pay.doc_no, PAYMENT_TYPE, when, pay.amount_fen, False, pay.oa_no_text, company
    )
    person = pay.payee
    staff = _aux("bd_staff", "人员", staff_code(person.person_id), person.name)
    settled = ",".join(b.doc_no for b in pay.bills)
    vid = header["id"]
    text = f"支付报销款 {settled or pay.oa_no_text}".strip()
    body = [
        voucher_line(
            vid,
            1,
            text,
            PAYABLE,
            pay.amount_fen,
            debit=True,
            as_text=False,
            aux=[staff],
            defines={"define1": settled},
        ),
        voucher_line(vid, 2, text, BANK, pay.amount_fen, debit=False, as_text=False, aux=[]),
    ]
    return {"header": header, "body": body}


def platform_voucher(voucher: Voucher, company: str) -> dict[str, Any]:
    """A chain's voucher booking an expense platform's payment: Dr expense / Cr bank (module docstring)."""
    pay = voucher.payment
    when = voucher.when.astimezone(_zone()).strftime(YONYOU_FORMAT)
    header = voucher_header(
        voucher.voucher_id,
        voucher.number,
        PAYMENT_TYPE,
        when,
        voucher.amount_fen,
        False,
        "",
        company,
        srcsystem="OPENAPI",
        defines={"define2": pay.doc_no, "define3": f"ID01oafin{pay.doc_id}"},
    )
    assert header["period"] == voucher.period, (header["period"], voucher.period)
    person = pay.payee
    staff = _aux("bd_staff", "人员", staff_code(person.person_id), person.name)
    dept = _aux("bd_dept", "部门", person.dept_code, person.department)
    vid = header["id"]
    text = f"报销付款 {pay.doc_no}"
    body = [
        voucher_line(vid, 1, text, EXPENSE, voucher.amount_fen, debit=True, as_text=False, aux=[staff, dept]),
        voucher_line(vid, 2, text, BANK, voucher.amount_fen, debit=False, as_text=False, aux=[]),
    ]
    return {"header": header, "body": body}


def _zone() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(BUSINESS_TZ)


def render(dataset: Dataset) -> list[dict[str, Any]]:
    """The month's vouchers, and the chain's booking its payments (module docstring), in the order
    the twin serves them: by ``maketime``, then id."""
    company = dataset.company_code
    vouchers = [bill_voucher(b, company) for b in dataset.bills]
    vouchers += [payment_voucher(p, company) for p in dataset.payments]
    vouchers += [platform_voucher(v, company) for v in chain_of(dataset).vouchers]
    vouchers.sort(key=lambda v: (v["header"]["maketime"], v["header"]["id"]))
    return vouchers


def vouchers(dataset: Dataset) -> list[dict[str, Any]]:
    """The month's vouchers as the Yonyou twin serves them (rendered once per dataset; do not change)."""
    return dataset.rendered(NAME, render)
