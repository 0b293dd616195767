"""Random draws shared by the generator: moments, amounts, invoices. All from one seeded ``Random``."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta

from oafin.sandbox.finance_fields import make_digital_invoice_no, make_traditional_invoice, make_uscc
from oafin.sandbox.model import Invoice

# VAT rates the clean invoices use; all legal for 2026 (chinese-finance-fields.md, "VAT rates")
RATES = (6, 9, 13, 3, 1)
RATE_WEIGHTS = (35, 25, 25, 10, 5)


class Draw:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.invoice_keys: set[str] = set()

    def between(self, lo: datetime, hi: datetime) -> datetime:
        """A moment in ``[lo, hi)``, to the second."""
        seconds = int((hi - lo).total_seconds())
        return lo + timedelta(seconds=self.rng.randrange(max(1, seconds)))

    def working(self, lo: datetime, hi: datetime) -> datetime:
        """A moment in ``[lo, hi)`` during the working day (08:30-21:30) where the range allows it."""
        days = (hi.date() - lo.date()).days
        day = lo.date() + timedelta(days=self.rng.randint(0, max(0, days)))
        moment = datetime.combine(day, time(8, 30), lo.tzinfo) + timedelta(
            seconds=self.rng.randrange(13 * 3600)
        )
        return moment if lo <= moment < hi else self.between(lo, hi)

    def after(self, moment: datetime, lo: timedelta, hi: timedelta) -> datetime:
        return moment + lo + timedelta(seconds=self.rng.randrange(max(1, int((hi - lo).total_seconds()))))

    def amount(self) -> int:
        """A claim amount in fen: mostly small, a few above a manager's limit."""
        r = self.rng.random()
        if r < 0.75:
            return self.rng.randint(20_00, 1_000_00)
        if r < 0.97:
            return self.rng.randint(1_000_00, 4_000_00)
        if r < 0.997:
            return self.rng.randint(4_000_00, 19_000_00)
        return self.rng.randint(20_000_00, 60_000_00)

    def split(self, total: int, parts: int, minimum: int = 100) -> list[int]:
        """``total`` as ``parts`` positive amounts (each at least ``minimum`` when it fits) summing to it."""
        spare = total - parts * minimum
        if parts <= 1 or spare < parts:
            return [total]
        cuts = sorted(self.rng.sample(range(1, spare + 1), parts - 1))
        edges = [0, *cuts, spare]
        return [edges[i + 1] - edges[i] + minimum for i in range(parts)]

    def invoices(self, total_fen: int, before: date) -> list[Invoice]:
        """1-3 valid invoices whose totals sum to ``total_fen``, issued up to 20 days before ``before``."""
        n = self.rng.choices((1, 2, 3), weights=(60, 30, 10))[0]
        return [self.invoice(part, before) for part in self.split(total_fen, n)]

    def invoice(self, total_fen: int, before: date) -> Invoice:
        rng = self.rng
        issued = before - timedelta(days=rng.randint(0, 20))
        rate = rng.choices(RATES, weights=RATE_WEIGHTS)[0]
        # ex_tax = total / (1 + rate), rounded half up in integer fen; tax is the rest, so
        # total = ex_tax + tax exactly and tax ≈ ex_tax × rate within a fen.
        ex_tax = (2 * total_fen * 100 + 100 + rate) // (2 * (100 + rate))
        while True:
            if rng.random() < 0.6:
                code, number = "", make_digital_invoice_no(rng, issued)
            else:
                code, number = make_traditional_invoice(rng, issued)
            inv = Invoice(code, number, issued, ex_tax, total_fen - ex_tax, total_fen, rate, make_uscc(rng))
            if inv.key not in self.invoice_keys:
                self.invoice_keys.add(inv.key)
                return inv
