"""The neutral sandbox month in WeCom's shapes: what the WeCom twin serves.

Each claim becomes the ``info`` object ``oa/getapprovaldetail`` returns (source-systems.md §2.3,
§2.4; control types and value shapes corrected by real-clients.md §2.1): times in Unix seconds,
``sp_status`` codes, ``apply_data.contents`` controls whose ``value`` object carries every list key
even when empty, Money as a string (``new_money``), a Selector's option text, a Date's
``s_timestamp`` as a string of seconds, and the invoice table as a Table control's ``children``
rows. The noise in the neutral month (how an amount was typed, trailing spaces) is written as it is.

The approval number ``sp_no`` is the claim number people quote (real ones are digits; the
sandbox's carry its ``BX`` prefix so that finance's references match).
"""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from oafin.sandbox.codes import Person
from oafin.sandbox.dataset import Dataset
from oafin.sandbox.finance_fields import fen_text
from oafin.sandbox.model import Claim, Invoice
from oafin.sandbox.tables import OTHER_SYSTEM_IDS
from oafin.systems.wecom import DEFAULT_TEMPLATE_ID

NAME: Final = "wecom"
SHANGHAI: Final = ZoneInfo("Asia/Shanghai")
# The sandbox's expense template (a real template_id is an opaque string of this kind).
TEMPLATE_ID: Final = DEFAULT_TEMPLATE_ID
SP_NAME: Final = "费用报销"
# The standard's claim status -> WeCom's form sp_status (source-systems.md §2.4).
SP_STATUS: Final = {"pending": 1, "approved": 2, "rejected": 3, "withdrawn": 4}
# Per-approver sp_status (§2.4): 1 审批中, 2 已同意, 3 已驳回.
AGREED, REFUSED = 2, 3
# The neutral month's padded fields -> the control titles carrying them.
PADDED_TITLES: Final = {"department": "所属部门", "expense_type": "费用类型", "title": "报销事由"}

# Template design: title -> (control, control id). Ids are fixed per template.
FORM: Final = {
    "所属部门": ("Contact", "Contact-1727712000001"),
    "费用类型": ("Selector", "Selector-1727712000002"),
    "报销金额": ("Money", "Money-1727712000003"),
    "报销事由": ("Textarea", "Textarea-1727712000004"),
    "预算编号": ("Text", "Text-1727712000005"),
    "项目编号": ("Text", "Text-1727712000006"),
    "收款账号": ("Text", "Text-1727712000007"),
    "发票明细": ("Table", "Table-1727712000008"),
}
ROW: Final = {
    "发票代码": ("Text", "Text-1727712000101"),
    "发票号码": ("Text", "Text-1727712000102"),
    "开票日期": ("Date", "Date-1727712000103"),
    "不含税金额": ("Money", "Money-1727712000104"),
    "税额": ("Money", "Money-1727712000105"),
    "价税合计": ("Money", "Money-1727712000106"),
    "税率": ("Text", "Text-1727712000107"),
    "销售方纳税人识别号": ("Text", "Text-1727712000108"),
}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def seconds(moment: datetime) -> int:
    """Unix seconds, whole (exact: no float), of an aware datetime."""
    return (moment - _EPOCH) // timedelta(seconds=1)


def day_seconds(day: date) -> str:
    """A Date control of type ``day``: the day's Beijing midnight, as a string of seconds (§2.1)."""
    return str(seconds(datetime.combine(day, time(), tzinfo=SHANGHAI)))


def userid(person: Person) -> str:
    """The person's WeCom userid (identities.csv, from ``OTHER_SYSTEM_IDS``)."""
    return person.identities.get(NAME) or OTHER_SYSTEM_IDS[NAME](int(person.person_id[1:]))


def _value(**fields: Any) -> dict[str, Any]:
    """A control's value object: every list key present, empty unless given (real-clients.md §2.1)."""
    return {
        "tips": [],
        "members": [],
        "departments": [],
        "files": [],
        "children": [],
        "stat_field": [],
        **fields,
    }


def _control(design: dict[str, tuple[str, str]], title: str, value: dict[str, Any]) -> dict[str, Any]:
    control, cid = design[title]
    return {"control": control, "id": cid, "title": [{"text": title, "lang": "zh_CN"}], "value": value}


def _text(title: str, text: str, design: dict[str, tuple[str, str]] = FORM) -> dict[str, Any]:
    return _control(design, title, _value(text=text))


def _money(title: str, text: str, design: dict[str, tuple[str, str]] = FORM) -> dict[str, Any]:
    return _control(design, title, _value(new_money=text))


def _selector(title: str, option: str, key: str) -> dict[str, Any]:
    selector = {"type": "single", "options": [{"key": key, "value": [{"text": option, "lang": "zh_CN"}]}]}
    return _control(FORM, title, _value(selector=selector))


def invoice_row(inv: Invoice) -> dict[str, Any]:
    """One row of the 发票明细 Table: ``{"list": [<controls>]}`` (§2.3 ``children``)."""
    return {
        "list": [
            _text("发票代码", inv.code, ROW),
            _text("发票号码", inv.number, ROW),
            _control(ROW, "开票日期", _value(date={"type": "day", "s_timestamp": day_seconds(inv.issued)})),
            _money("不含税金额", fen_text(inv.ex_tax_fen), ROW),
            _money("税额", fen_text(inv.tax_fen), ROW),
            _money("价税合计", fen_text(inv.total_fen), ROW),
            _text("税率", f"{inv.rate_pct}%", ROW),
            _text("销售方纳税人识别号", inv.seller_id, ROW),
        ]
    }


def contents(claim: Claim, dept_ids: dict[str, str], option_keys: dict[str, str]) -> list[dict[str, Any]]:
    pad = {PADDED_TITLES[name]: spaces for name, spaces in claim.text_pad.items()}
    department = {
        "openapi_id": dept_ids[claim.originator.dept_code],
        "name": claim.dept_label + pad.get("所属部门", ""),
    }
    expense_key = option_keys.get(claim.expense_label.strip(), "option-0000000000")
    values = [
        _control(FORM, "所属部门", _value(departments=[department])),
        _selector("费用类型", claim.expense_label + pad.get("费用类型", ""), expense_key),
    ]
    if claim.amount_text is not None:  # None: the control is missing altogether
        values.append(_money("报销金额", claim.amount_text))
    values += [
        _text("报销事由", claim.title + pad.get("报销事由", "")),
        _text("预算编号", claim.budget_code),
        _text("项目编号", claim.project_code),
        _text("收款账号", claim.card),
        _control(FORM, "发票明细", _value(children=[invoice_row(inv) for inv in claim.invoices])),
    ]
    return values


def _node(person: Person, status: int, when: datetime, speech: str) -> dict[str, Any]:
    detail = {
        "approver": {"userid": userid(person)},
        "speech": speech,
        "sp_status": status,
        "sptime": seconds(when),
        "media_id": [],
    }
    return {"sp_status": status, "approverattr": 1, "details": [detail]}


def sp_record(claim: Claim) -> list[dict[str, Any]]:
    """One node per approver, in order (§2.3); the last node of an approved form acted last."""
    nodes = [
        _node(person, AGREED, when, "同意")
        for person, when in zip(claim.approvers, claim.approval_times, strict=True)
    ]
    if claim.refuser is not None and claim.finished is not None:
        nodes.append(_node(claim.refuser, REFUSED, claim.finished, "不符合报销规定"))
    return nodes


def info(claim: Claim, dept_ids: dict[str, str], option_keys: dict[str, str]) -> dict[str, Any]:
    """The ``info`` object of ``oa/getapprovaldetail`` for one claim."""
    applicant = claim.originator
    return {
        "sp_no": claim.claim_no,
        "sp_name": SP_NAME,
        "sp_status": SP_STATUS[claim.status],
        "template_id": TEMPLATE_ID,
        "apply_time": seconds(claim.created),
        "applyer": {"userid": userid(applicant), "partyid": dept_ids[applicant.dept_code]},
        "sp_record": sp_record(claim),
        "notifyer": [],
        "comments": [],
        "apply_data": {"contents": contents(claim, dept_ids, option_keys)},
    }


def department_ids(dataset: Dataset) -> dict[str, str]:
    """WeCom's numeric department id for each department code (fixed by the code tables' order)."""
    codes = sorted({p.dept_code for p in dataset.people})
    return {code: str(2 + i) for i, code in enumerate(codes)}


def option_keys(dataset: Dataset) -> dict[str, str]:
    """The 费用类型 Selector's option key for each expense label (fixed per template design)."""
    labels = sorted({c.expense_label.strip() for c in dataset.claims})
    return {label: f"option-{1727712000200 + i}" for i, label in enumerate(labels)}


def render(dataset: Dataset) -> list[dict[str, Any]]:
    """Every claim of the month as an ``info`` object, in submission order."""
    dept_ids, options = department_ids(dataset), option_keys(dataset)
    out = [info(c, dept_ids, options) for c in dataset.claims]
    numbers = [i["sp_no"] for i in out]
    if len(set(numbers)) != len(numbers):
        raise ValueError("the sandbox month has two claims with one claim number: sp_no must be unique")
    return out


def approvals(dataset: Dataset) -> list[dict[str, Any]]:
    """The month's approvals as the WeCom twin serves them (rendered once per dataset; do not change)."""
    return dataset.rendered(NAME, render)


def encode_cursor(offset: int) -> str:
    """The twin's ``new_next_cursor``: an opaque string (§2.2) standing for an offset."""
    return base64.urlsafe_b64encode(f"oafin:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int | None:
    """The offset of a ``new_cursor`` the twin issued ("" is the start), or None if not one of its own."""
    if cursor == "":
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    prefix, _, number = text.partition(":")
    return int(number) if prefix == "oafin" and number.isdigit() else None
