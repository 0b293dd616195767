"""A proposed correction and its idempotency key."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from oafin.standard import yuan as yuan  # re-exported: proposals and previews use it
from oafin.warehouse.audit import canonical_json

ActionKind = Literal[
    "oa_status_comment",
    "finance_create_bill",
    "finance_flag_recall",
    "expense_write_voucher_no",
    "expense_comment",
]
ACTION_KINDS: Final = (
    "oa_status_comment",
    "finance_create_bill",
    "finance_flag_recall",
    "expense_write_voucher_no",
    "expense_comment",
)
MARKER_CHARS: Final = 16


@dataclass(frozen=True)
class Action:
    """One change to push to one system, closing (or informing on) one exception.

    ``content`` is the intent, built only from warehouse data, so the same exception gives the
    same content, hash and key on every run. The request actually sent is derived from it at
    push time (e.g. a remark appended to the bill's current one) and carries ``marker`` so the
    target system can be searched for it.
    """

    exception_id: str
    exception_type: str
    action: ActionKind
    system: str  # the target source's system, whose write action sends it
    target: str  # human-readable: what in which system
    content: dict[str, Any]
    preview: str
    claim_no: str | None = None
    applicant_id: str | None = None  # person_id of the claim's applicant (segregation of duties)
    amount_fen: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(canonical_json(self.content).encode("utf-8")).hexdigest()

    @property
    def key(self) -> str:
        """Idempotency key: exception id + action + content hash (issue #6)."""
        raw = f"{self.exception_id}|{self.action}|{self.content_hash}"
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()

    @property
    def marker(self) -> str:
        return marker_for(self.key)

    def ledger_row(self) -> dict[str, Any]:
        return {
            "idempotency_key": self.key,
            "exception_id": self.exception_id,
            "exception_type": self.exception_type,
            "action": self.action,
            "system": self.system,
            "target": self.target,
            "content_hash": self.content_hash,
            "content": canonical_json(self.content),
            "preview": self.preview,
            "claim_no": self.claim_no,
            "applicant_id": self.applicant_id,
            "amount_fen": self.amount_fen,
        }


def marker_for(key: str) -> str:
    """The tag written into comments and remarks, e.g. ``[oafin:1a2b3c4d5e6f7a8b]``."""
    return f"[oafin:{key[:MARKER_CHARS]}]"
