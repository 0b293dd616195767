"""The engine's detail text as a Chinese sentence for finance, and each exception's money at risk.

The engine writes one short English detail per exception (``oafin.engine.findings``); the
warehouse keeps it as written (the data team's interface). Reports show the sentence built
here: fields by their Chinese labels, amounts in ¥, people by name and department. A detail this
module does not recognise is shown as the engine wrote it (amounts in fen still read as ¥).

Money at risk (``risk_of``), per type: see ``labels_zh.RISK_DEFINITIONS`` and the README.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from oafin.reporting.labels_zh import (
    CONTROL,
    OVER_LIMIT,
    PAID_OUT,
    RISK_DEFINITIONS,
    STATUSES,
    UNPAID,
    check_text,
    field_label,
)

PersonText = Callable[[str | None], str]

CLAIM_STATUS_ZH = {
    "draft": "草稿",
    "pending": "审批中",
    "approved": "已审批",
    "rejected": "已驳回",
    "withdrawn": "已撤回",
}
DOC_TYPE_ZH = {"reimbursement": "报销单", "payment": "付款单", "voucher": "凭证"}


def yuan_text(fen: int | None) -> str:
    """``-123456`` → ``-¥1,234.56``."""
    if fen is None:
        return ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{'-' if fen < 0 else ''}¥{whole:,}.{cents:02d}"


def _y(text: str) -> str:
    return yuan_text(int(text))


_AMBIGUOUS = re.compile(r"; ambiguous (\w+) match, tied: (.*)$")
_PATTERNS: list[tuple[str, re.Pattern[str], Callable[[re.Match[str], PersonText, int | None], str]]] = [
    (
        "MISSING_IN_FINANCE",
        re.compile(r"approved (\S+), no finance document$"),
        lambda m, p, a: f"{m[1]} 审批通过，报销金额 {yuan_text(a)}，财务系统中没有对应单据",
    ),
    (
        "DUPLICATE_PAYMENT",
        re.compile(r"(\d+) payments totalling (-?\d+) fen for (-?\d+) fen$"),
        lambda m, p, a: (
            f"付款 {m[1]} 笔，合计 {_y(m[2])}，应付 {_y(m[3])}，多付 {yuan_text(int(m[2]) - int(m[3]))}"
        ),
    ),
    (
        "AMOUNT_MISMATCH",
        re.compile(r"OA (-?\d+) fen, finance billed (-?\d+) fen, paid (-?\d+) fen$"),
        lambda m, p, a: (
            f"OA报销金额 {_y(m[1])}，财务报销单 {_y(m[2])}，已付款 {_y(m[3])}，差额 {yuan_text(a)}"
        ),
    ),
    (
        "PAYEE_MISMATCH",
        re.compile(r"paid to (.+)$"),
        lambda m, p, a: f"款项付给了 {p(m[1])}，不是申请人本人",
    ),
    (
        "LATE_PAYMENT",
        re.compile(r"unpaid$"),
        lambda m, p, a: f"审批已超过付款时限，仍未付款（{yuan_text(a)}）",
    ),
    (
        "LATE_PAYMENT",
        re.compile(r"first payment (\S+) days after approval$"),
        lambda m, p, a: f"审批后 {m[1]} 天才首次付款，超过付款时限",
    ),
    (
        "STATUS_MISMATCH",
        re.compile(r"OA status (\w+) but settled in finance$"),
        lambda m, p, a: f"OA状态为“{CLAIM_STATUS_ZH.get(m[1], m[1])}”，财务却已结算 {yuan_text(a)}",
    ),
    (
        "SELF_APPROVAL",
        re.compile(r"the applicant approved their own claim$"),
        lambda m, p, a: "申请人审批了自己的报销单",
    ),
    (
        "APPROVAL_LIMIT",
        re.compile(r"approved by (.+) whose limit is (-?\d+) fen$"),
        lambda m, p, a: (
            f"审批人 {p(m[1])} 的审批权限为 {_y(m[2])}，报销金额 {yuan_text(a)}，"
            f"超出 {yuan_text((a or 0) - int(m[2]))}"
        ),
    ),
    (
        "BUDGET_OVERRUN",
        re.compile(r"approved (-?\d+) fen against a budget of (-?\d+) fen$"),
        lambda m, p, a: f"本期已审批 {_y(m[1])}，预算 {_y(m[2])}，超出 {yuan_text(int(m[1]) - int(m[2]))}",
    ),
    (
        "DUPLICATE_INVOICE",
        re.compile(r"on claim (.+), first on claim (.+)$"),
        lambda m, p, a: f"发票用于报销单 {m[1]}，此前已在报销单 {m[2]} 报销过",
    ),
    (
        "MISSING_IN_OA",
        re.compile(r"(\w+) with OA number '(.*)' not found in OA$"),
        lambda m, p, a: (
            f"财务{DOC_TYPE_ZH.get(m[1], m[1])}（{yuan_text(a)}）"
            + (f"所填OA单号“{m[2]}”在OA中不存在" if m[2] else "未填写OA单号，OA中没有对应审批")
        ),
    ),
]
_INVOICE = re.compile(r"claim (.+?): (.*)$")
_INVOICE_REASON = re.compile(r"^(\w+): .*?(?: \((\w+)=(.*)\))?$")


def _invoice_reasons(text: str) -> str:
    parts = []
    for piece in text.split("; "):
        m = _INVOICE_REASON.match(piece.strip())
        if not m:
            parts.append(piece)
            continue
        label = field_label(m[2]) if m[2] else "发票"
        value = "" if not m[3] or m[3] == "missing" else f"（{label}：{m[3]}）"
        parts.append(f"{check_text(piece)}{value}")
    return "；".join(parts)


def _money(field: str | None, value: Any) -> str:
    """A value of a ``*_fen`` field as ¥ (``-13734`` → ``-¥137.34``); anything else as it is."""
    if field and str(field).endswith("_fen") and re.fullmatch(r"-?\d+", str(value).strip()):
        return yuan_text(int(str(value).strip()))
    return str(value)


def _quarantine(reasons: list[dict[str, Any]]) -> str:
    parts = []
    for r in reasons:
        label = field_label(r.get("field"))
        value = r.get("value")
        shown = "" if value in (None, "") else f"“{_money(r.get('field'), value)}”"
        if r.get("code") == "UNMAPPED_CODE":
            parts.append(f"{label}{shown}在映射表中不存在，无法转换")
        else:
            message = check_text(r.get("message"))
            parts.append(f"{label}{shown}{'：' if shown else ''}{message}")
    return "；".join(parts)


def detail_sentence(kind: str, detail: Any, amount_fen: int | None, person: PersonText) -> str | None:
    """The engine's ``detail`` of a ``kind`` exception as a Chinese sentence; None if unrecognised."""
    if not isinstance(detail, str) or not detail:
        return None
    if detail.startswith("[{"):
        try:
            reasons = json.loads(detail)
        except ValueError:
            return None
        if isinstance(reasons, list) and all(isinstance(r, dict) for r in reasons):
            return _quarantine(reasons)
        return None
    if kind == "INVALID_INVOICE":
        m = _INVOICE.match(detail)
        return f"报销单 {m[1]} 所附发票：{_invoice_reasons(m[2])}" if m else None
    text, note = detail, ""
    amb = _AMBIGUOUS.search(detail)
    if amb:
        text, note = detail[: amb.start()], f"；匹配不唯一（{amb[1]}），候选：{amb[2]}"
    for code, pattern, render in _PATTERNS:
        if code == kind:
            m = pattern.match(text)
            if m:
                return render(m, person, amount_fen) + note
    return None


def invoice_claim_no(kind: str, detail: Any) -> str | None:
    """The claim an invoice exception was raised on, as its detail names it."""
    if not isinstance(detail, str):
        return None
    if kind == "INVALID_INVOICE":
        m = _INVOICE.match(detail)
        return m[1] if m else None
    if kind == "DUPLICATE_INVOICE":
        m = re.match(r"on claim (.+), first on claim", detail)
        return m[1] if m else None
    return None


def risk_of(kind: str, amount_fen: int | None, detail: Any) -> tuple[int, int, str]:
    """(money at risk in fen, priority, Chinese category) of one exception.

    Priority 1 is money already paid out wrongly: finance acts on it first. An AMOUNT_MISMATCH
    where finance holds less than OA is money still owed (unpaid), not money paid out.
    """
    (priority, _code, category), _definition = RISK_DEFINITIONS.get(kind, (CONTROL, ""))
    fen = 0 if amount_fen is None else int(amount_fen)
    if priority == CONTROL[0]:
        return 0, priority, category
    if kind == "AMOUNT_MISMATCH" and fen < 0:
        return -fen, UNPAID[0], UNPAID[2]
    if kind == "AMOUNT_MISMATCH":
        return fen, PAID_OUT[0], PAID_OUT[2]
    if kind == "LATE_PAYMENT":
        unpaid = isinstance(detail, str) and detail.startswith("unpaid")
        return (abs(fen) if unpaid else 0), priority, category
    if kind == "APPROVAL_LIMIT":
        m = re.search(r"whose limit is (-?\d+) fen", detail if isinstance(detail, str) else "")
        return (max(fen - int(m[1]), 0) if m else abs(fen)), OVER_LIMIT[0], OVER_LIMIT[2]
    return abs(fen), priority, category


def status_zh(status: str | None) -> str:
    return STATUSES.get(status or "", status or "")
