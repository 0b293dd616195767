"""The one masking policy for personal numbers, wherever text leaves the source layer.

Policy (chinese-finance-fields.md: personal information shows at most the first 6 and last 4
characters; bank cards are sensitive personal information, PIPL art. 28, masked everywhere): every
personal number keeps **its last 4 characters only**; nothing else of it survives.

- ``redact_text``: bank cards, resident ids and mobile numbers inside free text (error bodies,
  reasons, details, log lines);
- ``mask_key``: a business key column (``invoice_no``...) is left as it is, unless the value IS a
  valid bank card (Luhn and a card BIN) or resident id (GB 11643 check character and a real birth
  date): then it is masked like one;
- ``mask_json``: every string (and long integer) inside a decoded payload, for what keeps a copy
  (quarantine); the raw landing alone keeps payloads whole, and reports never read it;
- ``mask_id_number``, ``mask_bank_card``, ``mask_phone``: one field whose kind is known;
- ``formula_safe``, ``safe_cell``: spreadsheet and CSV cells never run as formulas.

What is left alone in free text: invoice numbers (8 or 20 digits) and invoice codes (10 or 12
digits), dates, amounts, business numbers with letters (``BX2026…``, ``FKD…``). A number glued to
letters is part of an identifier and is not masked, unless the letters are a label that says what
it is (``Tel13600136000``, ``card6222…``, ``ID11010…``); Chinese text beside a number does not
protect it (``收款账号6222…`` is masked).

Record ids as long as a card (a Yonyou voucher or line id has 19 digits, source-systems.md §8.1;
a Seeyon flow id is a signed Java long) are left alone where the text or the payload says they are
record ids, unless they pass the card test (BIN and Luhn) or the resident-id test, as ``mask_key``
does: after a label ending in an id (``source_id=``, ``flowId=``, ``header.id:``; not a bare
``id``, nor a personal one like ``bankCardId``), after ``vouchers``/``凭证`` (``yonyou vouchers
1874…: …``), inside a standard id ``<system>:<kind>:<number>`` (``doc_id``), and in a payload
under a key naming a record id (``id``, ``…_id``, ``…Id``) with no personal word in it
(``bankCardId``, ``idno``). A bare long number is still masked without a check: Luhn does not
hold for every card and corporate accounts (对公账号) have no check at all
(chinese-finance-fields.md), so a failed Luhn proves nothing outside a record-id context.

Callers: ``oafin.connectors`` (error details), ``oafin.pipeline.standardize`` (quarantine),
``oafin.warehouse.lifecycle`` (exception detail), ``oafin.reporting`` (every report), and the
two older names of this module, ``data_contracts.masking`` and ``oafin.reporting.redact``.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Any

MASK = "*"
MASK_CHAR = MASK
KEEP = 4  # characters of a personal number that stay visible: its last 4

_NOT_ID = r"(?<![0-9A-Za-z])"
_END = r"(?![0-9A-Za-z])"
# Cards and IDs: 15-19 digits or 17 digits + X; grouped as cards print (4-4-4-4[-1..3]) or as
# IDs do (6-8-4). Other groupings stay: "1440319001-12345678" is an invoice code and number.
_LONG_BODY = r"(?:\d{17}[Xx]|\d{15,19}|\d{4}(?:[ -]\d{4}){3}(?:[ -]?\d{1,3})?|\d{6}[ -]\d{8}[ -]\d{3}[\dXx])"
_LONG = re.compile(_NOT_ID + _LONG_BODY + _END)
_PHONE_BODY = r"(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}"
_PHONE = re.compile(r"(?<![0-9A-Za-z+])" + _PHONE_BODY + _END)
# A label glued to the number it names: the letters do not make it part of an identifier.
_LABELLED = re.compile(
    r"(?i)(?<![A-Za-z])(tel|phone|mobile|mob|cell|fax|card|cardno|acct|account|accountno|id|idno|idcard|sfz)"
    r"([.:#=_]?)(" + _PHONE_BODY + "|" + _LONG_BODY + r")" + _END
)
# What just before a long number says it is a record id (checked at the number's start): a label
# ending in an id (``source_id=``, ``flowId=``, ``header.id:``; not a bare ``id``, which names an
# identity card here), ``voucher(s)``/``凭证``, or the prefix of a standard id ``<system>:<kind>:``.
_RECORD_ID_CONTEXT = re.compile(
    r"(?:(?<![\w.])(?P<label>[A-Za-z][\w.]*?(?:_id|_ID|Id|ID|\.id))\s*[=:：]?\s*"
    r"|(?i:(?<![A-Za-z])vouchers?)\s*[=:：]?\s*|凭证\s*[=:：]?\s*"
    r"|(?<![\w:])[a-z][a-z0-9_-]*:[a-z][a-z0-9_-]*:)-?$"
)
_RECORD_ID_KEY = re.compile(r"^(?:id|\w+_id|\w*[a-z0-9]Id|\w+ID)$")
# Words that make an id-looking key a personal number's (a card, an account, an id card).
_PERSONAL_KEY = re.compile(r"(?i)card|cert|acct|account|bank|sfz|identity|passport|phone|mobile|idno|idnum")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_SEPARATORS = re.compile(r"[\s\-]+")
# Card BINs (ISO/IEC 7812 issuer prefixes of the schemes used in China): UnionPay 62, 60, 81;
# Visa 4; Mastercard 51-55 and 2221-2720; Amex 34, 37; JCB 35; Diners 30, 36, 38; Discover 65.
_CARD_BIN = re.compile(r"^(?:62|60|81|4|5[1-5]|2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)|3[4-8]|30|65)")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _personal(text: str) -> bool:
    return is_bank_card(text) or is_resident_id(text)


def _record_id(text: str, start: int, number: str) -> bool:
    """Whether ``number``, at ``start`` in ``text``, is a record id: said so just before, and no
    card or resident id number."""
    said = _RECORD_ID_CONTEXT.search(text, max(0, start - 40), start)
    if said is None or (said["label"] and _PERSONAL_KEY.search(said["label"])):
        return False  # ``bankCardId=``, ``payeeAccountId:`` name a personal number
    return not _personal(number)


def _keep_last4(match: re.Match[str]) -> str:
    if _record_id(match.string, match.start(), match.group(0)):
        return match.group(0)  # e.g. a Yonyou voucher id, not a card or id number
    chars = [c for c in match.group(0) if c.isdigit() or c in "Xx"]
    return MASK * (len(chars) - KEEP) + "".join(chars[-KEEP:])


def _phone(match: re.Match[str]) -> str:
    digits = [c for c in match.group(0) if c.isdigit()]
    return MASK * 7 + "".join(digits[-KEEP:])


def _unglued(text: str) -> str:
    return _PHONE.sub(_phone, _LONG.sub(_keep_last4, text))


def _labelled(match: re.Match[str]) -> str:
    label, sep, number = match.groups()
    if _record_id(match.string, match.start(3), number):
        return match.group(0)  # ``header.id=1874…``: the label is part of a record-id label
    return label + sep + _unglued(" " + number)[1:]


def redact_text(text: str | None) -> str | None:
    """Mask bank card, resident ID and phone numbers inside free text (last 4 kept)."""
    if not text:
        return text
    return _unglued(_LABELLED.sub(_labelled, text))


def formula_safe(text: str | None) -> str | None:
    """Text a spreadsheet will never run as a formula (``=HYPERLINK(...)`` gets a leading quote)."""
    if text and text.startswith(_FORMULA_START):
        return "'" + text
    return text


def safe_cell(text: str | None) -> str | None:
    """Text for a spreadsheet or CSV cell: masked, and never read as a formula (``=HYPERLINK(...)``)."""
    return formula_safe(redact_text(text))


def _clean(value: str) -> str:
    # NFKC folds full-width digits; grouping spaces and hyphens carry no information.
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", value))


def luhn_ok(digits: str) -> bool:
    """The Luhn check (ISO/IEC 7812-1) over a string of ASCII digits."""
    if not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return total % 10 == 0


def is_bank_card(value: str | None) -> bool:
    """A bank card number: 15-19 digits, a card BIN and a valid Luhn check digit."""
    if not value:
        return False
    digits = _clean(value)
    return 15 <= len(digits) <= 19 and digits.isdigit() and bool(_CARD_BIN.match(digits)) and luhn_ok(digits)


def _real_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return 1900 <= year <= 2100


def is_resident_id(value: str | None) -> bool:
    """A resident ID: 18 characters with the GB 11643 check character, or the old 15 digits; a real birth date."""
    if not value:
        return False
    text = _clean(value).upper()
    if len(text) == 18 and text[:17].isdigit() and text[:17].isascii():
        check = "10X98765432"[sum(int(c) * w for c, w in zip(text[:17], _ID_WEIGHTS, strict=True)) % 11]
        return text[17] == check and _real_date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    if len(text) == 15 and text.isdigit() and text.isascii() and text[0] in "12345678":
        return _real_date(1900 + int(text[6:8]), int(text[8:10]), int(text[10:12]))
    return False


def _mask(text: str, head: int, tail: int) -> str:
    """Keep ``head`` leading and ``tail`` trailing characters, hide the rest.

    At least ``min(8, ceil(n/2))`` characters stay hidden, the tail shrinking last, so a
    truncated or odd value never leaks whole.
    """
    n = len(text)
    visible = max(n - 8, n // 2)
    tail = min(tail, visible)
    head = min(head, visible - tail)
    return text[:head] + MASK * (n - head - tail) + text[n - tail :]


def mask_id_number(value: str | None) -> str | None:
    """A resident ID (or any personal id number): the last 4 characters only.

    ``11010519491231002X`` becomes ``**************002X``.
    """
    return None if value is None else _mask(_clean(value), 0, KEEP)


def mask_bank_card(value: str | None) -> str | None:
    """A bank card or account number: last 4 digits only (grouping spaces dropped)."""
    return None if value is None else _mask(_clean(value), 0, KEEP)


def mask_phone(value: str | None) -> str | None:
    """A phone number: last 4 digits only (``138 0013 8000`` -> ``*******8000``)."""
    return None if value is None else _mask(_clean(value), 0, KEEP)


def mask_key(value: Any) -> Any:
    """A business key as it may be shown: unchanged, unless it is a valid bank card or resident id.

    ``claim_no``, ``doc_no`` and an invoice number (valid or malformed) stay as they are, so
    reviewers and the truth file can find them; a "number" that is really someone's card or id
    number is masked like one.
    """
    if isinstance(value, str) and _personal(value):
        return mask_bank_card(value)
    return value


def is_record_id_key(key: Any) -> bool:
    """A payload key naming a record id (``id``, ``source_id``, ``processInstanceId``), not a
    personal number's (``bankCardId``, ``idno``, ``id_card``)."""
    return isinstance(key, str) and bool(_RECORD_ID_KEY.match(key)) and not _PERSONAL_KEY.search(key)


def mask_json(value: Any) -> Any:
    """A copy of decoded JSON with every personal number masked (strings; integers of 15+ digits).

    Keys are kept; structure is walked without recursion (payloads may be deep). A value under a
    record-id key (``is_record_id_key``) is a business key: masked only if it is a card or id number.
    """
    root: list[Any] = [value]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        parent, key = stack.pop()
        item = parent[key]
        if isinstance(parent, dict) and is_record_id_key(key) and isinstance(item, str | int):
            if _personal(str(item)):  # a card or id number under an id key is still one
                parent[key] = mask_bank_card(str(item))
            elif isinstance(item, str) and not _clean(item).isdigit():
                parent[key] = redact_text(item)  # text under an id key: masked as text is
        elif isinstance(item, str):
            parent[key] = redact_text(item)
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) >= 10**14:
            parent[key] = redact_text(str(item))
        elif isinstance(item, dict):
            copy = dict(item)
            parent[key] = copy
            stack.extend((copy, k) for k in copy)
        elif isinstance(item, list):
            copy_list = list(item)
            parent[key] = copy_list
            stack.extend((copy_list, i) for i in range(len(copy_list)))
    return root[0]


def masked_cut(text: str, limit: int) -> str:
    """``text`` masked, then cut to ``limit`` characters (cutting first would leave a number's head)."""
    masked = redact_text(text) or ""
    return masked if len(masked) <= limit else masked[:limit] + "..."
