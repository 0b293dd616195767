"""Valid (and deliberately invalid) Chinese finance field values for the generated data.

The algorithms are those of reference/chinese-finance-fields.md; the generator uses
them to write values a correct validator accepts, and mutates them to write values it
must reject.
"""

from __future__ import annotations

import random
from datetime import date
from typing import Final

# Unified social credit code (GB 32100-2015), chinese-finance-fields.md
USCC_ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS: Final = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
REGION_CODES: Final = (
    "110105",
    "110108",
    "310115",
    "310104",
    "440300",
    "440106",
    "330106",
    "320102",
    "510107",
)
# 2-digit tax-area codes seen in fully digital invoice numbers
TAX_AREAS: Final = ("11", "12", "31", "32", "33", "35", "37", "42", "44", "51")
# 12-digit code: 0 + 4-digit province + 2-digit year + 3-digit batch + 2-digit type
PROVINCES: Final = ("1100", "3100", "4403", "4400", "3300", "3200", "5100")
TYPE_SUFFIXES: Final = ("04", "05", "06", "07")

CN_DIGITS: Final = "零壹贰叁肆伍陆柒捌玖"
CN_UNITS: Final = ("", "拾", "佰", "仟")
CN_GROUPS: Final = ("", "万", "亿", "万")


def uscc_check(first17: str) -> str:
    """The 18th character of a unified social credit code."""
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def make_uscc(rng: random.Random) -> str:
    """A valid 18-character code of an enterprise (authority 9, type 1) in a real region."""
    org = "".join(rng.choice(USCC_ALPHABET) for _ in range(9))
    first17 = "91" + rng.choice(REGION_CODES) + org
    return first17 + uscc_check(first17)


def luhn_check_digit(body: str) -> str:
    """The digit that makes ``body + digit`` pass the Luhn (mod 10) check."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:  # doubled: these sit at odd positions once the check digit is appended
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def make_unionpay_card(rng: random.Random) -> str:
    """A 19-digit personal UnionPay card number (starts with 62) that passes Luhn."""
    body = "62" + "".join(str(rng.randrange(10)) for _ in range(16))
    return body + luhn_check_digit(body)


def make_traditional_invoice(rng: random.Random, issued: date) -> tuple[str, str]:
    """(code, number): a 10- or 12-digit 发票代码 and an 8-digit 发票号码."""
    year = f"{issued.year % 100:02d}"
    if rng.random() < 0.4:
        code = rng.choice(PROVINCES) + year + f"{rng.randrange(10000):04d}"  # 10 digits
    else:
        code = "0" + rng.choice(PROVINCES) + year + f"{rng.randrange(1000):03d}" + rng.choice(TYPE_SUFFIXES)
    return code, f"{rng.randrange(10**8):08d}"


def make_digital_invoice_no(rng: random.Random, issued: date) -> str:
    """A fully digital invoice number: 2-digit year + tax area + channel digit + 15-digit sequence."""
    return f"{issued.year % 100:02d}{rng.choice(TAX_AREAS)}{rng.randrange(10)}{rng.randrange(10**15):015d}"


def fen_text(fen: int) -> str:
    """``123450`` → ``"1234.50"`` (exact; no float)."""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def fen_thousands(fen: int) -> str:
    """``123450`` → ``"1,234.50"``."""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100:,}.{fen % 100:02d}"


def fen_yen_short(fen: int) -> str:
    """``123450`` → ``"¥1234.5"``; ``123400`` → ``"¥1234"``: a sign and no trailing zeros."""
    text = fen_text(fen).rstrip("0").rstrip(".")
    return "¥" + text


def full_width(text: str) -> str:
    """ASCII letters, digits and punctuation as their full-width forms (``1`` → ``１``)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def yuan_json_number(fen: int) -> int | float:
    """An amount in yuan as a JSON number, the way Kingdee sends ``FExpenseAmount``.

    Whole yuan stay ``int``. Otherwise ``fen / 100`` is the double nearest the exact
    decimal, and its ``repr`` (what ``json`` writes) is that decimal, e.g. ``1234.5``:
    the text on the wire is exact. Consumers must still parse it with ``Decimal``.
    """
    return fen // 100 if fen % 100 == 0 else fen / 100


def amount_in_words(fen: int) -> str:
    """大写金额: ``1640902`` → ``壹万陆仟肆佰零玖元零贰分`` (rules in chinese-finance-fields.md, "Money").

    Writes 整 after 元 and after 角, never after 分; one 零 for a run of zeros inside
    the number; 零 after 元 when 角 is 0 and 分 is not.
    """
    if fen < 0:
        raise ValueError("amount in words needs a non-negative amount")
    yuan, jiao, cents = fen // 100, fen // 10 % 10, fen % 10
    out = _integer_words(yuan) + "元" if yuan else ""
    if jiao == 0 and cents == 0:
        return (out or "零元") + "整"
    if jiao == 0:
        return out + ("零" if out else "") + CN_DIGITS[cents] + "分"
    out += CN_DIGITS[jiao] + "角"
    return out + ("整" if cents == 0 else CN_DIGITS[cents] + "分")


def _integer_words(n: int) -> str:
    digits = str(n)
    out, pending_zero = "", False
    for i, ch in enumerate(digits):
        pos = len(digits) - 1 - i
        if ch == "0":
            pending_zero = True
        else:
            if pending_zero and out:
                out += "零"
            pending_zero = False
            out += CN_DIGITS[int(ch)] + CN_UNITS[pos % 4]
        if pos % 4 == 0 and pos > 0 and int(digits[max(0, i - 3) : i + 1]):
            out += CN_GROUPS[pos // 4]
    return out
