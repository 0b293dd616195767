"""Issue #10 item 8: a period or an id is parsed strictly, whole string, ASCII digits only.

``re.match(r"^...$")`` accepts a trailing newline (``$`` matches before it), and ``\\d`` accepts
full-width and other Unicode digits: each made a second, different period name."""

from __future__ import annotations

import pytest

from oafin.audit import parse_head
from oafin.config import ConfigError
from oafin.periods import Period

BAD_PERIODS = [
    "2026-10\n",
    "2026-10\r\n",
    " 2026-10",
    "２０２６-１０",
    "２０２６-10",
    "2026-10 ",
    "2026-1",
    "2026-13",
    "\n",
]


@pytest.mark.parametrize("text", BAD_PERIODS)
def test_a_period_with_anything_around_it_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="period must look like 2026-10"):
        Period.parse(text)


def test_a_well_formed_period_parses_to_its_own_name() -> None:
    assert Period.parse("2026-10").name == "2026-10"


@pytest.mark.parametrize(
    "text", [f"12:{'a' * 64}\n", f"١٢:{'a' * 64}", f"12:{'g' * 64}", f" 12:{'a' * 64}", f"12:{'a' * 63}"]
)
def test_an_expected_audit_head_is_parsed_strictly(text: str) -> None:
    with pytest.raises(ConfigError, match="--expect-head"):
        parse_head(text)


def test_corrections_refuse_a_period_with_a_trailing_newline(tmp_path) -> None:
    from oafin.pipeline.corrections.service import propose
    from oafin.warehouse.store import connect

    engine = connect(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        with pytest.raises(ValueError, match="period must look like 2026-10"):
            propose(engine, None, comment_userid=None, period="2026-10\n")  # type: ignore[arg-type]
    finally:
        engine.dispose()
