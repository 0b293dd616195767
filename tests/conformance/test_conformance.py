"""The conformance suite: the same tests against every system's twin, over real HTTP.

Each test runs once per entry of ``SYSTEMS_UNDER_TEST`` (``tests/conformance/conftest.py``) and,
where it takes ``kind``/``envelope``/``rate_limit``/``error_shape``, once per case that system
documents. The checks themselves live in ``checks.py``.
"""

from __future__ import annotations

import pytest

from tests.conformance import checks
from tests.conformance.systems import ErrorShape, Running


def test_token_fetch_and_bad_credentials(sut: Running) -> None:
    checks.check_token_fetch(sut)


@pytest.mark.parametrize("extra", [0, 1], ids=["last-page-exactly-full", "last-page-short"])
def test_paging_reads_every_record_to_the_end(sut: Running, kind: str, extra: int) -> None:
    checks.check_paging_to_the_end(sut, kind, extra)


def test_token_expiry_in_mid_paging_is_refreshed(sut: Running, envelope: str) -> None:
    checks.check_token_expiry_mid_paging(sut, sut.sut.kinds[0], envelope)


def test_rate_limit_answers_are_waited_out_then_named(sut: Running, rate_limit: str) -> None:
    checks.check_rate_limit(sut, sut.sut.kinds[0], rate_limit)


def test_documented_error_shapes_name_system_and_call(sut: Running, error_shape: ErrorShape) -> None:
    checks.check_error_shape(sut, error_shape)


def test_records_round_trip_through_the_default_mapping(sut: Running, kind: str) -> None:
    checks.check_round_trip(sut, kind)


def test_noise_maps_to_the_same_facts(sut: Running, kind: str) -> None:
    checks.check_noise_maps_to_the_same_facts(sut, kind)


def test_hostile_input_is_a_named_error_or_a_quarantined_record(
    sut: Running, kind: str, hostile: str
) -> None:
    checks.check_hostile(sut, kind, hostile)
