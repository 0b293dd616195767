"""Masking of personal data for reports and logs.

chinese-finance-fields.md: resident IDs show at most the first 6 and last 4
characters; bank cards (sensitive personal information, PIPL Art. 28) and
phone numbers show the last 4 digits. Short or odd values never show more than
half their characters, so a truncated value cannot leak whole.
"""

from __future__ import annotations

import re
import unicodedata

MASK_CHAR = "*"
_SEPARATORS = re.compile(r"[\s\-]+")


def _clean(value: str) -> str:
    # NFKC folds full-width digits; grouping spaces and hyphens carry no information.
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", value))


def _mask(text: str, head: int, tail: int) -> str:
    """Keep ``head`` leading and ``tail`` trailing characters, hide the rest.

    At least ``min(8, ceil(n/2))`` characters stay hidden: an 18-character ID shows
    6 + 4, anything shorter shows less, the tail shrinking last.
    """
    n = len(text)
    visible = max(n - 8, n // 2)
    tail = min(tail, visible)
    head = min(head, visible - tail)
    return text[:head] + MASK_CHAR * (n - head - tail) + text[n - tail :]


def mask_id_number(value: str | None) -> str | None:
    """A resident ID (or any personal id number): first 6 and last 4 at most.

    ``11010519491231002X`` becomes ``110105********002X``.
    """
    return None if value is None else _mask(_clean(value), 6, 4)


def mask_bank_card(value: str | None) -> str | None:
    """A bank card or account number: last 4 digits only (grouping spaces dropped)."""
    return None if value is None else _mask(_clean(value), 0, 4)


def mask_phone(value: str | None) -> str | None:
    """A phone number: last 4 digits only (``138 0013 8000`` -> ``*******8000``)."""
    return None if value is None else _mask(_clean(value), 0, 4)
