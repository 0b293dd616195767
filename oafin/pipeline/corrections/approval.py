"""Who may approve what: auto-approve rules, the approver's identity, segregation of duties.

How an approver names themselves: in the approval form they type their ``person_id``
(``P0001``), their id in any registered system (the people table's identity columns, e.g. a
DingTalk userid), or their name exactly as in the people
table when no one else has it. One identity across systems (SSO) is what the people table
records, so each of these resolves to one ``person_id``; a name that matches no one, or more
than one person, is refused, because segregation of duties cannot be checked for it. Prefect's
open-source UI does not authenticate who typed the name: the audit log records what was typed
and the person it resolved to.

Segregation of duties: an approver may not approve a correction touching a claim they applied
for. Such an action is refused with a message saying so; the approver's other choices stand.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from oafin.config import AutoApproveRule


def id_columns() -> tuple[str, ...]:
    """``person_id`` and each registered system's identity column of the people table."""
    from oafin.systems.registry import systems

    return ("person_id", *sorted({s.identity_column for s in systems().values()}))


MIN_PREFIX = 8
AUTO_PREFIX = "auto:"


class ApprovalError(ValueError):
    """The approval cannot be accepted at all (unknown or ambiguous approver)."""


@dataclass(frozen=True)
class Approver:
    person_id: str
    name: str

    @property
    def label(self) -> str:
        return f"{self.name} ({self.person_id})"


@dataclass
class Decision:
    approved: dict[str, str] = field(default_factory=dict)  # key → approved_by
    refused: dict[str, str] = field(default_factory=dict)  # key → reason
    approver: str | None = None


def resolve_approver(typed: str, people: pd.DataFrame) -> Approver:
    """The person an approver's typed identity names (see the module docstring)."""
    value = (typed or "").strip()
    if not value:
        raise ApprovalError("no approver given: type your person_id or your id in one of the systems")
    rows = people.to_dict("records")
    for column in id_columns():
        hits = [r for r in rows if str(r.get(column) or "").strip() == value]
        if len(hits) == 1:
            return Approver(str(hits[0]["person_id"]), str(hits[0].get("name") or ""))
    hits = [r for r in rows if str(r.get("name") or "").strip() == value]
    if len(hits) == 1:
        return Approver(str(hits[0]["person_id"]), str(hits[0].get("name") or ""))
    if len(hits) > 1:
        raise ApprovalError(f"approver {value!r} names {len(hits)} people: use your person_id instead")
    raise ApprovalError(f"approver {value!r} is not in the people table: approval refused")


def rule_matches(rule: AutoApproveRule, row: dict[str, Any]) -> bool:
    if row["action"] != rule.action:
        return False
    if rule.exception_types and row["exception_type"] not in rule.exception_types:
        return False
    if rule.max_amount_fen is not None:
        amount = row.get("amount_fen")
        if amount is None or int(amount) > rule.max_amount_fen:
            return False
    return True


def auto_approve(rows: Iterable[dict[str, Any]], rules: Sequence[AutoApproveRule]) -> dict[str, str]:
    """key → ``auto:<rule name>`` for each row the first matching rule covers."""
    out = {}
    for row in rows:
        for rule in rules:
            if rule_matches(rule, row):
                out[row["idempotency_key"]] = AUTO_PREFIX + rule.name
                break
    return out


def select_keys(chosen: Sequence[str], keys: Sequence[str]) -> tuple[list[str], list[str]]:
    """The keys an approver chose: ``all``, full keys, or unique prefixes of ≥ 8 characters
    (the marker shown in the list). Returns (selected, unrecognised entries)."""
    selected: list[str] = []
    unknown: list[str] = []
    for entry in chosen:
        entry = entry.strip().lower().removeprefix("[oafin:").removesuffix("]")
        if not entry:
            continue
        if entry == "all":
            selected.extend(k for k in keys if k not in selected)
            continue
        hits = [k for k in keys if k.startswith(entry)] if len(entry) >= MIN_PREFIX else []
        if len(hits) == 1:
            if hits[0] not in selected:
                selected.append(hits[0])
        else:
            unknown.append(entry)
    return selected, unknown


def review(
    typed_approver: str, chosen: Sequence[str], rows: Sequence[dict[str, Any]], people: pd.DataFrame
) -> Decision:
    """Check a human approval of ``rows`` (ledger rows awaiting approval)."""
    decision = Decision()
    by_key = {r["idempotency_key"]: r for r in rows}
    selected, unknown = select_keys(chosen, list(by_key))
    if not selected and not unknown:
        return decision
    try:
        approver = resolve_approver(typed_approver, people)
    except ApprovalError as exc:
        decision.refused = {k: str(exc) for k in selected}
        return decision
    decision.approver = approver.label
    for entry in unknown:
        decision.refused[entry] = f"{entry!r} matches no proposed action (or more than one)"
    for key in selected:
        row = by_key[key]
        if row.get("applicant_id") and row["applicant_id"] == approver.person_id:
            decision.refused[key] = (
                f"refused: {approver.label} applied for claim {row.get('claim_no')}; segregation of duties "
                "forbids approving a correction to one's own claim. Ask another approver."
            )
        else:
            decision.approved[key] = approver.label
    return decision
