"""Masking for anything a report or log shows: ID numbers and bank cards keep their last 4.

Invoice numbers (8 or 20 digits) and invoice codes (10 or 12 digits) are left alone; runs of
15–19 digits (bank cards, resident ID numbers with or without the X check) are masked.
Cells that a spreadsheet would run as a formula are neutralised.
"""

from __future__ import annotations

import re

_SENSITIVE = re.compile(r"(?<![0-9A-Za-z])(\d{11,18}[\dXx]|\d{15,19})(?![0-9A-Za-z])")
_PHONE = re.compile(r"(?<!\d)(1[3-9]\d{9})(?!\d)")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _mask(match: re.Match[str]) -> str:
    value = match.group(0)
    if len(value) in (8, 10, 12, 20):
        return value
    return "*" * (len(value) - 4) + value[-4:]


def redact_text(text: str | None) -> str | None:
    """Mask bank card, resident ID and phone numbers inside free text."""
    if not text:
        return text
    text = _SENSITIVE.sub(_mask, text)
    return _PHONE.sub(lambda m: "*" * 7 + m.group(0)[-4:], text)


def safe_cell(text: str | None) -> str | None:
    """Text for a spreadsheet or CSV cell: masked, and never read as a formula (``=HYPERLINK(...)``)."""
    text = redact_text(text)
    if text and text.startswith(_FORMULA_START):
        return "'" + text
    return text
