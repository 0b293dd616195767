"""Invoice rules, vectorised over a ``claim_invoice`` frame.

Each rule is the column-wise form of a function in ``checks.py`` (the same
patterns and tables; ``tests/test_contracts_validate.py`` holds them equal) and
answers, per row, whether the invoice passes. A rule whose inputs are missing
passes and leaves the report to the rule about the missing input, so one fault
gives one reason. The ``ClaimInvoice`` model and ``check_invoices``
both apply these rules; invoices are reported (``INVALID_INVOICE``), never
quarantined (DESIGN.md, "Data contracts").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd

from data_contracts import checks
from data_contracts.frames import DATE_DTYPE, TEXT_DTYPE

VatPeriods = dict[int, tuple[tuple[dt.date | None, dt.date | None], ...]]


@dataclass(frozen=True)
class InvoiceOptions:
    """What a deployment may tune (chinese-finance-fields.md: make uncertain rules configurable)."""

    tax_tolerance_fen: int = checks.DEFAULT_TAX_TOLERANCE_FEN
    # Sellers whose credit code fails the checksum but is known to be real.
    uscc_allow: frozenset[str] = field(default_factory=frozenset)
    vat_periods: VatPeriods = field(default_factory=lambda: checks.VAT_RATE_PERIODS)


DEFAULT_OPTIONS: Final = InvoiceOptions()


@dataclass(frozen=True)
class InvoiceRule:
    name: str
    field: str  # the column a failure is reported against
    description: str
    passes: Callable[[pd.DataFrame, InvoiceOptions], pd.Series]


def _text(frame: pd.DataFrame, col: str) -> pd.Series:
    return frame[col].astype(TEXT_DTYPE)


def _int(frame: pd.DataFrame, col: str) -> pd.Series:
    return frame[col].astype("Int64")


def _date(frame: pd.DataFrame, col: str) -> pd.Series:
    series = frame[col]
    return series if series.dtype == DATE_DTYPE else pd.to_datetime(series, errors="coerce")


def _fill(mask: pd.Series, value: bool) -> pd.Series:
    """A boolean Series with missing results read as ``value``."""
    return mask.astype("boolean").fillna(value).astype(bool)


def _is_digital(frame: pd.DataFrame) -> pd.Series:
    return _text(frame, "invoice_code").fillna("") == ""


def _format_ok(frame: pd.DataFrame, _: InvoiceOptions) -> pd.Series:
    code, number = _text(frame, "invoice_code"), _text(frame, "invoice_no")
    traditional = code.str.fullmatch(checks.INVOICE_CODE_PATTERN) & number.str.fullmatch(
        checks.INVOICE_NO_PATTERN
    )
    digital = _is_digital(frame) & number.str.fullmatch(checks.DIGITAL_INVOICE_NO_PATTERN)
    return _fill(traditional, False) | _fill(digital, False)


def _digital_year_ok(frame: pd.DataFrame, options: InvoiceOptions) -> pd.Series:
    number, issued = _text(frame, "invoice_no"), _date(frame, "issue_date")
    year = (issued.dt.year % 100).astype("Int64").astype(TEXT_DTYPE).str.zfill(2)
    checked = _is_digital(frame) & _format_ok(frame, options) & issued.notna()
    return ~checked | _fill(number.str[:2] == year, False)


def _issue_date_present(frame: pd.DataFrame, _: InvoiceOptions) -> pd.Series:
    return _date(frame, "issue_date").notna()


_AMOUNTS = ("amount_ex_tax_fen", "tax_fen", "total_fen")


def _amounts_present(frame: pd.DataFrame, _: InvoiceOptions) -> pd.Series:
    return frame[list(_AMOUNTS)].notna().all(axis=1)


def _amounts_positive(frame: pd.DataFrame, _: InvoiceOptions) -> pd.Series:
    ex, tax, total = (_int(frame, c) for c in _AMOUNTS)
    return _fill((ex > 0) & (tax >= 0) & (total > 0), True)


def _total_ok(frame: pd.DataFrame, _: InvoiceOptions) -> pd.Series:
    ex, tax, total = (_int(frame, c) for c in _AMOUNTS)
    return _fill(total == ex + tax, True)


def _tax_ok(frame: pd.DataFrame, options: InvoiceOptions) -> pd.Series:
    ex, tax, rate = _int(frame, "amount_ex_tax_fen"), _int(frame, "tax_fen"), _int(frame, "tax_rate_bp")
    # exact integers, as checks.tax_matches_rate
    return _fill((ex * rate - tax * 10_000).abs() <= options.tax_tolerance_fen * 10_000, True)


def _rate_legal(frame: pd.DataFrame, options: InvoiceOptions) -> pd.Series:
    rate, issued = _int(frame, "tax_rate_bp"), _date(frame, "issue_date")
    legal = np.zeros(len(frame), dtype=bool)
    for rate_bp, ranges in options.vat_periods.items():
        for start, end in ranges:
            hit = rate == rate_bp
            if start is not None:
                hit &= issued >= pd.Timestamp(start)
            if end is not None:
                hit &= issued <= pd.Timestamp(end)
            legal |= _fill(hit, False).to_numpy()
    return pd.Series(legal, index=frame.index) | issued.isna()  # no date: issue_date_required says so


def _seller_format_ok(frame: pd.DataFrame, _: InvoiceOptions) -> pd.Series:
    return _fill(_text(frame, "seller_tax_id").str.fullmatch(checks.USCC_PATTERN), False)


def _seller_checksum_ok(frame: pd.DataFrame, options: InvoiceOptions) -> pd.Series:
    seller = _text(frame, "seller_tax_id")
    checked = (_seller_format_ok(frame, options) & ~seller.isin(options.uscc_allow)).to_numpy()
    ok = np.ones(len(frame), dtype=bool)
    ok[checked] = [checks.uscc_checksum_ok(v) for v in seller.to_numpy()[checked]]
    return pd.Series(ok, index=frame.index)


INVOICE_RULES: Final[dict[str, InvoiceRule]] = {
    rule.name: rule
    for rule in (
        InvoiceRule(
            "invoice_format",
            "invoice_no",
            "a 10- or 12-digit code with an 8-digit number, or no code and a 20-digit number",
            _format_ok,
        ),
        InvoiceRule(
            "digital_invoice_year",
            "invoice_no",
            "a fully digital invoice number starts with the issue year mod 100",
            _digital_year_ok,
        ),
        InvoiceRule(
            "issue_date_required", "issue_date", "an invoice needs its issue date", _issue_date_present
        ),
        InvoiceRule(
            "amounts_required", "total_fen", "ex-tax amount, tax and total are required", _amounts_present
        ),
        InvoiceRule(
            "amounts_positive", "total_fen", "ex-tax amount and total > 0, tax >= 0", _amounts_positive
        ),
        InvoiceRule("total_matches", "total_fen", "total must equal ex-tax amount + tax exactly", _total_ok),
        InvoiceRule(
            "tax_matches_rate", "tax_fen", "tax must equal ex-tax amount x rate within the tolerance", _tax_ok
        ),
        InvoiceRule(
            "vat_rate_legal", "tax_rate_bp", "the VAT rate must be legal on the issue date", _rate_legal
        ),
        InvoiceRule(
            "seller_tax_id_format",
            "seller_tax_id",
            "the seller's tax id must be an 18-character unified social credit code",
            _seller_format_ok,
        ),
        InvoiceRule(
            "seller_tax_id_checksum",
            "seller_tax_id",
            "the seller's unified social credit code fails its check character",
            _seller_checksum_ok,
        ),
    )
}


def invoice_keys(frame: pd.DataFrame) -> pd.Series:
    """``checks.invoice_key`` over a frame: ``<code>-<number>``, or the number alone."""
    code, number = _text(frame, "invoice_code").fillna(""), _text(frame, "invoice_no")
    keys = number.where(number.fillna("") != "")
    coded = (code != "").to_numpy(dtype=bool) & keys.notna().to_numpy(dtype=bool)
    if coded.any():  # joined only where there is a code (most invoices have none)
        keys = keys.copy()
        keys.iloc[np.flatnonzero(coded)] = code[coded] + "-" + number[coded]
    return keys


def check_invoices(
    invoices: pd.DataFrame,
    *,
    tax_tolerance_fen: int = checks.DEFAULT_TAX_TOLERANCE_FEN,
    uscc_allow: Collection[str] = (),
) -> pd.DataFrame:
    """The invoices that fail a rule: one row each, with ``claim_id, invoice_key, reasons``.

    The report keeps the failing rows' index labels, so ``invoices.loc[report.index]``
    are the failing invoices themselves.

    ``invoices`` is a ``claim_invoice`` frame (``frames.to_frame``). ``reasons`` joins
    ``"<rule>: <what it demands> (<field>=<value>)"`` for every failed rule with ``"; "``.
    ``uscc_allow`` lists seller credit codes known to be real though they fail the
    checksum (chinese-finance-fields.md). Vectorised: 10k invoices take milliseconds.
    """
    options = InvoiceOptions(tax_tolerance_fen=tax_tolerance_fen, uscc_allow=frozenset(uscc_allow))
    frame = invoices.reset_index(drop=True)
    failed = {name: ~rule.passes(frame, options).to_numpy(dtype=bool) for name, rule in INVOICE_RULES.items()}
    rows = np.flatnonzero(np.logical_or.reduce(list(failed.values())))
    subset = frame.iloc[rows]
    parts: list[np.ndarray] = []
    for name, rule in INVOICE_RULES.items():
        hit = failed[name][rows]
        if hit.any():
            part = np.full(len(rows), "", dtype=object)
            values = subset[rule.field].to_numpy(dtype=object)[hit]
            part[hit] = [
                f"{name}: {rule.description} ({rule.field}={value_text(v) or 'missing'})" for v in values
            ]
            parts.append(part)
    reasons = ["; ".join(p for p in row if p) for row in zip(*parts, strict=True)] if parts else []
    return pd.DataFrame(
        {
            "claim_id": subset["claim_id"].to_numpy(dtype=object),
            "invoice_key": invoice_keys(subset).to_numpy(dtype=object),
            "reasons": np.array(reasons, dtype=object),
        },
        columns=["claim_id", "invoice_key", "reasons"],
        index=invoices.index[rows],
    ).astype("str")


def value_text(value: Any) -> str | None:
    """``str(value)`` for an issue, ``None`` for missing; dates without their midnight."""
    if value is None or (not isinstance(value, list | tuple | dict) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp) and value.tz is None and value == value.normalize():
        return value.date().isoformat()
    return str(value)
