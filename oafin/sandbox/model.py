"""The generator's own picture of a company-month, before it is written in the APIs' shapes.

Exact values live here (int fen, aware datetimes); ``render.py`` turns them into the
strings and numbers the fake DingTalk and Kingdee send, noise included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from oafin.sandbox.codes import Person


@dataclass
class Invoice:
    code: str  # 10 or 12 digits; "" for a fully digital invoice
    number: str  # 8 digits, or 20 for a fully digital invoice
    issued: date
    ex_tax_fen: int
    tax_fen: int
    total_fen: int
    rate_pct: int
    seller_id: str

    @property
    def key(self) -> str:
        """How DESIGN keys an invoice: ``<code>-<number>``, or the bare number without a code."""
        return f"{self.code}-{self.number}" if self.code else self.number


@dataclass
class Claim:
    """One DingTalk expense approval.

    ``kind`` is ``clean`` or the exception type injected into it. ``amount_fen`` is the
    true amount (also for a claim whose form hides it: see ``amount_text``).
    """

    kind: str
    instance_id: str
    originator: Person
    created: datetime
    status: str  # COMPLETED | RUNNING | TERMINATED
    result: str  # agree | refuse | ""
    amount_fen: int
    expense_label: str
    dept_label: str
    title: str
    budget_code: str
    project_code: str
    card: str
    in_period: bool
    finished: datetime | None = None
    approvers: list[Person] = field(default_factory=list)  # who agreed, in order
    approval_times: list[datetime] = field(default_factory=list)  # when each of them agreed
    refuser: Person | None = None
    invoices: list[Invoice] = field(default_factory=list)
    business_id: str = ""
    amount_text: str | None = None  # the 报销金额 value as written; None = component missing
    text_pad: dict[str, str] = field(default_factory=dict)  # form label -> trailing spaces

    @property
    def finished_at(self) -> datetime:
        """``finished`` of a claim known to be finished (approved, refused or withdrawn)."""
        if self.finished is None:
            raise ValueError(f"claim {self.business_id or self.instance_id} is not finished")
        return self.finished

    @property
    def approved(self) -> bool:
        return self.status == "COMPLETED" and self.result == "agree"

    @property
    def quarantined(self) -> bool:
        return self.kind in ("UNMAPPED_CODE", "CONTRACT_VIOLATION")


@dataclass
class Bill:
    """An ``ER_ExpReimbursement`` bill. ``claim`` is None for a bill with no OA claim behind it."""

    claim: Claim | None
    when: datetime
    proposer: Person
    amount_fen: int
    oa_no_text: str  # F_OAFIN_OANo as typed
    causa: str
    amount_as_text: bool = False
    staff_pad: str = ""
    fid: int = 0
    bill_no: str = ""


@dataclass
class Payment:
    """An ``AP_PAYBILL`` payment of one or more bills, or straight from an OA claim (``oa_no_text``)."""

    when: datetime
    payee: Person
    amount_fen: int
    bills: list[Bill] = field(default_factory=list)
    oa_no_text: str = ""
    fid: int = 0
    bill_no: str = ""
