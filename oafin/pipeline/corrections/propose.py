"""Open exceptions in the warehouse → proposed actions. Reads only; calls no system.

Which exception gets which action (issue #6):

| exception | action | system and calls |
|---|---|---|
| ``MISSING_IN_FINANCE`` | ``finance_create_bill``: the reimbursement bill from the approved OA claim | Kingdee ``Save`` then ``Submit`` (``Audit`` only with ``corrections.allow_audit``) |
| ``STATUS_MISMATCH``, ``LATE_PAYMENT`` | ``oa_status_comment``: finance's status of the claim, as a comment on the OA instance | DingTalk ``process/instance/comment/add`` |
| ``DUPLICATE_PAYMENT`` | ``finance_flag_recall``: a remark on each excess payment asking for recall; never a reversal | Kingdee ``Save`` of ``FREMARK`` on ``AP_PAYBILL`` |

Every other type, and an exception whose data cannot make a complete action (a claim not
approved, an unknown staff number, no comment user configured), is listed in ``skipped``
with the reason, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import ColumnElement, Connection

from oafin.pipeline.corrections.model import Action, yuan
from oafin.standard import BUSINESS_TZ
from oafin.warehouse.schema import STANDARD_TABLES, exception, match
from oafin.warehouse.store import read_table

ACTIVE_STATUSES = ("open", "acknowledged")
ER_FORM = "ER_ExpReimbursement"  # default-forms.md; source-systems.md §7.5
PAY_FORM = "AP_PAYBILL"
CURRENCY_NUMBERS = {"CNY": "PRE001"}  # default-forms.md: PRE001 is CNY
DOC_STATUS_LABELS = {
    "received": "已接收",
    "audited": "已审核",
    "paid": "已付款",
    "rejected": "已驳回",
    "reversed": "已冲销",
}
TOLERANCE_FEN = 1
_ZONE = ZoneInfo(BUSINESS_TZ)


@dataclass
class Proposals:
    actions: list[Action] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)  # exception_id, exception_type, reason


def _value(v: Any) -> Any:
    return None if v is None or (not isinstance(v, list | tuple) and pd.isna(v)) else v


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): _value(v) for k, v in r.items()} for r in frame.to_dict("records")]


def _local(ts: Any, fmt: str) -> str:
    moment = pd.Timestamp(ts).to_pydatetime()
    return moment.astimezone(_ZONE).strftime(fmt)


class _Finance:
    """The finance documents of each claim, as the engine linked them (the ``match`` table: by
    number, through the bill, by rule or by group); the chain is computed once, by the engine."""

    def __init__(self, docs: list[dict[str, Any]], matches: list[dict[str, Any]]) -> None:
        self.docs = {d["doc_id"]: d for d in docs}
        self.links: dict[str, dict[str, str]] = {}  # claim_id → doc_id → rule
        for m in matches:
            self.links.setdefault(m["claim_id"], {}).setdefault(m["doc_id"], m["rule"])

    def of(self, claim: dict[str, Any]) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], int]]]:
        linked = self.links.get(claim["claim_id"], {})
        docs = [(self.docs[i], rule) for i, rule in linked.items() if i in self.docs]
        bills = sorted((d for d, _ in docs if d["doc_type"] != "payment"), key=lambda d: d["doc_no"] or "")
        bill_nos = {b["doc_no"]: b for b in bills}
        pays = []
        for p, rule in docs:
            if p["doc_type"] != "payment":
                continue
            sources = [s for s in (p.get("source_doc_nos") or "").split(",") if s]
            mine = [bill_nos[s] for s in sources if s in bill_nos]
            if rule == "batch":  # one payment for several claims: this claim's part of it
                share = claim.get("amount_fen")
            elif len(sources) > 1 and mine:
                share = sum(b["amount_fen"] or 0 for b in mine)
            else:
                share = p["amount_fen"]
            pays.append((p, int(share or 0)))
        pays.sort(
            key=lambda ps: (str(ps[0].get("paid_at") or ps[0].get("posted_at") or ""), ps[0]["doc_no"] or "")
        )
        return bills, pays


def finance_summary(bills: list[dict[str, Any]], pays: list[tuple[dict[str, Any], int]]) -> str:
    parts = []
    for d in [*bills, *(p for p, _ in pays)]:
        kind = "付款单" if d["doc_type"] == "payment" else "报销单"
        label = DOC_STATUS_LABELS.get(d["status"] or "", d["status"] or "?")
        when = d.get("paid_at") if d["doc_type"] == "payment" else d.get("posted_at")
        date = f" {_local(when, '%Y-%m-%d')}" if when is not None else ""
        parts.append(f"{kind} {d['doc_no']} {label} ¥{yuan(d['amount_fen'] or 0)}{date}")
    return "；".join(parts) if parts else "财务系统中没有对应单据"


def build_proposals(
    conn: Connection,
    people: pd.DataFrame,
    *,
    comment_userid: str | None,
    period: str | None = None,
) -> Proposals:
    """Actions for the open (or acknowledged) exceptions, optionally of one ``period``, in a stable order."""
    where: ColumnElement[bool] = exception.c.status.in_(ACTIVE_STATUSES)
    if period:
        where = where & (exception.c.period == period)
    exceptions = _records(read_table(conn, exception, where))
    claims: dict[str, dict[str, Any]] = {}
    for c in _records(read_table(conn, STANDARD_TABLES["expense_claim"])):
        claims.setdefault(c["claim_no"], c)  # read_table orders by claim_id: the first one wins, stably
    finance = _Finance(
        _records(read_table(conn, STANDARD_TABLES["finance_doc"])), _records(read_table(conn, match))
    )
    staff = {r["person_id"]: r.get("kingdee_staff_number") for r in _records(people)}

    out = Proposals()
    for exc in sorted(exceptions, key=lambda e: (e["exception_type"], e["exception_id"])):
        kind = exc["exception_type"]
        claim = claims.get(exc.get("claim_no") or "")

        def skip(reason: str, exc: dict[str, Any] = exc) -> None:
            out.skipped.append(
                {
                    "exception_id": exc["exception_id"],
                    "exception_type": exc["exception_type"],
                    "reason": reason,
                }
            )

        if kind not in ("MISSING_IN_FINANCE", "STATUS_MISMATCH", "LATE_PAYMENT", "DUPLICATE_PAYMENT"):
            skip(f"no automatic correction for {kind}")
            continue
        if claim is None:
            skip(f"claim {exc.get('claim_no')} is not in the warehouse")
            continue
        if kind == "MISSING_IN_FINANCE":
            action = _create_bill(exc, claim, staff, skip)
            if action is not None:
                out.actions.append(action)
        elif kind in ("STATUS_MISMATCH", "LATE_PAYMENT"):
            if not comment_userid:
                skip("set corrections.comment_userid (the DingTalk user the comment is posted as)")
                continue
            out.actions.append(_status_comment(exc, claim, finance, comment_userid))
        else:
            actions = _flag_recall(exc, claim, finance)
            if not actions:
                skip("fewer than two payments found for the claim")
            out.actions.extend(actions)
    return out


def _base(exc: dict[str, Any], claim: dict[str, Any]) -> dict[str, Any]:
    return {
        "exception_id": exc["exception_id"],
        "exception_type": exc["exception_type"],
        "claim_no": claim["claim_no"],
        "applicant_id": claim.get("applicant_id"),
        "amount_fen": int(claim["amount_fen"]) if claim.get("amount_fen") is not None else None,
    }


def _create_bill(
    exc: dict[str, Any], claim: dict[str, Any], staff: dict[str, Any], skip: Any
) -> Action | None:
    if claim.get("status") != "approved" or claim.get("approved_at") is None:
        skip(f"claim {claim['claim_no']} is {claim.get('status')}, not approved: no bill is created")
        return None
    number = staff.get(claim.get("applicant_id") or "")
    if not number:
        skip(f"applicant {claim.get('applicant_id')} has no kingdee_staff_number in the people table")
        return None
    currency = CURRENCY_NUMBERS.get(claim.get("currency") or "CNY")
    if currency is None:
        skip(f"currency {claim.get('currency')} has no Kingdee currency number")
        return None
    amount = int(claim["amount_fen"])
    model = {
        "FDate": _local(claim["approved_at"], "%Y-%m-%dT%H:%M:%S"),
        "F_OAFIN_OANo": claim["claim_no"],
        "FProposerID": {"FStaffNumber": number},
        "FRequestDeptID": {"FNumber": claim.get("department_code") or ""},
        "FExpenseAmount": yuan(amount),
        "FCausa": claim.get("title") or "",
        "FCurrencyID": {"FNumber": currency},
        "FOrgID": {"FNumber": claim.get("company_code") or exc.get("company_code") or ""},
    }
    return Action(
        **_base(exc, claim),
        action="finance_create_bill",
        target=f"kingdee {ER_FORM} for OA {claim['claim_no']}",
        content={"form_id": ER_FORM, "claim_no": claim["claim_no"], "model": model},
        preview=(
            f"Kingdee: Save a {ER_FORM} bill for OA {claim['claim_no']} (staff {number}, "
            f"¥{yuan(amount)}, dated {model['FDate']}), then Submit"
        ),
    )


def _status_comment(exc: dict[str, Any], claim: dict[str, Any], finance: _Finance, userid: str) -> Action:
    bills, pays = finance.of(claim)
    summary = finance_summary(bills, pays)
    what = (
        "OA 状态与财务状态不一致" if exc["exception_type"] == "STATUS_MISMATCH" else "付款超过时限或尚未付款"
    )
    text = f"oafin 对账提示（{exc['exception_type']}）：{what}。财务状态：{summary}。"
    instance_id = str(claim["claim_id"]).split(":", 1)[1]
    return Action(
        **_base(exc, claim),
        action="oa_status_comment",
        target=f"dingtalk instance {instance_id} (OA {claim['claim_no']})",
        content={"instance_id": instance_id, "comment_userid": userid, "text": text},
        preview=f"DingTalk: comment on OA {claim['claim_no']}: {text}",
    )


def _flag_recall(exc: dict[str, Any], claim: dict[str, Any], finance: _Finance) -> list[Action]:
    bills, pays = finance.of(claim)
    pays = [(p, share) for p, share in pays if p.get("status") != "reversed"]
    if len(pays) < 2:
        return []
    if exc.get("doc_no"):
        excess = [p for p, _ in pays if p["doc_no"] == exc["doc_no"]]
    else:
        billed = sum(int(b["amount_fen"] or 0) for b in bills) if bills else int(claim["amount_fen"] or 0)
        excess, paid = [], 0
        for p, share in pays:
            if paid >= billed - TOLERANCE_FEN:
                excess.append(p)
            paid += share
        excess = excess or [pays[-1][0]]
    first = pays[0][0]["doc_no"]
    actions = []
    for p in excess:
        fid = int(str(p["doc_id"]).rsplit(":", 1)[1])
        note = f"疑似重复付款，请核实并追回：OA {claim['claim_no']} 已由付款单 {first} 支付"
        actions.append(
            Action(
                **_base(exc, claim),
                action="finance_flag_recall",
                target=f"kingdee {PAY_FORM} {p['doc_no']}",
                content={"form_id": PAY_FORM, "fid": fid, "doc_no": p["doc_no"], "note": note},
                preview=f"Kingdee: add to the remark of payment {p['doc_no']} (¥{yuan(p['amount_fen'] or 0)}): {note}",
            )
        )
    return actions
