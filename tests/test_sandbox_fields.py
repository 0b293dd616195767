"""Check-digit and money-text helpers the generator writes with (chinese-finance-fields.md)."""

from __future__ import annotations

import random
from datetime import date

import pytest

from oafin.sandbox.finance_fields import (
    amount_in_words,
    fen_text,
    fen_thousands,
    fen_yen_short,
    full_width,
    luhn_check_digit,
    make_digital_invoice_no,
    make_traditional_invoice,
    make_unionpay_card,
    make_uscc,
    uscc_check,
    yuan_json_number,
)


def test_uscc_check_character_of_the_standards_worked_example() -> None:
    # chinese-finance-fields.md: 91350100M000100Y4Z has sum 1640, so the check should be 3.
    assert uscc_check("91350100M000100Y4") == "3"


def test_luhn_check_digit_of_a_known_card() -> None:
    assert luhn_check_digit("7992739871") == "3"  # the classic Luhn example 79927398713


@pytest.mark.parametrize(
    ("fen", "words"),
    [
        (600714, "陆仟零柒元壹角肆分"),  # examples from chinese-finance-fields.md
        (1640902, "壹万陆仟肆佰零玖元零贰分"),
        (10000000, "壹拾万元整"),
        (100010000, "壹佰万零壹佰元整"),
        (150, "壹元伍角整"),
        (5, "伍分"),
        (1005, "壹拾元零伍分"),
    ],
)
def test_amount_in_words(fen: int, words: str) -> None:
    assert amount_in_words(fen) == words


def test_money_texts() -> None:
    assert fen_text(123450) == "1234.50"
    assert fen_text(-5) == "-0.05"
    assert fen_thousands(123456789) == "1,234,567.89"
    assert fen_yen_short(123450) == "¥1234.5"
    assert fen_yen_short(123400) == "¥1234"
    assert full_width("1234.50") == "１２３４．５０"
    assert yuan_json_number(123400) == 1234
    assert repr(yuan_json_number(123456)) == "1234.56"


def test_generated_ids_pass_their_checks() -> None:
    rng = random.Random(1)
    for _ in range(200):
        code = make_uscc(rng)
        assert len(code) == 18 and uscc_check(code[:17]) == code[17]
        card = make_unionpay_card(rng)
        assert len(card) == 19 and card.startswith("62") and luhn_check_digit(card[:-1]) == card[-1]
        inv_code, number = make_traditional_invoice(rng, date(2026, 10, 3))
        assert len(inv_code) in (10, 12) and len(number) == 8 and (inv_code + number).isdigit()
        digital = make_digital_invoice_no(rng, date(2026, 10, 3))
        assert len(digital) == 20 and digital.startswith("26") and digital.isdigit()
