"""Masking of personal numbers in report, artifact and log text: last 4 kept, business numbers untouched."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oafin.reporting.redact import redact_text, safe_cell


def luhn_complete(body: str) -> str:
    """``body`` plus the Luhn check digit."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def id_complete(body17: str) -> str:
    """A resident ID: 17 digits plus the GB 11643 check character."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body17 + "10X98765432"[sum(int(c) * w for c, w in zip(body17, weights, strict=True)) % 11]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("收款账号6222020200112233445", "收款账号***************3445"),
        ("card 6222 0202 0011 2233 445 paid", "card ***************3445 paid"),
        ("6222-0202-0011-2233", "************2233"),
        ("id 11010519491231002X.", "id **************002X."),
        ("id 110105 19491231 002x", "id **************002x"),
        ("old id 110105491231002", "old id ***********1002"),
        ("tel 13800138000", "tel *******8000"),
        ("tel +86 138 0013 8000", "tel *******8000"),
        ("tel 8613800138000;", "tel *******8000;"),
        ("手机:138-0013-8000", "手机:*******8000"),
    ],
)
def test_personal_numbers_keep_their_last_four(text, expected):
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "invoice 12345678",  # 8-digit invoice number
        "invoice 26377939693944374033",  # 20-digit fully digital invoice
        "invoice 144031900111-12345678",  # 12-digit code + number
        "invoice 1440319001-12345678",  # 10-digit code + number
        "BX202610020012 FKD00020001 FYBX00010288",  # business numbers
        "OA 25050 fen, finance 24800 fen; approved 2026-10-02",
        "dingtalk user 06314984119",  # DingTalk userids start with 0
        "ABC13800138000",  # glued to letters: part of an identifier
        "",
    ],
)
def test_business_numbers_are_left_alone(text):
    assert redact_text(text) == text


def test_none_and_formula_cells():
    assert redact_text(None) is None
    assert safe_cell('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert safe_cell("-6222020200112233445") == "'-***************3445"


CHINESE = st.text(alphabet="报销事由差旅费收款账号：，。 ()", max_size=8)


@settings(max_examples=200, deadline=None)
@given(
    prefix=CHINESE,
    suffix=CHINESE,
    body=st.text(alphabet="0123456789", min_size=13, max_size=16),
    id_body=st.text(alphabet="0123456789", min_size=17, max_size=17),
    phone=st.text(alphabet="0123456789", min_size=9, max_size=9),
)
def test_no_valid_card_id_or_phone_survives_in_free_text(prefix, suffix, body, id_body, phone):
    card = luhn_complete("62" + body)  # 16-19 digits, like the sandbox's 收款账号
    resident = id_complete(id_body)
    mobile = "13" + phone
    text = f"{prefix}{card}{suffix} {resident} {prefix}{mobile}{suffix}"
    out = redact_text(text)
    for secret in (card, resident, mobile):
        assert secret not in out
    assert card[-4:] in out and resident[-4:] in out and mobile[-4:] in out
    assert not re.search(r"\d{5,}", out.replace(card[-4:], "").replace(resident[-4:], ""))
