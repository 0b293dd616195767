"""The finance side of the generated month: reimbursement bills and payments.

A clean chain (DESIGN, "Reconciliation") is a bill 30 min-3 days after approval and its
payment(s) 10 min-1 day after the bill, so the first payment is always inside the 5-day
SLA. Nothing is dated at or after the period end (``end``): the month is seen from its
last moment, so a claim approved in its last days may still be unbilled or unpaid.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from oafin.sandbox.codes import Person
from oafin.sandbox.draw import Draw
from oafin.sandbox.finance_fields import full_width
from oafin.sandbox.model import Bill, Claim, Payment

BILL_DELAY = (timedelta(minutes=30), timedelta(days=3))
PAY_DELAY = (timedelta(minutes=10), timedelta(days=1))


class Ledger:
    def __init__(self, draw: Draw, end: datetime, noise: Counter[str]) -> None:
        self.draw = draw
        self.rng = draw.rng
        self.end = end
        self.noise = noise
        self.bills: list[Bill] = []
        self.payments: list[Payment] = []

    # -- documents -------------------------------------------------------------------------------

    def bill(
        self,
        claim: Claim | None,
        when: datetime,
        amount_fen: int,
        *,
        proposer: Person | None = None,
        oa_no_text: str | None = None,
        causa: str = "",
        noisy: bool = False,
    ) -> Bill:
        if proposer is None:
            if claim is None:
                raise ValueError("a bill without a claim needs a proposer")
            proposer = claim.originator
        if oa_no_text is None:
            oa_no_text = self._oa_no(claim, noisy) if claim else ""
        bill = Bill(
            claim=claim,
            when=when,
            proposer=proposer,
            amount_fen=amount_fen,
            oa_no_text=oa_no_text,
            causa=causa or (claim.title if claim else ""),
            amount_as_text=self.rng.random() < 0.4,  # FExpenseAmount: a number or numeric text
        )
        if noisy and self.rng.random() < 0.02:
            bill.staff_pad = " "
            self.noise["staff_number_trailing_space"] += 1
        self.bills.append(bill)
        return bill

    def pay(
        self, when: datetime, payee: Person, amount_fen: int, bills: list[Bill], oa_no_text: str = ""
    ) -> Payment:
        payment = Payment(when=when, payee=payee, amount_fen=amount_fen, bills=bills, oa_no_text=oa_no_text)
        self.payments.append(payment)
        return payment

    def _oa_no(self, claim: Claim, noisy: bool) -> str:
        """The OA claim number as typed into finance by hand: now and then with stray spaces or full-width characters."""
        no = claim.claim_no
        if not noisy or self.rng.random() >= 0.06:
            return no
        self.noise["oa_no_hand_typed"] += 1
        return self.rng.choice((f" {no}", f"{no} ", f"  {no} ", full_width(no), f"{full_width(no)} "))

    def _bill_after_approval(self, claim: Claim, amount_fen: int | None = None) -> Bill:
        when = self.draw.after(claim.finished_at, *BILL_DELAY)
        return self.bill(claim, when, claim.amount_fen if amount_fen is None else amount_fen)

    def _pay_after(self, bill: Bill, amount_fen: int | None = None, payee: Person | None = None) -> Payment:
        return self.pay(
            self.draw.after(bill.when, *PAY_DELAY),
            payee or bill.proposer,
            bill.amount_fen if amount_fen is None else amount_fen,
            [bill],
        )

    # -- chains ----------------------------------------------------------------------------------

    def settle_clean(self, claim: Claim) -> None:
        """A clean chain with the harmless variations real ledgers have."""
        rng, draw = self.rng, self.draw
        if rng.random() < 0.03:  # paid straight from the OA claim, no bill (default-forms.md, AP_PAYBILL)
            when = draw.after(claim.finished_at, BILL_DELAY[0], BILL_DELAY[1] + PAY_DELAY[1])
            if when < self.end:
                self.pay(when, claim.originator, claim.amount_fen, [], oa_no_text=self._oa_no(claim, True))
                self.noise["paid_straight_from_oa"] += 1
            return
        when = draw.after(claim.finished_at, *BILL_DELAY)
        if when >= self.end:
            return
        amount = claim.amount_fen
        if rng.random() < 0.03:
            amount += 1 if amount == 1 or rng.random() < 0.5 else -1
            self.noise["bill_within_tolerance"] += 1
        bill = self.bill(claim, when, amount, noisy=True)
        parts = draw.split(amount, rng.choice((2, 3))) if rng.random() < 0.05 else [amount]
        times = sorted(draw.after(when, *PAY_DELAY) for _ in parts)
        if times[-1] >= self.end:
            return  # approved in the period's last days: billed, not yet paid
        if len(parts) > 1:
            self.noise["split_payment"] += 1
        for moment, part in zip(times, parts, strict=True):
            self.pay(moment, claim.originator, part, [bill])

    def settle_single(self, claim: Claim) -> None:
        """A bill and one payment of it, nothing else (for claims carrying another finding)."""
        self._pay_after(self._bill_after_approval(claim))

    def settle_batch(self, claims: list[Claim]) -> None:
        """One payment of several bills of one person (``FSOURCEBILLNO`` = ``A,B,C``)."""
        bills = [
            self.bill(c, self.draw.after(c.finished_at, BILL_DELAY[0], timedelta(days=1)), c.amount_fen)
            for c in claims
        ]
        when = self.draw.after(max(b.when for b in bills), PAY_DELAY[0], timedelta(hours=12))
        self.pay(when, claims[0].originator, sum(b.amount_fen for b in bills), bills)
        self.noise["batch_payment"] += 1

    def amount_mismatch(self, claim: Claim) -> None:
        """The bill (and its payment) for at least 1 yuan more or less than the claim."""
        delta = self.rng.randint(100, max(100, claim.amount_fen // 5))
        lower = claim.amount_fen - delta >= 100 and self.rng.random() < 0.5
        self._pay_after(
            self._bill_after_approval(claim, claim.amount_fen - delta if lower else claim.amount_fen + delta)
        )

    def payee_mismatch(self, claim: Claim, payee: Person) -> None:
        self._pay_after(self._bill_after_approval(claim), payee=payee)

    def duplicate_payment(self, claim: Claim) -> None:
        """The bill paid twice in full: two payments, both inside the SLA."""
        first = self._pay_after(self._bill_after_approval(claim))
        when = self.draw.after(first.when, timedelta(hours=1), timedelta(hours=12))
        self.pay(when, first.payee, first.amount_fen, first.bills)

    def status_mismatch(self, claim: Claim) -> None:
        """Billed and paid although OA refused or withdrew it."""
        bill = self.bill(
            claim, self.draw.after(claim.created, timedelta(hours=2), timedelta(days=2)), claim.amount_fen
        )
        self._pay_after(bill)

    def late_payment(self, claim: Claim) -> None:
        """Billed in time; paid 6.5+ days after approval, or not at all by the period end."""
        bill = self._bill_after_approval(claim)
        if self.rng.random() < 0.6:
            lo = claim.finished_at + timedelta(days=6, hours=12)
            hi = min(claim.finished_at + timedelta(days=14), self.end - timedelta(hours=1))
            self.pay(self.draw.between(lo, hi), claim.originator, bill.amount_fen, [bill])

    def orphan(self, proposer: Person, when: datetime, amount_fen: int, oa_no_text: str, causa: str) -> Bill:
        """A bill with no OA claim behind it, paid more often than not."""
        bill = self.bill(None, when, amount_fen, proposer=proposer, oa_no_text=oa_no_text, causa=causa)
        if self.rng.random() < 0.6:
            payment = self._pay_after(bill)
            if payment.when >= self.end:
                self.payments.remove(payment)
        return bill

    # -- numbers ---------------------------------------------------------------------------------

    def number(self) -> None:
        """Internal ids and document numbers in date order, as a ledger assigns them (FYBX00012345, FKD00012345)."""
        for i, bill in enumerate(sorted(self.bills, key=lambda b: b.when), start=1):
            bill.doc_id, bill.doc_no = 100_000 + i, f"FYBX{10_000 + i:08d}"
        for i, pay in enumerate(sorted(self.payments, key=lambda p: p.when), start=1):
            pay.doc_id, pay.doc_no = 200_000 + i, f"FKD{20_000 + i:08d}"
