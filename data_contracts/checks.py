"""Checks for Chinese finance fields: pure functions, one rule each.

Every rule is from ``reference/chinese-finance-fields.md`` unless a comment says
otherwise. The functions take already NFKC-normalised, stripped text (the
mapping step does that) and answer ``True`` when the value passes; ``None`` or
an empty string never passes. They are the single definition of each rule: the
pandera models (``models.py``) and the invoice checks (``invoices.py``) call them.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Final

# --- Unified social credit code (统一社会信用代码, GB 32100-2015) -------------------

# chinese-finance-fields.md: 31 characters, no I, O, Z, S, V; values 0..30 in this order.
USCC_ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
# Weights for positions 1-17: 3^(i-1) mod 31.
USCC_WEIGHTS: Final = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
USCC_PATTERN: Final = r"[0-9A-HJ-NP-RTUW-Y]{18}"
_USCC_RE: Final = re.compile(USCC_PATTERN)
_USCC_VALUE: Final = {ch: i for i, ch in enumerate(USCC_ALPHABET)}


def uscc_format_ok(code: str | None) -> bool:
    """Unified social credit code format: 18 characters over ``USCC_ALPHABET``.

    Upper case only. Positions 1-8 are not required to be digits: authority
    codes such as ``Y`` exist (python-stdnum gets this wrong).
    """
    return code is not None and _USCC_RE.fullmatch(code) is not None


def uscc_check_char(first17: str) -> str:
    """The check character for the first 17 characters of a USCC.

    ``(31 - sum(value * weight) mod 31) mod 31``, written with the same alphabet.
    Raises ``ValueError`` for input that is not 17 alphabet characters.
    """
    if len(first17) != 17 or any(ch not in _USCC_VALUE for ch in first17):
        raise ValueError(f"not 17 USCC characters: {first17!r}")
    total = sum(_USCC_VALUE[ch] * w for ch, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def uscc_checksum_ok(code: str | None) -> bool:
    """Unified social credit code check character (GB 32100-2015), format included.

    The standard's own example ``91350100M000100Y4Z`` fails: its check should be ``3``.
    Real codes that fail the checksum are reported by practitioners, so callers
    treat a failure as a warning and keep an allow-list (see ``invoices.py``).
    """
    return uscc_format_ok(code) and uscc_check_char(code[:17]) == code[17]  # type: ignore[index]


# --- Resident ID number (公民身份号码, GB 11643-1999) -----------------------------

RESIDENT_ID_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RESIDENT_ID_CHECK: Final = "10X98765432"  # indexed by sum mod 11 (ISO 7064 MOD 11-2)
_ID18_RE: Final = re.compile(r"[0-9]{17}[0-9X]")
_ID15_RE: Final = re.compile(r"[0-9]{15}")


def resident_id_check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character for the first 17 digits of a resident ID."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError(f"not 17 digits: {first17!r}")
    total = sum(int(d) * w for d, w in zip(first17, RESIDENT_ID_WEIGHTS, strict=True))
    return _RESIDENT_ID_CHECK[total % 11]


def resident_id_ok(number: str | None, *, allow_legacy: bool = True) -> bool:
    """Resident ID number: 18 characters, real birth date, MOD 11-2 check character.

    A lower-case ``x`` check character is accepted (HR exports contain it).
    Legacy 15-digit numbers (YYMMDD, no check digit) still appear in old HR data;
    with ``allow_legacy`` they are accepted on format alone.
    """
    if number is None:
        return False
    if len(number) == 15:
        return allow_legacy and _ID15_RE.fullmatch(number) is not None
    number = number[:17] + number[17:].upper()
    if _ID18_RE.fullmatch(number) is None:
        return False
    birth = number[6:14]
    try:
        dt.date(int(birth[:4]), int(birth[4:6]), int(birth[6:]))
    except ValueError:
        return False
    return resident_id_check_char(number[:17]) == number[17]


# --- Bank cards -------------------------------------------------------------------


def luhn_check_digit(payload: str) -> str:
    """The Luhn (mod 10) digit that, appended to ``payload``, makes it valid."""
    if not payload.isascii() or not payload.isdigit():
        raise ValueError(f"not digits: {payload!r}")
    total = 0
    # Counting from the right of the full number the check digit is position 1,
    # so the payload's rightmost digit is doubled.
    for i, ch in enumerate(reversed(payload)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def luhn_ok(number: str | None) -> bool:
    """Luhn (mod 10) check of a personal bank card number: ASCII digits only, 2 or more.

    Not every card satisfies Luhn: callers warn, never reject. Never apply it to
    corporate account numbers (对公账号): no public check algorithm exists for them.
    """
    if number is None or len(number) < 2 or not number.isascii() or not number.isdigit():
        return False
    return luhn_check_digit(number[:-1]) == number[-1]


# --- VAT invoices -------------------------------------------------------------------

INVOICE_CODE_PATTERN: Final = r"[0-9]{10}|[0-9]{12}"
INVOICE_NO_PATTERN: Final = r"[0-9]{8}"
DIGITAL_INVOICE_NO_PATTERN: Final = r"[0-9]{20}"
_INVOICE_CODE_RE: Final = re.compile(INVOICE_CODE_PATTERN)
_INVOICE_NO_RE: Final = re.compile(INVOICE_NO_PATTERN)
_DIGITAL_NO_RE: Final = re.compile(DIGITAL_INVOICE_NO_PATTERN)


def invoice_format_ok(code: str | None, number: str | None, issue_date: dt.date | None = None) -> bool:
    """Invoice code/number format.

    A traditional invoice has a 10- or 12-digit code and an 8-digit number; a
    fully digital invoice (数电票) has no code and a 20-digit number whose first two
    digits are the issue year mod 100 (checked when ``issue_date`` is given).
    """
    if number is None:
        return False
    if not code:
        if _DIGITAL_NO_RE.fullmatch(number) is None:
            return False
        return issue_date is None or number[:2] == f"{issue_date.year % 100:02d}"
    return _INVOICE_CODE_RE.fullmatch(code) is not None and _INVOICE_NO_RE.fullmatch(number) is not None


def invoice_key(code: str | None, number: str | None) -> str | None:
    """How exceptions name an invoice (DESIGN.md): ``<code>-<number>`` for a traditional
    invoice, the bare number of a fully digital one (no code); ``None`` without a number."""
    if not number:
        return None
    return f"{code}-{number}" if code else number


def _d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


# VAT rate (basis points) -> the inclusive date ranges in which an invoice may carry it;
# ``None`` is an open end. chinese-finance-fields.md, "VAT rates"; the 13 % gap is
# from 财税〔2017〕37号, which abolished 13 % from 2017-07-01 (it came back on 2019-04-01).
# The rules are the tax law's, not every edge case of it: an invoice re-issued (补开)
# after a rate change legally carries the old rate, so callers report, never reject.
VAT_RATE_PERIODS: Final[dict[int, tuple[tuple[dt.date | None, dt.date | None], ...]]] = {
    1300: ((None, _d("2017-06-30")), (_d("2019-04-01"), None)),
    900: ((_d("2019-04-01"), None),),
    600: ((None, None),),
    0: ((None, None),),  # zero-rated exports; exempt invoices also carry no tax
    500: ((None, None),),  # simplified levy on some items
    300: ((None, None),),  # simplified levy
    100: ((None, _d("2027-12-31")),),  # reduced levy for small-scale taxpayers
    1600: ((_d("2018-05-01"), _d("2019-03-31")),),
    1000: ((_d("2018-05-01"), _d("2019-03-31")),),
    1700: ((None, _d("2018-04-30")),),
    1100: ((None, _d("2018-04-30")),),
}


def vat_rate_legal(
    rate_bp: int | None,
    issue_date: dt.date | None,
    periods: dict[int, tuple[tuple[dt.date | None, dt.date | None], ...]] = VAT_RATE_PERIODS,
) -> bool:
    """VAT rate in the legal set on the invoice's issue date.

    ``rate_bp`` is in basis points (``600`` is 6 %). 13/9/6/0 % today; 3 % and 5 %
    simplified levy; 1 % until 2027-12-31; 16/10 % from 2018-05-01 to 2019-03-31;
    17/11 % before 2018-05-01; 13 % also before 2017-07-01. Pass ``periods`` to
    apply a different table.
    """
    if rate_bp is None or issue_date is None:
        return False
    for start, end in periods.get(rate_bp, ()):
        if (start is None or start <= issue_date) and (end is None or issue_date <= end):
            return True
    return False


# No authoritative tolerance exists (chinese-finance-fields.md). An invoice's tax is
# the sum of its lines' rounded taxes, so it may drift from ``ex_tax * rate`` by
# about half a fen per line; 1 fen per invoice matches DESIGN's amount tolerance and
# catches every hand-edited tax. Raise it for invoices with many lines.
DEFAULT_TAX_TOLERANCE_FEN: Final = 1


def total_matches(ex_tax_fen: int, tax_fen: int, total_fen: int) -> bool:
    """Invoice arithmetic: ``total == amount_ex_tax + tax`` exactly, in fen."""
    return total_fen == ex_tax_fen + tax_fen


def tax_matches_rate(
    ex_tax_fen: int, rate_bp: int, tax_fen: int, tolerance_fen: int = DEFAULT_TAX_TOLERANCE_FEN
) -> bool:
    """Invoice arithmetic: ``amount_ex_tax * rate`` equals ``tax`` within ``tolerance_fen``.

    Exact integer arithmetic: ``|ex_tax * rate_bp - tax * 10000| <= tolerance * 10000``.
    """
    return abs(ex_tax_fen * rate_bp - tax_fen * 10_000) <= tolerance_fen * 10_000


# --- Periods ---------------------------------------------------------------------------

PERIOD_PATTERN: Final = r"[12][0-9]{3}-(?:0[1-9]|1[0-2])"
_PERIOD_RE: Final = re.compile(PERIOD_PATTERN)
_PERIOD13_RE: Final = re.compile(r"[12][0-9]{3}-(?:0[1-9]|1[0-3])")


def period_ok(period: str | None, *, allow_adjustment: bool = False) -> bool:
    """A period is a calendar month written ``YYYY-MM`` (``2026-10``), Asia/Shanghai.

    Some ERPs add an adjustment period 13 (``2026-13``): accepted only with
    ``allow_adjustment``; the data standard's periods are months.
    """
    if period is None:
        return False
    pattern = _PERIOD13_RE if allow_adjustment else _PERIOD_RE
    return pattern.fullmatch(period) is not None
