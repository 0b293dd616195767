"""The parsers: exact money, zone-correct times, strict refusals."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mappings.parse import (
    ParseError,
    normalize_text,
    parse_date,
    parse_datetime,
    parse_epoch_ms,
    parse_id,
    parse_int,
    parse_money,
    parse_percent_bp,
    period_of,
)

FULL_WIDTH = str.maketrans("0123456789.,-", "０１２３４５６７８９．，－")


def test_normalize_text_folds_full_width_and_strips():
    assert normalize_text("\u3000ＢＸ２０２６（一）  ") == "BX2026(一)"
    assert normalize_text(" 差旅费 ") == "差旅费"
    assert normalize_text(12) == "12"


def test_parse_id_removes_every_space():
    assert parse_id(" ２０２６ 1030\u30001234 ") == "202610301234"


@pytest.mark.parametrize(
    "text",
    [
        "1234.50",
        "1234.5",
        "1,234.50",
        "¥1,234.50",
        "￥1234.50",
        "１２３４．５０",
        "１，２３４．５",
        " 1 234.50 ",
        "¥ 1,234.50",
    ],
)
def test_money_text_forms_are_one_amount(text):
    assert parse_money(text) == 123450


@pytest.mark.parametrize(
    ("value", "fen"),
    [
        (Decimal("1234.50"), 123450),
        (1234, 123400),
        (1234.5, 123450),  # a JSON number: its repr is the text the source sent
        (0.1, 10),
        ("0", 0),
        ("-12.30", -1230),
        ("¥-12.30", -1230),
        ("-¥12.30", -1230),
        (".5", 50),
    ],
)
def test_money_numbers_and_signs(value, fen):
    assert parse_money(value) == fen


@pytest.mark.parametrize(
    ("text", "fen"),
    [("2.675", 268), ("0.005", 1), ("0.004", 0), ("-0.005", -1), ("1.9949", 199), (Decimal("2.675"), 268)],
)
def test_money_rounds_half_up_not_half_even(text, fen):
    # round(2.675, 2) is 2.67 with floats; half-to-even would give 0 for 0.005
    assert parse_money(text) == fen


@pytest.mark.parametrize(
    "text",
    ["", "abc", "1.2.3", "1,5", "12,34.00", "1,", "12元", "1e3", "NaN", "1_000", "¥¥1", "--1", "+-1", "¥"],
)
def test_money_refuses_what_it_cannot_read_exactly(text):
    with pytest.raises(ParseError):
        parse_money(text)


@pytest.mark.parametrize("value", [True, None, [1], Decimal("Infinity"), float("nan")])
def test_money_refuses_non_amounts(value):
    with pytest.raises(ParseError):
        parse_money(value)


@given(st.decimals(min_value=-(10**12), max_value=10**12, places=2, allow_nan=False, allow_infinity=False))
def test_money_round_trips_every_text_form(amount):
    fen = int(amount * 100)
    plain = format(amount, "f")
    grouped = format(amount, ",.2f")
    for text in (plain, grouped, "¥" + grouped, grouped.translate(FULL_WIDTH), f" {plain} "):
        assert parse_money(text) == fen, text
    assert parse_money(amount) == fen


def test_beijing_string_is_utc_eight_hours_earlier():
    moment = parse_datetime("2026-10-31 23:50:00", "%Y-%m-%d %H:%M:%S", "Asia/Shanghai")
    assert moment == datetime(2026, 10, 31, 15, 50, tzinfo=UTC)
    assert moment.tzinfo is UTC


def test_datetime_formats():
    # Kingdee: local ISO without zone, China time
    assert parse_datetime("2026-11-01T00:30:00", "iso") == datetime(2026, 10, 31, 16, 30, tzinfo=UTC)
    # DingTalk v1.0: UTC with minute precision keeps its own zone
    assert parse_datetime("2022-08-31T11:52Z", "iso") == datetime(2022, 8, 31, 11, 52, tzinfo=UTC)
    # a pattern that is not ISO-shaped still goes through strptime
    assert parse_datetime("2026/1/5 8:00", "%Y/%m/%d %H:%M") == datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
    assert parse_datetime("2026-1-5 08:00:00", "%Y-%m-%d %H:%M:%S") == datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
    assert parse_datetime("２０２６-10-31 23:50:00", "%Y-%m-%d %H:%M:%S").hour == 15


@pytest.mark.parametrize(
    ("text", "fmt"),
    [("2026-10-31", "%Y-%m-%d %H:%M:%S"), ("2026-02-30 10:00:00", "%Y-%m-%d %H:%M:%S"), ("yesterday", "iso")],
)
def test_bad_datetimes_are_refused(text, fmt):
    with pytest.raises(ParseError):
        parse_datetime(text, fmt)


def test_epoch_ms_is_exact():
    moment = datetime(2026, 10, 31, 15, 50, 0, 123000, tzinfo=UTC)
    ms = int(moment.replace(microsecond=0).timestamp()) * 1000 + 123
    assert parse_epoch_ms(str(ms)) == moment
    assert parse_epoch_ms(ms) == moment
    assert parse_epoch_ms(0) == datetime(1970, 1, 1, tzinfo=UTC)
    with pytest.raises(ParseError):
        parse_epoch_ms("1793548200123.5")


def test_dates():
    assert parse_date("2026-10-20") == date(2026, 10, 20)
    assert parse_date("2026年10月20日", "%Y年%m月%d日") == date(2026, 10, 20)
    # an aware time is a business date in Asia/Shanghai
    assert parse_date(datetime(2026, 10, 31, 16, 30, tzinfo=UTC)) == date(2026, 11, 1)
    with pytest.raises(ParseError):
        parse_date("2026-13-01")


@pytest.mark.parametrize(
    ("text", "bp"), [("6%", 600), ("13%", 1300), ("6.5%", 650), ("0%", 0), ("１３％", 1300)]
)
def test_percent_to_basis_points(text, bp):
    assert parse_percent_bp(text) == bp


@pytest.mark.parametrize("text", ["6", "0.06", "6.125%", "免税", "%"])
def test_percent_refuses_ambiguous_or_fractional(text):
    with pytest.raises(ParseError):
        parse_percent_bp(text)


def test_int():
    assert parse_int("０42") == 42
    with pytest.raises(ParseError):
        parse_int("4.2")


def test_period_is_shanghai_month():
    assert period_of(datetime(2026, 10, 31, 16, 30, tzinfo=UTC)) == "2026-11"
    assert period_of(datetime(2026, 10, 31, 15, 59, tzinfo=UTC)) == "2026-10"
