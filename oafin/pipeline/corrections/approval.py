"""Who may approve what: auto-approve rules, the approver's identity, segregation of duties.

How an approver names themselves: in the approval form they type their ``person_id``
(``P0001``), their id in any system of the identities table (DingTalk userid, Kingdee staff
number, ...), or their name exactly as in the people table when no one else has it. One identity
across systems (SSO) is what the people and identities tables record, so each of these resolves
to one ``person_id``; a value that matches no one, or more than one person, is refused, because
segregation of duties cannot be checked for it. Prefect's
open-source UI does not authenticate who typed the name: the audit log records the person it
resolved to as ``self-declared: name (P0001)``. An approval in the company's OA, where users log
in, is the other path (``oafin.pipeline.corrections.oa``).

Segregation of duties: an approver may not approve a correction touching a claim they applied
for. Such an action is refused with a message saying so; the approver's other choices stand.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mappings.code_tables import CodeTables
from oafin.config import AutoApproveRule

MIN_PREFIX = 8
AUTO_PREFIX = "auto:"
# The Prefect form's approver typed their own name: recorded as such (issue #17); an approval in
# the OA is recorded with the OA's instance and its approvers of record instead.
SELF_DECLARED = "self-declared: "


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


def resolve_approver(typed: str, tables: CodeTables) -> Approver:
    """The person an approver's typed identity names (see the module docstring)."""
    value = (typed or "").strip()
    if not value:
        raise ApprovalError("no approver given: type your person_id or your id in one of the systems")
    rows: list[dict[str, Any]] = [{str(k): v for k, v in r.items()} for r in tables.people.to_dict("records")]
    by_id = {str(r["person_id"]).strip(): r for r in rows}
    if value in by_id:
        return _approver(by_id[value])
    ids = tables.identities
    owners = sorted(set(ids.loc[ids["external_id"].astype(str).str.strip() == value, "person_id"]))
    if len(owners) > 1:
        raise ApprovalError(f"approver {value!r} names {len(owners)} people: use your person_id instead")
    if owners and owners[0] in by_id:
        return _approver(by_id[owners[0]])
    hits = [r for r in rows if str(r.get("name") or "").strip() == value]
    if len(hits) == 1:
        return _approver(hits[0])
    if len(hits) > 1:
        raise ApprovalError(f"approver {value!r} names {len(hits)} people: use your person_id instead")
    raise ApprovalError(f"approver {value!r} is not in the people table: approval refused")


def _approver(row: dict[str, Any]) -> Approver:
    return Approver(str(row["person_id"]), str(row.get("name") or ""))


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
    typed_approver: str, chosen: Sequence[str], rows: Sequence[dict[str, Any]], tables: CodeTables
) -> Decision:
    """Check a human approval of ``rows`` (ledger rows awaiting approval)."""
    decision = Decision()
    by_key = {r["idempotency_key"]: r for r in rows}
    selected, unknown = select_keys(chosen, list(by_key))
    if not selected and not unknown:
        return decision
    try:
        approver = resolve_approver(typed_approver, tables)
    except ApprovalError as exc:
        decision.refused = {k: str(exc) for k in selected}
        return decision
    label = SELF_DECLARED + approver.label
    decision.approver = label
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
            decision.approved[key] = label
    return decision
