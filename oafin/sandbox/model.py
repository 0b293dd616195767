"""One company-month in the standard's terms, before any system writes it in its API shapes.

Exact values live here (int fen, aware datetimes, the standard's statuses); each system's twin
(``oafin/systems/<name>/twin_render.py``) turns them into the strings and numbers that system
sends. Noise that is the same fact written differently (an amount typed with full-width digits
or thousands separators, a claim number typed with stray spaces, trailing spaces in form text)
is part of the fact here, so every twin serves the same noise and must give the same exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from oafin.sandbox.codes import Person

# The standard's claim statuses (DESIGN, expense_claim.status); the generator writes no drafts.
ClaimStatus = Literal["draft", "pending", "approved", "rejected", "withdrawn"]
# Form text that may carry trailing whitespace, by the standard's field name.
PADDED_FIELDS = ("department", "expense_type", "title")


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
    """One expense claim filed in the OA.

    ``kind`` is ``clean`` or the exception type injected into it. ``amount_fen`` is the
    true amount (also for a claim whose form hides it: see ``amount_text``). ``source_id``
    is the claim's id in the OA (a UUID; each OA twin writes it in its own way).
    """

    kind: str
    source_id: str
    originator: Person
    created: datetime  # submitted
    status: ClaimStatus
    amount_fen: int
    expense_label: str
    dept_label: str
    title: str
    budget_code: str
    project_code: str
    card: str
    in_period: bool
    finished: datetime | None = None  # when it was approved, rejected or withdrawn
    approvers: list[Person] = field(default_factory=list)  # who agreed, in order
    approval_times: list[datetime] = field(default_factory=list)  # when each of them agreed
    refuser: Person | None = None
    invoices: list[Invoice] = field(default_factory=list)
    claim_no: str = ""  # the business number people quote
    amount_text: str | None = None  # the amount as the applicant typed it; None = field missing
    text_pad: dict[str, str] = field(default_factory=dict)  # PADDED_FIELDS name -> trailing spaces

    @property
    def finished_at(self) -> datetime:
        """``finished`` of a claim known to be finished (approved, refused or withdrawn)."""
        if self.finished is None:
            raise ValueError(f"claim {self.claim_no or self.source_id} is not finished")
        return self.finished

    @property
    def approved(self) -> bool:
        return self.status == "approved"

    @property
    def quarantined(self) -> bool:
        return self.kind in ("UNMAPPED_CODE", "CONTRACT_VIOLATION")


@dataclass
class Bill:
    """A reimbursement bill in finance. ``claim`` is None for a bill with no OA claim behind it.

    ``oa_no_text``: the claim number as typed into finance; ``amount_as_text``: finance holds
    the amount as numeric text rather than a number; ``staff_pad``: trailing whitespace on the
    proposer's id. ``doc_id`` is the finance system's internal id, ``doc_no`` its number.
    """

    claim: Claim | None
    when: datetime
    proposer: Person
    amount_fen: int
    oa_no_text: str
    causa: str
    amount_as_text: bool = False
    staff_pad: str = ""
    doc_id: int = 0
    doc_no: str = ""


@dataclass
class Payment:
    """A payment of one or more bills, or straight from an OA claim (``oa_no_text``)."""

    when: datetime
    payee: Person
    amount_fen: int
    bills: list[Bill] = field(default_factory=list)
    oa_no_text: str = ""
    doc_id: int = 0
    doc_no: str = ""
