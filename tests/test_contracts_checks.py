"""The Chinese finance field checks, on the worked examples of chinese-finance-fields.md."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from data_contracts.checks import (
    USCC_ALPHABET,
    USCC_WEIGHTS,
    VAT_RATE_PERIODS,
    invoice_format_ok,
    invoice_key,
    luhn_check_digit,
    luhn_ok,
    period_ok,
    resident_id_check_char,
    resident_id_ok,
    tax_matches_rate,
    total_matches,
    uscc_check_char,
    uscc_checksum_ok,
    uscc_format_ok,
    vat_rate_legal,
)
from data_contracts.masking import mask_bank_card, mask_id_number, mask_phone

D = dt.date.fromisoformat

# --- unified social credit code --------------------------------------------------------


def test_uscc_weights_are_powers_of_three_mod_31():
    assert tuple(pow(3, i, 31) for i in range(17)) == USCC_WEIGHTS
    assert len(USCC_ALPHABET) == 31 and not set("IOZSV") & set(USCC_ALPHABET)


def test_uscc_worked_example_from_the_standard_is_invalid():
    # GB 32100-2015's example: weighted sum 1640, 1640 mod 31 = 28, so the check is 3, not Z.
    first17 = "91350100M000100Y4"
    assert sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True)) == 1640
    assert uscc_check_char(first17) == "3"
    assert not uscc_checksum_ok("91350100M000100Y4Z")
    assert not uscc_format_ok("91350100M000100Y4Z")  # Z is not even in the alphabet
    assert uscc_checksum_ok("91350100M000100Y43")


def test_uscc_format_and_checksum_are_separate_findings():
    assert uscc_format_ok("91350100M000100Y40")  # well formed ...
    assert not uscc_checksum_ok("91350100M000100Y40")  # ... wrong check character


def test_uscc_authority_letters_are_allowed_in_the_first_positions():
    code = "Y1" + "310115" + "MA1K4PQ7X"
    code += uscc_check_char(code)
    assert uscc_format_ok(code) and uscc_checksum_ok(code)


@pytest.mark.parametrize(
    "code",
    ["91350100m000100Y43", "91350100M000100Y4", "91350100M000100Y433", "91350100I000100Y43", "", None],
)
def test_uscc_malformed(code):
    assert not uscc_format_ok(code)
    assert not uscc_checksum_ok(code)


uscc17 = st.text(alphabet=USCC_ALPHABET, min_size=17, max_size=17)


@given(uscc17, st.integers(0, 17), st.sampled_from(USCC_ALPHABET))
def test_uscc_any_single_substitution_breaks_the_check(first17, pos, ch):
    code = first17 + uscc_check_char(first17)
    assert uscc_checksum_ok(code)
    changed = code[:pos] + ch + code[pos + 1 :]
    # 31 is prime and every weight is non-zero mod 31: one changed character always shows
    assert uscc_checksum_ok(changed) == (changed == code)


# --- resident ID ---------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["11010519491231002X", "440524188001010014"])
def test_resident_id_worked_examples(number):
    assert resident_id_ok(number)


def test_resident_id_lower_case_x_is_accepted():
    assert resident_id_ok("11010519491231002x")


def test_resident_id_wrong_check_character():
    assert not resident_id_ok("110105194912310021")
    assert not resident_id_ok("440524188001010015")


def test_resident_id_needs_a_real_birth_date():
    first17 = "11010519490230002"  # 30 February
    assert not resident_id_ok(first17 + resident_id_check_char(first17))
    leap = "11010520000229002"  # 29 February 2000 exists
    assert resident_id_ok(leap + resident_id_check_char(leap))


def test_resident_id_legacy_15_digits_is_format_only():
    assert resident_id_ok("110105491231002")
    assert not resident_id_ok("110105491231002", allow_legacy=False)
    assert not resident_id_ok("11010549123100X")


@pytest.mark.parametrize("number", ["１１０１０５１９４９１２３１００２Ｘ", "1101051949123100", "", None])
def test_resident_id_malformed(number):
    assert not resident_id_ok(number)


@st.composite
def resident_ids(draw):
    address = draw(st.from_regex(r"[1-6][0-9]{5}", fullmatch=True))
    born = draw(st.dates(min_value=D("1900-01-01"), max_value=D("2025-12-31")))
    order = draw(st.integers(0, 999))
    first17 = f"{address}{born:%Y%m%d}{order:03d}"
    return first17 + resident_id_check_char(first17)


@given(resident_ids(), st.integers(0, 16), st.integers(1, 9))
def test_resident_id_any_single_digit_change_breaks_it(number, pos, delta):
    assert resident_id_ok(number)
    digit = str((int(number[pos]) + delta) % 10)
    assert not resident_id_ok(number[:pos] + digit + number[pos + 1 :])


# --- bank cards -------------------------------------------------------------------------------


def test_luhn_classic_example():
    assert luhn_ok("79927398713")
    assert luhn_check_digit("7992739871") == "3"
    assert not luhn_ok("79927398710")


@pytest.mark.parametrize("number", ["6222 0212 3456 7890", "6", "", None, "７９９２７３９８７１３"])
def test_luhn_needs_plain_digits(number):
    assert not luhn_ok(number)


@given(st.from_regex(r"62[0-9]{14,17}", fullmatch=True), st.data())
def test_luhn_generated_card_is_valid_and_one_changed_digit_breaks_it(payload, data):
    card = payload + luhn_check_digit(payload)
    assert luhn_ok(card)
    pos = data.draw(st.integers(0, len(card) - 1))
    digit = str((int(card[pos]) + data.draw(st.integers(1, 9))) % 10)
    assert not luhn_ok(card[:pos] + digit + card[pos + 1 :])


# --- invoices -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "number", "issued", "ok"),
    [
        ("3100261234", "00012345", None, True),  # 10-digit code (special VAT invoice)
        ("044002600111", "12345678", None, True),  # 12-digit code
        ("04400260011", "12345678", None, False),  # 11-digit code
        ("044002600111", "1234567", None, False),  # 7-digit number
        ("044002600111", "26442000000000000001", None, False),  # code with a digital number
        ("", "26442000000000000001", D("2026-10-05"), True),  # fully digital, year 26
        (None, "26442000000000000001", None, True),  # no date: year not checked
        ("", "25442000000000000001", D("2026-01-02"), False),  # year prefix 25 on a 2026 invoice
        ("", "12345678", None, False),  # no code needs 20 digits
        ("０４４００２６００１１１", "12345678", None, False),  # full-width: not normalised here
        ("044002600111", None, None, False),
    ],
)
def test_invoice_format(code, number, issued, ok):
    assert invoice_format_ok(code, number, issued) is ok


def test_invoice_key_names_traditional_and_digital_invoices():
    assert invoice_key("044002600111", "12345678") == "044002600111-12345678"
    assert invoice_key("", "26442000000000000001") == "26442000000000000001"
    assert invoice_key(None, "26442000000000000001") == "26442000000000000001"
    assert invoice_key("044002600111", None) is None


@pytest.mark.parametrize(
    ("rate_bp", "issued", "legal"),
    [
        (1600, "2019-03-31", True),
        (1600, "2019-04-01", False),
        (1000, "2019-03-31", True),
        (1000, "2019-04-01", False),
        (1300, "2019-04-01", True),
        (1300, "2019-03-31", False),  # the 16 % era
        (900, "2019-04-01", True),
        (900, "2019-03-31", False),
        (1600, "2018-04-30", False),
        (1600, "2018-05-01", True),
        (1700, "2018-04-30", True),
        (1700, "2018-05-01", False),
        (1100, "2018-04-30", True),
        (1300, "2017-06-30", True),  # 13 % abolished 2017-07-01, back 2019-04-01
        (1300, "2017-07-01", False),
        (100, "2027-12-31", True),
        (100, "2028-01-01", False),
        (300, "2028-01-01", True),
        (600, "2026-10-05", True),
        (0, "2026-10-05", True),
        (500, "2026-10-05", True),
        (800, "2026-10-05", False),
    ],
)
def test_vat_rate_legal_on_the_issue_date(rate_bp, issued, legal):
    assert vat_rate_legal(rate_bp, D(issued)) is legal


def test_vat_rate_needs_both_rate_and_date_and_takes_a_custom_table():
    assert not vat_rate_legal(None, D("2026-10-05"))
    assert not vat_rate_legal(600, None)
    assert vat_rate_legal(800, D("2026-10-05"), periods={**VAT_RATE_PERIODS, 800: ((None, None),)})


def test_total_is_ex_tax_plus_tax_exactly():
    assert total_matches(10_000, 600, 10_600)
    assert not total_matches(10_000, 600, 10_601)


@pytest.mark.parametrize(
    ("ex_tax", "rate_bp", "tax", "tolerance", "ok"),
    [
        (10_000, 600, 600, 1, True),
        (10_005, 600, 600, 1, True),  # 600.3 fen
        (10_000, 600, 601, 1, True),
        (10_000, 600, 602, 1, False),
        (10_000, 600, 602, 2, True),
        (123_457, 1300, 16_049, 1, True),  # 16049.41 fen
        (123_457, 1300, 16_051, 1, False),  # 1.59 fen off
        (10_000, 0, 0, 1, True),
    ],
)
def test_tax_matches_rate_within_tolerance(ex_tax, rate_bp, tax, tolerance, ok):
    assert tax_matches_rate(ex_tax, rate_bp, tax, tolerance) is ok


# --- periods ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("period", ["2026-10", "2026-01", "2027-12"])
def test_period_ok(period):
    assert period_ok(period)


@pytest.mark.parametrize("period", ["2026-13", "2026-00", "2026-1", "2026/10", "26-10", " 2026-10", "", None])
def test_period_malformed(period):
    assert not period_ok(period)


def test_adjustment_period_13_only_when_allowed():
    assert period_ok("2026-13", allow_adjustment=True)
    assert not period_ok("2026-14", allow_adjustment=True)


# --- masking ---------------------------------------------------------------------------------------


def test_mask_id_number_shows_the_last_4_only():
    # one policy with free text (oafin.masking): a personal number keeps only its last 4
    assert mask_id_number("11010519491231002X") == "**************002X"
    assert mask_id_number("110105491231002") == "***********1002"
    assert mask_id_number("12345") == "***45"
    assert mask_id_number(None) is None


def test_mask_bank_card_and_phone_show_last_4():
    assert mask_bank_card("6222 0212 3456 7890 128") == "*" * 15 + "0128"
    assert mask_phone("138 0013 8000") == "*******8000"
    assert mask_phone("１３８００１３８０００") == "*******8000"


@given(st.text(alphabet="0123456789X", min_size=1, max_size=30))
def test_masking_keeps_length_and_hides_at_least_half_or_eight(value):
    for mask in (mask_id_number, mask_bank_card, mask_phone):
        masked = mask(value)
        hidden = masked.count("*")
        assert len(masked) == len(value)
        assert hidden >= min(8, len(value) - len(value) // 2)
        assert len(value) - hidden <= (10 if mask is mask_id_number else 4)
