"""Masking for anything a report, artifact or log shows: personal numbers keep only their last 4.

What is masked inside free text (chinese-finance-fields.md; PIPL art. 28):
- bank card numbers: 15–19 digits, also written in groups (``6222 0202 0011 2233 445``);
- resident ID numbers: 18 characters ending in a digit or ``X``, and the old 15-digit form;
- mobile phone numbers: ``1[3-9]`` + 9 digits, with or without ``+86``/``86`` and group separators.

What is left alone: invoice numbers (8 or 20 digits) and invoice codes (10 or 12 digits), dates,
amounts, business numbers with letters (``BX2026…``, ``FKD…``). A number glued to letters on
either side is part of an identifier and is not masked; Chinese text beside a number does not
protect it (``收款账号6222…`` is masked).

Cells a spreadsheet would run as a formula are neutralised by ``safe_cell``.
"""

from __future__ import annotations

import re

MASK = "*"
_NOT_ID = r"(?<![0-9A-Za-z])"
_END = r"(?![0-9A-Za-z])"
# Cards and IDs: 15-19 digits or 17 digits + X; grouped as cards print (4-4-4-4[-1..3]) or as
# IDs do (6-8-4). Other groupings stay: "1440319001-12345678" is an invoice code and number.
_LONG = re.compile(
    _NOT_ID
    + r"(?:\d{17}[Xx]|\d{15,19}|\d{4}(?:[ -]\d{4}){3}(?:[ -]?\d{1,3})?|\d{6}[ -]\d{8}[ -]\d{3}[\dXx])"
    + _END
)
_PHONE = re.compile(r"(?<![0-9A-Za-z+])(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}" + _END)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _keep_last4(match: re.Match[str]) -> str:
    chars = [c for c in match.group(0) if c.isdigit() or c in "Xx"]
    return MASK * (len(chars) - 4) + "".join(chars[-4:])


def _phone(match: re.Match[str]) -> str:
    digits = [c for c in match.group(0) if c.isdigit()]
    return MASK * 7 + "".join(digits[-4:])


def redact_text(text: str | None) -> str | None:
    """Mask bank card, resident ID and phone numbers inside free text (last 4 kept)."""
    if not text:
        return text
    return _PHONE.sub(_phone, _LONG.sub(_keep_last4, text))


def formula_safe(text: str | None) -> str | None:
    """Text a spreadsheet will never run as a formula (``=HYPERLINK(...)`` gets a leading quote)."""
    if text and text.startswith(_FORMULA_START):
        return "'" + text
    return text


def safe_cell(text: str | None) -> str | None:
    """Text for a spreadsheet or CSV cell: masked, and never read as a formula (``=HYPERLINK(...)``)."""
    return formula_safe(redact_text(text))
