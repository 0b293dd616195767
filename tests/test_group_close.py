"""The group close's decisions as plain functions (oafin/pipeline/group.py). The whole thing for real,
a Prefect server on PostgreSQL with two workers and one of them killed, is bench/group_close.py
(README "A group close over many companies")."""

from __future__ import annotations

import pytest

from oafin.pipeline.group import Child, Next, exceptions_by_type, group_outcome, next_step, summary_row


@pytest.mark.parametrize(
    ("state", "used", "expected"),
    [
        (None, 0, Next.WAIT),
        ("SCHEDULED", 0, Next.WAIT),
        ("PENDING", 0, Next.WAIT),
        ("RUNNING", 2, Next.WAIT),
        ("COMPLETED", 0, Next.DONE),
        ("FAILED", 0, Next.RETRY),
        ("CRASHED", 1, Next.RETRY),  # its worker died: another one resumes it
        ("CRASHED", 2, Next.GIVE_UP),
        ("FAILED", 2, Next.GIVE_UP),
        ("CANCELLED", 0, Next.GIVE_UP),  # an operator's cancel is respected, never retried
    ],
)
def test_next_step_retries_failed_and_crashed_children_within_the_budget(state, used, expected) -> None:
    assert next_step(state, used, max_retries=2) is expected


def test_exceptions_by_type_keeps_the_non_zero_counts_sorted() -> None:
    table = [
        {"exception_type": "SELF_APPROVAL", "count": 3},
        {"exception_type": "AMOUNT_MISMATCH", "count": "2"},
        {"exception_type": "LATE_PAYMENT", "count": 0},
    ]
    assert exceptions_by_type(table) == {"AMOUNT_MISMATCH": 2, "SELF_APPROVAL": 3}
    assert exceptions_by_type(None) == {}


def test_summary_row_says_state_counts_rate_and_where_the_run_is() -> None:
    child = Child(
        "C07", "configs/C07.toml", "id-7", "monthly-close-C07-2026-10", "COMPLETED", "Completed", 1, "u"
    )
    row = summary_row(child, {"AMOUNT_MISMATCH": 2, "SELF_APPROVAL": 3}, {"auto_match_rate": 0.9312})
    assert row == {
        "company": "C07",
        "state": "Completed",
        "exceptions": 5,
        "by_type": "AMOUNT_MISMATCH 2, SELF_APPROVAL 3",
        "auto_match_rate": "93.1%",
        "retries": 1,
        "run": "monthly-close-C07-2026-10",
        "link": "u",
    }
    failed = summary_row(Child("C08", "c", "id-8", state_type="FAILED", state_name="Failed"), None, None)
    assert (failed["state"], failed["exceptions"], failed["auto_match_rate"]) == ("Failed", None, None)
    clean = summary_row(Child("C09", "c", "id-9", state_type="COMPLETED"), {}, {"auto_match_rate": 1})
    assert (clean["state"], clean["exceptions"], clean["by_type"]) == ("Completed", 0, "none")


def test_group_outcome_splits_completed_from_the_rest() -> None:
    children = [
        Child("C02", "c", "2", state_type="COMPLETED"),
        Child("C01", "c", "1", state_type="CRASHED", gave_up=True),
        Child("C03", "c", "3", state_type="COMPLETED"),
    ]
    assert group_outcome(children) == (["C02", "C03"], ["C01"])
