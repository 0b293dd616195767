"""The third link of a chain OA → expense platform → ERP: the ERP's vouchers for the month's payments.

In a chain (DESIGN, "Chains of systems") the expense platform (Hesine) holds the month's bills and
payments, and the ERP books one accounting voucher per payment, carrying the payment's code (and
flowId); the voucher number is written back to the paid document (``voucherNo``). This module
derives those vouchers and write-backs from a generated month, with the chain's own findings
injected, and their truth rows.

Nothing here draws from the month's generator: the vouchers come from a ``random.Random`` of their
own seeded by the month's seed, so the two-system month and its truth are exactly what they were.
The truth of a chain (``chain_truth``) is the month's truth with the chain's rows added, and
``MISSING_IN_OA`` read as ``EXPENSE_WITHOUT_OA`` when the documents live in an expense platform.

The chain's findings (keys as DESIGN's exception table: ``doc_no``):

- ``VOUCHER_MISSING``: a payment dated in the period, of bills whose claims were approved in OA,
  with no voucher in the ERP (key: the payment's code);
- ``VOUCHER_AMOUNT_MISMATCH``: the voucher of a payment books another amount (key: voucher no.);
- ``VOUCHER_NOT_IN_ERP``: the payment's written-back ``voucherNo`` names no voucher in the ERP,
  although a voucher carrying its code exists (key: the payment's code);
- ``VOUCHER_PERIOD``: the voucher is booked into a closed period (the month before the
  payment's) (key: voucher no.).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import pandas as pd

from oafin.sandbox.dataset import Dataset, truth_frame
from oafin.sandbox.model import Payment

SHANGHAI: Final = ZoneInfo("Asia/Shanghai")
CHAIN_FINDINGS: Final = ("VOUCHER_MISSING", "VOUCHER_AMOUNT_MISMATCH", "VOUCHER_NOT_IN_ERP", "VOUCHER_PERIOD")
# Types only a chain with an expense platform raises (the month's own truth never holds them).
CHAIN_ONLY_TYPES: Final = ("EXPENSE_WITHOUT_OA", *CHAIN_FINDINGS)
PER_TYPE_SHARE: Final = 0.015  # of the period's payments, per finding (at least 2)
_SALT: Final = 0x48455349  # "HESI": the chain's random stream is not the month's


@dataclass
class Voucher:
    """One accounting voucher (凭证) booking one payment: a debit line and a credit line."""

    voucher_id: int
    number: str  # FBILLNO; what is written back as voucherNo
    group_no: int  # FVOUCHERGROUPNO, numbered per period
    when: datetime  # FDate (China time)
    period: str  # FYEAR-FPERIOD, the accounting period it is booked into
    amount_fen: int  # debit total = credit total
    payment: Payment
    expense_account: str = "6602.01"  # 管理费用-报销
    bank_account: str = "1002.01"  # 银行存款


@dataclass
class Chain:
    vouchers: list[Voucher]
    voucher_nos: dict[int, str]  # payment doc_id -> the voucherNo written back to it
    findings: list[tuple[str, str]] = field(default_factory=list)  # (type, doc_no)


def period_of(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m")


def _previous(period: str) -> str:
    year, month = (int(p) for p in period.split("-"))
    return f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"


def _eligible(pay: Payment, period: str) -> bool:
    """A payment in the period, of bills whose claims were clean and approved in OA."""
    return (
        period_of(pay.when) == period
        and bool(pay.bills)
        and all(b.claim is not None and b.claim.kind == "clean" and b.claim.approved for b in pay.bills)
    )


def build_chain(dataset: Dataset) -> Chain:
    rng = random.Random(dataset.seed ^ _SALT)
    payments = sorted(dataset.payments, key=lambda p: (p.when, p.doc_id))
    eligible = [p for p in payments if _eligible(p, dataset.period)]
    per_type = max(
        2, round(len([p for p in payments if period_of(p.when) == dataset.period]) * PER_TYPE_SHARE)
    )
    chosen = rng.sample(eligible, min(len(eligible), per_type * len(CHAIN_FINDINGS)))
    kinds = {p.doc_id: CHAIN_FINDINGS[i // per_type] for i, p in enumerate(chosen)}

    vouchers: list[Voucher] = []
    voucher_nos: dict[int, str] = {}
    findings: list[tuple[str, str]] = []
    seq: dict[str, int] = {}
    for pay in payments:
        kind = kinds.get(pay.doc_id)
        if kind == "VOUCHER_MISSING":
            findings.append((kind, pay.doc_no))
            continue
        when, period = pay.when, period_of(pay.when)
        if kind == "VOUCHER_PERIOD":
            period = _previous(period)  # booked back into last month, already closed
            first = when.astimezone(SHANGHAI).replace(day=1, hour=18, minute=0, second=0, microsecond=0)
            when = first - timedelta(days=1)
        seq[period] = seq.get(period, 0) + 1
        number = f"JZ{period.replace('-', '')}-{seq[period]:04d}"
        amount = pay.amount_fen
        if kind == "VOUCHER_AMOUNT_MISMATCH":
            delta = rng.randint(100, max(100, amount // 10))
            amount = amount - delta if amount - delta >= 100 and rng.random() < 0.5 else amount + delta
        voucher = Voucher(len(vouchers) + 300_001, number, seq[period], when, period, amount, pay)
        vouchers.append(voucher)
        voucher_nos[pay.doc_id] = number
        if kind == "VOUCHER_NOT_IN_ERP":
            voucher_nos[pay.doc_id] = f"JZ{period.replace('-', '')}-{9000 + seq[period]:04d}"  # mistyped
            findings.append((kind, pay.doc_no))
        elif kind in ("VOUCHER_AMOUNT_MISMATCH", "VOUCHER_PERIOD"):
            findings.append((kind, number))
    return Chain(vouchers, voucher_nos, findings)


def chain_of(dataset: Dataset) -> Chain:
    """The month's chain, built once per dataset (twins and tests share it)."""
    return dataset.rendered("chain", build_chain)


def truth_for_roles(dataset: Dataset, roles: list[str]) -> pd.DataFrame:
    """The truth a run of a chain of these roles (OA first) must find: the month's own for OA → ERP;
    with an expense platform, ``chain_truth`` (vouchers when an ERP follows it)."""
    if "expense" not in roles:
        return dataset.truth
    at = roles.index("expense")
    return chain_truth(dataset, expense_platform=True, erp_vouchers="erp" in roles[at + 1 :])


def chain_truth(
    dataset: Dataset, *, expense_platform: bool = True, erp_vouchers: bool = True
) -> pd.DataFrame:
    """The truth of a chain run: the month's rows, ``MISSING_IN_OA`` read as ``EXPENSE_WITHOUT_OA``
    where the documents live in an expense platform, plus the voucher findings."""
    rows = [{str(k): str(v) for k, v in r.items()} for r in dataset.truth.to_dict("records")]
    if expense_platform:
        for row in rows:
            if row["exception_type"] == "MISSING_IN_OA":
                row["exception_type"] = "EXPENSE_WITHOUT_OA"
    if erp_vouchers:
        rows += [{"exception_type": kind, "doc_no": no} for kind, no in chain_of(dataset).findings]
    return truth_frame(rows)
