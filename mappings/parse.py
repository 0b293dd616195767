"""Parsers from source values to standard values: pure, exact, strict.

Every parser takes what a source API sent (text, or a number a JSON decoder produced) and
returns the standard's type (``oafin.standard`` column kinds). What it cannot read exactly it
refuses with ``ParseError``; ``mappings.apply`` turns that into a ``CONTRACT_VIOLATION`` issue.
Nothing here guesses: ``1,5`` is not 15 yuan, ``0.06`` is not a tax rate.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from oafin.standard import BUSINESS_TZ

ParseKind = Literal[
    "text",
    "id",
    "money",
    "money_object",
    "datetime",
    "epoch_ms",
    "epoch_s",
    "epoch_s_date",
    "date",
    "percent_bp",
    "int",
]
# Parsers that read a JSON object, not one value (Hesine's money object, source-systems.md §6.3).
OBJECT_PARSERS: Final = frozenset({"money_object"})
PARSE_KINDS: Final[tuple[str, ...]] = ParseKind.__args__  # type: ignore[attr-defined]

# The standard column kind (oafin.standard) each parser yields.
PARSE_OUTPUT: Final[dict[str, str]] = {
    "text": "text",
    "id": "text",
    "money": "fen",
    "money_object": "fen",
    "datetime": "ts",
    "epoch_ms": "ts",
    "epoch_s": "ts",
    "epoch_s_date": "date",
    "date": "date",
    "percent_bp": "int",
    "int": "int",
}

ISO: Final = "iso"  # a `format` meaning datetime.fromisoformat / date.fromisoformat
_CENT: Final = Decimal("0.01")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_WHITESPACE: Final = re.compile(r"\s+")
# After NFKC, "￥" is "¥" and "，" is ",". A yuan sign may lead, before or after a minus sign.
# Thousands separators must group by three, so a decimal comma ("1,5") is refused, not read as 15.
_YUAN_SIGN: Final = re.compile(r"^([+-]?)¥")
_MONEY: Final = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|[+-]?\.\d+")
_NUMBER: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_INTEGER: Final = re.compile(r"[+-]?\d+")
# strptime is slow; for these formats a value of exactly this shape reads the same with fromisoformat.
_ISO_SHAPED: Final = {
    "%Y-%m-%d %H:%M:%S": re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"),
    "%Y-%m-%d": re.compile(r"\d{4}-\d\d-\d\d"),
}


class ParseError(ValueError):
    """A source value that cannot be read as the kind the mapping says it is."""


def normalize_text(value: object) -> str:
    """NFKC-normalise and strip: full-width digits and brackets become ASCII, stray spaces go.

    DESIGN.md, "Rules that hold everywhere". ASCII text is already NFKC, so it skips the table.
    """
    text = value if isinstance(value, str) else str(value)
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return text.strip()


def parse_text(value: object) -> str:
    return normalize_text(value)


def parse_id(value: object) -> str:
    """An identifier or bill number: normalised text with every space removed.

    Finance users type OA numbers by hand (default-forms.md: ``F_OAFIN_OANo`` "hand-typed with
    spaces"); an id never contains a space, so ``" BX2026 1001 "`` is ``"BX20261001"``.
    """
    return _WHITESPACE.sub("", normalize_text(value))


def _decimal_of(value: object, pattern: re.Pattern[str]) -> Decimal:
    if isinstance(value, bool):
        raise ParseError(f"{value!r} is a boolean, not a number")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        # A JSON decoder gave a float: its shortest repr is exactly the text the source sent.
        number = Decimal(repr(value))
    elif isinstance(value, str):
        text = _WHITESPACE.sub("", normalize_text(value))
        if pattern is _MONEY:
            text = _YUAN_SIGN.sub(r"\1", text)
        if not pattern.fullmatch(text):
            raise ParseError(f"{value!r} is not a number")
        number = Decimal(text.replace(",", ""))
    else:
        raise ParseError(f"{value!r} ({type(value).__name__}) is not a number")
    if not number.is_finite():
        raise ParseError(f"{value!r} is not a finite number")
    return number


def parse_money(value: object) -> int:
    """Yuan as text (``1234.5``, ``1,234.50``, ``¥1,234.50``, ``１２３４．５０``) or number → int fen.

    Decimal, rounded half-up to 0.01 (chinese-finance-fields.md, "Money"); never a float.
    """
    number = _decimal_of(value, _MONEY)
    try:
        return int(number.quantize(_CENT, rounding=ROUND_HALF_UP) * 100)
    except InvalidOperation:
        raise ParseError(f"{value!r} is too large an amount") from None


def parse_money_object(value: object) -> int:
    """Hesine's amount object ``{"standard": "33.00", "standardScale": 2, ...}`` → int fen.

    ``standard`` is yuan as text; ``standardScale`` the decimals it is written with, a number or
    text (source-systems.md §6.3: both appear). A ``standard`` with more decimals than its scale is
    refused rather than rounded; a missing scale reads ``standard`` as plain money.
    """
    if not isinstance(value, dict):
        raise ParseError(f"{value!r} is not an amount object (no standard)")
    if "standard" not in value or value["standard"] in (None, ""):
        raise ParseError(f"{value!r} has no standard amount")
    number = _decimal_of(value["standard"], _MONEY)
    scale = value.get("standardScale")
    if scale not in (None, ""):
        places = parse_int(scale)
        exponent = number.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > places:
            raise ParseError(f"{value['standard']!r} has more decimals than its scale {scale!r}")
    unit = value.get("standardStrCode")
    if unit not in (None, "", "CNY"):
        raise ParseError(f"amount in {unit!r}, not CNY")
    return parse_money(number)


def parse_percent_bp(value: object) -> int:
    """A rate written with a percent sign (``6%``, ``6.5%``, ``１３％``) → basis points (600, 650, 1300).

    The sign is required: a bare ``0.06`` or ``6`` is ambiguous and is refused, not guessed.
    """
    text = normalize_text(value)
    if not text.endswith("%"):
        raise ParseError(f"{value!r} is not a percentage (no % sign)")
    number = _decimal_of(text[:-1], _NUMBER) * 100
    if number != number.to_integral_value():
        raise ParseError(f"{value!r} is not a whole number of basis points")
    return int(number)


def parse_int(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = _decimal_of(value, _INTEGER)
    if number != number.to_integral_value():
        raise ParseError(f"{value!r} is not a whole number")
    return int(number)


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ParseError(f"unknown time zone {name!r}") from None


def parse_datetime(value: object, format: str = ISO, tz: str = BUSINESS_TZ) -> datetime:
    """A local time string → aware UTC. ``format`` is a strptime pattern or ``"iso"``.

    A value without a zone is read in ``tz``: DingTalk's old API sends Beijing time
    ``yyyy-MM-dd HH:mm:ss`` (source-systems.md §1.3), Kingdee local ISO without zone (§7.3).
    A value that carries its own zone (``2022-08-31T11:52Z``, DingTalk v1.0) keeps it.
    """
    if isinstance(value, datetime):
        moment = value
    else:
        text = normalize_text(value)
        try:
            if format == ISO or ((shape := _ISO_SHAPED.get(format)) and shape.fullmatch(text)):
                moment = datetime.fromisoformat(text)
            else:
                moment = datetime.strptime(text, format)
        except ValueError:
            raise ParseError(f"{value!r} is not a date-time in format {format!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone(tz))
    return moment.astimezone(UTC)


def parse_epoch_ms(value: object) -> datetime:
    """Milliseconds since the epoch (DingTalk callbacks, v1.0 filters) → aware UTC, exactly."""
    return _EPOCH + timedelta(milliseconds=parse_int(value))


def parse_epoch_s(value: object) -> datetime:
    """Seconds since the epoch, as a number or a string of digits (WeCom ``apply_time``, ``sptime``,
    a Date control's ``s_timestamp``: source-systems.md §2.3, real-clients.md §2.1) → aware UTC."""
    return _EPOCH + timedelta(seconds=parse_int(value))


def parse_epoch_s_date(value: object, tz: str = BUSINESS_TZ) -> date:
    """The business date (in ``tz``) of an epoch-seconds value: a WeCom Date control of type
    ``day`` holds the local midnight of the day as ``s_timestamp``."""
    return parse_epoch_s(value).astimezone(zone(tz)).date()


def parse_date(value: object, format: str = "%Y-%m-%d", tz: str = BUSINESS_TZ) -> date:
    """A business date. An aware date-time is first moved into ``tz`` (Asia/Shanghai)."""
    if isinstance(value, datetime):
        return (value.astimezone(zone(tz)) if value.tzinfo else value).date()
    if isinstance(value, date):
        return value
    text = normalize_text(value)
    try:
        if format == ISO or ((shape := _ISO_SHAPED.get(format)) and shape.fullmatch(text)):
            return date.fromisoformat(text)
        return datetime.strptime(text, format).date()
    except ValueError:
        raise ParseError(f"{value!r} is not a date in format {format!r}") from None


def period_of(moment: datetime, tz: str = BUSINESS_TZ) -> str:
    """The business period (``2026-10``) of an aware time, in Asia/Shanghai (DESIGN, "Scope")."""
    return moment.astimezone(zone(tz)).strftime("%Y-%m")


def parser(kind: str, format: str | None = None, tz: str = BUSINESS_TZ) -> Callable[[Any], Any]:
    """The one-argument parser for a mapping's ``parse``/``format``/``tz``."""
    if kind == "datetime":
        fmt = format or ISO
        return lambda value: parse_datetime(value, fmt, tz)
    if kind == "date":
        fmt = format or "%Y-%m-%d"
        return lambda value: parse_date(value, fmt, tz)
    if kind == "epoch_s_date":
        return lambda value: parse_epoch_s_date(value, tz)
    simple: dict[str, Callable[[Any], Any]] = {
        "text": parse_text,
        "id": parse_id,
        "money": parse_money,
        "money_object": parse_money_object,
        "epoch_ms": parse_epoch_ms,
        "epoch_s": parse_epoch_s,
        "percent_bp": parse_percent_bp,
        "int": parse_int,
    }
    if kind not in simple:
        raise ValueError(f"unknown parse kind {kind!r}; expected one of {', '.join(PARSE_KINDS)}")
    return simple[kind]
