"""The neutral sandbox month in Feishu's shapes: what the Feishu twin serves.

Each claim becomes the ``data`` of ``GET /open-apis/approval/v4/instances/:instance_id``
(source-systems.md §3.3, corrected by the real production log in real-clients.md §2.2): times are
millisecond epoch **strings** (``end_time`` ``"0"`` while unfinished), ``comment_list`` is absent
when there are no comments, and ``form`` is a **JSON string** of widgets ``{id, name, type, value}``.
Inside it the ``amount`` widgets carry JSON **numbers**, the 发票明细 ``fieldList`` is a 2-D list of
row widgets whose amounts are numbers, and its ``ext`` lists column summaries whose values are
**strings** (§2.2). Auto-approved nodes are ``AUTO_PASS`` tasks with ``open_id ""`` and no
``user_id``. The neutral month's noise that Feishu can carry (trailing spaces in text) is written
as it is; an amount is a number in Feishu, so how the applicant typed it is not (a missing amount
stays missing, an empty one empty and a negative one negative: the quarantined claims).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from oafin.sandbox.dataset import Dataset
from oafin.sandbox.finance_fields import amount_in_words
from oafin.sandbox.model import Claim, Invoice
from oafin.sandbox.tables import feishu_open_id

NAME: Final = "feishu"
# The approval definition the sandbox's expense claims are filed on (an approval code is a UUID
# in Feishu, source-systems.md §3.2; real-clients.md §2.2 log). A company sets its own in the config.
APPROVAL_CODE: Final = "7C468A54-8745-2245-9675-08B7C63E7A85"
APPROVAL_NAME: Final = "费用报销"
# The standard's claim status -> Feishu's instance status (instance get vocabulary, §3.3).
STATUS: Final = {
    "pending": "PENDING",
    "approved": "APPROVED",
    "rejected": "REJECTED",
    "withdrawn": "CANCELED",
}
PADDED_LABELS: Final = {"department": "所属部门", "expense_type": "费用类型", "title": "报销事由"}
# Form design: label -> (widget type, widget id). Ids are fixed per approval definition.
FORM: Final = {
    "所属部门": ("radioV2", "widget16817282711550001"),
    "费用类型": ("radioV2", "widget16817282711550002"),
    "报销金额": ("amount", "widget16817282711550003"),
    "报销事由": ("textarea", "widget16817282711550004"),
    "预算编号": ("input", "widget16817282711550005"),
    "项目编号": ("input", "widget16817282711550006"),
    "收款账号": ("input", "widget16817282711550007"),
    "发票明细": ("fieldList", "widget16817282711550008"),
}
INVOICE_COLUMNS: Final = {
    "发票代码": ("input", "widget16817282711550101"),
    "发票号码": ("input", "widget16817282711550102"),
    "开票日期": ("date", "widget16817282711550103"),
    "不含税金额": ("amount", "widget16817282711550104"),
    "税额": ("amount", "widget16817282711550105"),
    "价税合计": ("amount", "widget16817282711550106"),
    "税率": ("input", "widget16817282711550107"),
    "销售方纳税人识别号": ("input", "widget16817282711550108"),
}
CURRENCY_RANGE: Final = ["CNY"]
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_NUMBER_TOKEN: Final = re.compile(r'"@@oafin-number:(-?[0-9.]+)@@"')


def epoch_ms_text(moment: datetime) -> str:
    """Feishu's time: milliseconds since the epoch as a string (§3.3), exactly."""
    return str((moment - _EPOCH) // timedelta(milliseconds=1))


def yuan_number(fen: int) -> Decimal:
    """An amount as Feishu's JSON number: yuan, no trailing zeros (``100``, ``12.5``, ``12.34``)."""
    number = Decimal(fen) / 100
    return number.quantize(Decimal(1)) if number == number.to_integral_value() else number.normalize()


def dumps_numbers(value: Any) -> str:
    """JSON text of ``value`` with every ``Decimal`` written as a JSON number, digit for digit."""

    def tokens(item: Any) -> Any:
        if isinstance(item, Decimal):
            return f"@@oafin-number:{item}@@"
        if isinstance(item, dict):
            return {k: tokens(v) for k, v in item.items()}
        if isinstance(item, list):
            return [tokens(v) for v in item]
        return item

    text = json.dumps(tokens(value), ensure_ascii=False, separators=(",", ":"))
    return _NUMBER_TOKEN.sub(r"\1", text)


def _widget(columns: dict[str, tuple[str, str]], label: str, value: Any, **extra: Any) -> dict[str, Any]:
    kind, wid = columns[label]
    return {"id": wid, "name": label, "type": kind, "value": value, **extra}


def _radio(label: str, text: str) -> dict[str, Any]:
    # radioV2: the option text as value, plus option {key, text} (real-clients.md §2.2)
    key = "opt_" + hashlib.sha1(text.strip().encode()).hexdigest()[:10]
    return _widget(FORM, label, text, option={"key": key, "text": text.strip()})


def _amount_ext(fen: int) -> dict[str, Any]:
    # the amount widget's ext (real-clients.md §2.2)
    return {
        "capitalValue": amount_in_words(fen),
        "currency": "CNY",
        "currencyRange": CURRENCY_RANGE,
        "maxValue": "",
        "minValue": "",
    }


def invoice_row(inv: Invoice) -> list[dict[str, Any]]:
    """One 发票明细 row: a list of widgets; amounts are JSON numbers (§2.2)."""
    col = INVOICE_COLUMNS
    issued = datetime(inv.issued.year, inv.issued.month, inv.issued.day).isoformat() + "+08:00"
    return [
        _widget(col, "发票代码", inv.code),
        _widget(col, "发票号码", inv.number),
        _widget(col, "开票日期", issued, timezoneOffset=-480),
        _widget(col, "不含税金额", yuan_number(inv.ex_tax_fen), ext=_amount_ext(inv.ex_tax_fen)),
        _widget(col, "税额", yuan_number(inv.tax_fen), ext=_amount_ext(inv.tax_fen)),
        _widget(col, "价税合计", yuan_number(inv.total_fen), ext=_amount_ext(inv.total_fen)),
        _widget(col, "税率", f"{inv.rate_pct}%"),
        _widget(col, "销售方纳税人识别号", inv.seller_id),
    ]


def _summary(fen: int) -> dict[str, Any]:
    # a fieldList column summary: every value a string (real-clients.md §2.2)
    text = f"{Decimal(fen) / 100:.2f}"
    sum_items = json.dumps([{"currency": "CNY", "value": str(yuan_number(fen))}], separators=(",", ":"))
    return {"type": "amount", "value": text, "sumItems": sum_items, "capitalValue": amount_in_words(fen)}


def invoice_table(invoices: list[Invoice]) -> dict[str, Any]:
    return _widget(
        FORM,
        "发票明细",
        [invoice_row(inv) for inv in invoices],
        ext=[
            _summary(sum(i.ex_tax_fen for i in invoices)),
            _summary(sum(i.tax_fen for i in invoices)),
            _summary(sum(i.total_fen for i in invoices)),
        ],
        option={"input_type": "FORM", "mobile_detail_type": "CARD", "print_type": "FORM"},
    )


def amount_value(claim: Claim) -> Decimal | str:
    """The amount widget's value: the claim's amount as a number. A quarantined claim's amount left
    empty is ``""``, one typed negative is negative (``amount_text`` says which)."""
    text = (claim.amount_text or "").strip()
    if claim.kind == "CONTRACT_VIOLATION" and not text:
        return ""
    number = yuan_number(claim.amount_fen)
    return -number if text.startswith("-") else number


def form_widgets(claim: Claim) -> list[dict[str, Any]]:
    pad = {PADDED_LABELS[name]: spaces for name, spaces in claim.text_pad.items()}
    widgets = [
        _radio("所属部门", claim.dept_label + pad.get("所属部门", "")),
        _radio("费用类型", claim.expense_label + pad.get("费用类型", "")),
    ]
    if claim.amount_text is not None:  # None: the widget is missing altogether
        value = amount_value(claim)
        if isinstance(value, Decimal) and value > 0:
            widgets.append(_widget(FORM, "报销金额", value, ext=_amount_ext(claim.amount_fen)))
        else:
            widgets.append(_widget(FORM, "报销金额", value))
    widgets += [
        _widget(FORM, "报销事由", claim.title + pad.get("报销事由", "")),
        _widget(FORM, "预算编号", claim.budget_code),
        _widget(FORM, "项目编号", claim.project_code),
        _widget(FORM, "收款账号", claim.card),
        invoice_table(claim.invoices),
    ]
    return widgets


def open_id(person: Any) -> str:
    return str(person.identities.get(NAME) or feishu_open_id(int(person.person_id[1:])))


def user_id(person: Any) -> str:
    """The tenant-scoped ``user_id`` (8 hex digits, derived; the mapping reads ``open_id``)."""
    return hashlib.sha256(f"oafin-feishu-user-{person.person_id}".encode()).hexdigest()[:8]


def _task(
    n: int, claim: Claim, status: str, when: datetime, person: Any | None, start: datetime
) -> dict[str, Any]:
    task: dict[str, Any] = {
        "end_time": epoch_ms_text(when) if status != "PENDING" else "0",
        "id": str(7_000_000_000_000_000_000 + int(claim.source_id.replace("-", "")[:12], 16) * 100 + n),
        "node_id": f"node_{n}",
        "node_name": "审批" if person is not None else "自动通过",
        "open_id": open_id(person) if person is not None else "",
        "start_time": epoch_ms_text(start),
        "status": status,
        "type": "AND" if person is not None else "AUTO_PASS",
    }
    if person is not None:
        task["user_id"] = user_id(person)
    return task


def tasks_and_timeline(claim: Claim) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """An AUTO_PASS node first (no user), then one task per approver, the refuser's last (§2.2)."""
    p = claim.originator
    tasks = [_task(0, claim, "APPROVED", claim.created, None, claim.created)]
    timeline: list[dict[str, Any]] = [
        {
            "create_time": epoch_ms_text(claim.created),
            "ext": "{}",
            "node_key": "START",
            "open_id": open_id(p),
            "type": "START",
            "user_id": user_id(p),
        },
        {
            "create_time": epoch_ms_text(claim.created),
            "ext": "{}",
            "node_key": "node_0",
            "open_id": "",
            "task_id": tasks[0]["id"],
            "type": "AUTO_PASS",
        },
    ]
    start = claim.created
    for i, (person, when) in enumerate(zip(claim.approvers, claim.approval_times, strict=True), 1):
        tasks.append(_task(i, claim, "APPROVED", when, person, start))
        timeline.append(_event("PASS", when, person, tasks[-1]))
        start = when
    if claim.refuser is not None and claim.finished is not None:
        tasks.append(_task(len(tasks), claim, "REJECTED", claim.finished, claim.refuser, start))
        timeline.append(_event("REJECT", claim.finished, claim.refuser, tasks[-1], "不符合报销规定"))
    if claim.status == "withdrawn" and claim.finished is not None:
        timeline.append(
            {
                "create_time": epoch_ms_text(claim.finished),
                "ext": "{}",
                "node_key": "",
                "open_id": open_id(p),
                "type": "CANCEL",
                "user_id": user_id(p),
            }
        )
    return tasks, timeline


def _event(kind: str, when: datetime, person: Any, task: dict[str, Any], comment: str = "") -> dict[str, Any]:
    event = {
        "create_time": epoch_ms_text(when),
        "ext": json.dumps({"comment": comment}, ensure_ascii=False) if comment else "{}",
        "node_key": task["node_id"],
        "open_id": open_id(person),
        "task_id": task["id"],
        "type": kind,
        "user_id": user_id(person),
    }
    if comment:
        event["comment"] = comment
    return event


def department_id(dept_code: str) -> str:
    """Feishu's ``open_department_id`` style id of a department (``od-`` and 32 hex digits)."""
    return "od-" + hashlib.sha256(f"oafin-feishu-{dept_code}".encode()).hexdigest()[:32]


def instance(claim: Claim) -> dict[str, Any]:
    """``data`` of instance get: the keys the real log shows, in its order (§2.2)."""
    p = claim.originator
    tasks, timeline = tasks_and_timeline(claim)
    finished = claim.finished if claim.finished is not None and claim.status != "pending" else None
    return {
        "approval_code": APPROVAL_CODE,
        "approval_name": APPROVAL_NAME,
        "department_id": department_id(p.dept_code),
        "end_time": epoch_ms_text(finished) if finished is not None else "0",
        "form": dumps_numbers(form_widgets(claim)),
        "instance_code": claim.source_id,
        "open_id": open_id(p),
        "reverted": False,
        "serial_number": claim.claim_no,
        "start_time": epoch_ms_text(claim.created),
        "status": STATUS[claim.status],
        "task_list": tasks,
        "timeline": timeline,
        "user_id": user_id(p),
        "uuid": claim.source_id.replace("-", "")[:16],
    }


def render(dataset: Dataset) -> list[dict[str, Any]]:
    """Every claim of the month as an instance, in submission order."""
    return [instance(c) for c in dataset.claims]


def instances(dataset: Dataset) -> list[dict[str, Any]]:
    """The month's instances as the Feishu twin serves them (rendered once per dataset; do not change)."""
    return dataset.rendered(NAME, render)
