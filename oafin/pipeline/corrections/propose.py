"""Open exceptions in the warehouse → proposed actions. Reads only; calls no system.

Which exception gets which action (issue #6); the target system's write action
(oafin.systems.<name>.actions) builds the content, and later sends it:

| exception | action | target |
|---|---|---|
| ``MISSING_IN_FINANCE`` | ``finance_create_bill``: the reimbursement bill from the approved OA claim | the chain's finance source |
| ``STATUS_MISMATCH``, ``LATE_PAYMENT`` | ``oa_status_comment``: finance's status of the claim, as a comment on the OA instance | the chain's OA source |
| ``DUPLICATE_PAYMENT`` | ``finance_flag_recall``: a remark on each excess payment asking for recall; never a reversal | the chain's finance source |
| ``VOUCHER_NOT_IN_ERP`` | ``expense_write_voucher_no``: the number of the ERP voucher that books the payment, written back (only to a paid document) | the chain's expense platform |
| ``VOUCHER_MISSING`` | ``expense_comment``: a comment on the paid document that the ERP has no voucher for it | the chain's expense platform |

Every other type, and an exception whose data cannot make a complete action (a claim not
approved, an unknown staff number, no comment user configured, a target system without that
write action), is listed in ``skipped`` with the reason, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import ColumnElement, Connection

from mappings.code_tables import CodeTables
from oafin.pipeline.corrections.model import Action, yuan
from oafin.standard import BUSINESS_TZ
from oafin.systems.base import ActionInput, CannotPropose
from oafin.systems.registry import systems
from oafin.warehouse.schema import STANDARD_TABLES, exception, match
from oafin.warehouse.store import read_table

ACTIVE_STATUSES = ("open", "acknowledged")
DOC_STATUS_LABELS = {
    "received": "已接收",
    "audited": "已审核",
    "paid": "已付款",
    "rejected": "已驳回",
    "reversed": "已冲销",
}
TOLERANCE_FEN = 1  # the default of reconcile.amount_tolerance_fen; callers pass the configured one
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


def action_targets(chain_systems: list[str]) -> dict[str, str]:
    """Action → the system it goes to, from the chain's systems (OA first): ``oa_*`` actions go to
    the chain's first system, ``finance_*`` ones to the OA's partner (its second: the finance system
    of a two-system chain, where the claims' documents are), ``expense_*`` ones to its first system
    of the ``expense`` role (none in a two-system chain)."""
    registry = systems()
    expense = [s for s in chain_systems if s in registry and registry[s].role == "expense"]
    out = {}
    for action in set(ACTION_OF.values()):
        if action.startswith("oa_"):
            out[action] = chain_systems[0]
        elif action.startswith("expense_"):
            if expense:
                out[action] = expense[0]
        else:
            out[action] = chain_systems[1] if len(chain_systems) > 1 else chain_systems[-1]
    return out


def registered_targets() -> dict[str, str]:
    """Action → the one registered system offering it (an action two systems offer is left out:
    the config's chain must say which; ``oafin.pipeline.corrections.push.action_targets``)."""
    offered: dict[str, list[str]] = {}
    for name, system in systems().items():
        for action in system.write_actions:
            offered.setdefault(action, []).append(name)
    return {action: names[0] for action, names in offered.items() if len(names) == 1}


def build_proposals(
    conn: Connection,
    tables: CodeTables,
    *,
    comment_userid: str | None,
    period: str | None = None,
    targets: Mapping[str, str] | None = None,
    options: Mapping[str, Any] | None = None,
    tolerance_fen: int = TOLERANCE_FEN,
) -> Proposals:
    """Actions for the open (or acknowledged) exceptions, optionally of one ``period``, in a stable order.

    ``targets``: action → the system it is sent to (from the config's chain; default: the one
    registered system offering it). ``options`` go to the write actions (corrections settings).
    """
    targets = registered_targets() if targets is None else targets
    registry = systems()
    options = {**(options or {}), "comment_userid": comment_userid}
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

        if kind not in ACTION_OF:
            skip(f"no automatic correction for {kind}")
            continue
        if kind in DOC_ACTIONS:
            _propose_on_document(exc, targets, registry, finance, options, out, skip)
            continue
        if claim is None:
            skip(f"claim {exc.get('claim_no')} is not in the warehouse")
            continue
        action = ACTION_OF[kind]
        system_name = targets.get(action)
        system = registry.get(system_name or "")
        if system is None or action not in system.write_actions:
            skip(f"no system in the chain takes {action} (target: {system_name or 'none'})")
            continue
        writer = system.write_actions[action]
        claim = {**claim, "approved_at": _moment(claim.get("approved_at"))}
        external_id = tables.external_ids(system.name).get(claim.get("applicant_id") or "")
        base: dict[str, Any] = {"claim": claim, "applicant_external_id": external_id, "options": options}
        try:
            if kind == "MISSING_IN_FINANCE":
                if claim.get("status") != "approved" or claim.get("approved_at") is None:
                    skip(
                        f"claim {claim['claim_no']} is {claim.get('status')}, not approved: no bill is created"
                    )
                    continue
                inputs = [ActionInput(**base)]
            elif kind in ("STATUS_MISMATCH", "LATE_PAYMENT"):
                inputs = [ActionInput(**base, text=_status_text(exc, claim, finance))]
            else:
                inputs = _recall_inputs(exc, claim, finance, base, tolerance_fen)
                if not inputs:
                    skip("fewer than two payments found for the claim")
                    continue
            for data in inputs:
                plan = writer.plan(data)
                out.actions.append(
                    Action(
                        **_base(exc, claim),
                        action=action,  # type: ignore[arg-type]  # ACTION_OF's values are the Action literals
                        system=system.name,
                        target=plan.target,
                        content=plan.content,
                        preview=plan.preview,
                    )
                )
        except CannotPropose as reason:
            skip(str(reason))
    return out


ACTION_OF = {
    "MISSING_IN_FINANCE": "finance_create_bill",
    "STATUS_MISMATCH": "oa_status_comment",
    "LATE_PAYMENT": "oa_status_comment",
    "DUPLICATE_PAYMENT": "finance_flag_recall",
    "VOUCHER_NOT_IN_ERP": "expense_write_voucher_no",
    "VOUCHER_MISSING": "expense_comment",
}
# Exceptions keyed by a document of the expense platform (a chain's), not by a claim.
DOC_ACTIONS = ("VOUCHER_NOT_IN_ERP", "VOUCHER_MISSING")


def _propose_on_document(
    exc: dict[str, Any],
    targets: Mapping[str, str],
    registry: Mapping[str, Any],
    finance: _Finance,
    options: Mapping[str, Any],
    out: Proposals,
    skip: Any,
) -> None:
    """The action on the expense platform's paid document an exception names (its ``doc_no``)."""
    action = ACTION_OF[exc["exception_type"]]
    system_name = targets.get(action)
    system = registry.get(system_name or "")
    if system is None or action not in system.write_actions:
        skip(f"no system in the chain takes {action} (target: {system_name or 'none'})")
        return
    docs = [
        d
        for d in finance.docs.values()
        if d["doc_no"] == exc.get("doc_no") and str(d["doc_id"]).startswith(f"{system.name}:")
    ]
    if len(docs) != 1:
        skip(f"document {exc.get('doc_no')} is not (once) in the warehouse")
        return
    doc = docs[0]
    vouchers = sorted(
        (
            d
            for d in finance.docs.values()
            if d["doc_type"] == "voucher" and doc["doc_no"] in (d.get("source_doc_nos") or "").split(",")
        ),
        key=lambda d: d["doc_no"] or "",
    )
    if exc["exception_type"] == "VOUCHER_NOT_IN_ERP":
        if not vouchers:
            skip(f"no ERP voucher books {doc['doc_no']}: nothing to write back")
            return
        data = ActionInput(claim={}, doc=doc, options={**options, "voucher": vouchers[0]})
    else:
        text = (
            f"oafin 对账提示（VOUCHER_MISSING）：付款单 {doc['doc_no']} 已支付 ¥{yuan(doc['amount_fen'] or 0)}，"
            "ERP 中没有对应凭证，请生成凭证。"
        )
        data = ActionInput(claim={}, doc=doc, text=text, options=options)
    try:
        plan = system.write_actions[action].plan(data)
    except CannotPropose as reason:
        skip(str(reason))
        return
    out.actions.append(
        Action(
            exception_id=exc["exception_id"],
            exception_type=exc["exception_type"],
            action=action,  # type: ignore[arg-type]  # ACTION_OF's values are the Action literals
            system=system.name,
            target=plan.target,
            content=plan.content,
            preview=plan.preview,
            amount_fen=int(doc["amount_fen"]) if doc.get("amount_fen") is not None else None,
        )
    )


def _moment(value: Any) -> Any:
    return None if value is None else pd.Timestamp(value).to_pydatetime()


def _base(exc: dict[str, Any], claim: dict[str, Any]) -> dict[str, Any]:
    return {
        "exception_id": exc["exception_id"],
        "exception_type": exc["exception_type"],
        "claim_no": claim["claim_no"],
        "applicant_id": claim.get("applicant_id"),
        "amount_fen": int(claim["amount_fen"]) if claim.get("amount_fen") is not None else None,
    }


def _status_text(exc: dict[str, Any], claim: dict[str, Any], finance: _Finance) -> str:
    bills, pays = finance.of(claim)
    summary = finance_summary(bills, pays)
    what = (
        "OA 状态与财务状态不一致" if exc["exception_type"] == "STATUS_MISMATCH" else "付款超过时限或尚未付款"
    )
    return f"oafin 对账提示（{exc['exception_type']}）：{what}。财务状态：{summary}。"


def _recall_inputs(
    exc: dict[str, Any],
    claim: dict[str, Any],
    finance: _Finance,
    base: dict[str, Any],
    tolerance_fen: int = TOLERANCE_FEN,
) -> list[ActionInput]:
    """One input per excess payment of a duplicate-paid claim (the first payment is the good one)."""
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
            if paid >= billed - tolerance_fen:  # the config's reconcile.amount_tolerance_fen
                excess.append(p)
            paid += share
        excess = excess or [pays[-1][0]]
    first = pays[0][0]["doc_no"]
    note = f"疑似重复付款，请核实并追回：OA {claim['claim_no']} 已由付款单 {first} 支付"
    return [ActionInput(**base, doc=p, text=note) for p in excess]
