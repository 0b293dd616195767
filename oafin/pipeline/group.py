"""A group close as plain decisions: what to do with each company's child run, and the summary row
each company gets. The Prefect side (starting children through a deployment, reading their states
and artifacts, re-scheduling them) is flows/group_close.py; nothing here knows about Prefect.

A child run is the daily flow of one company, started through a deployment so it runs on whichever
worker of the pool is free. What it has landed lives in the warehouse, so a child that failed or
whose worker died is re-scheduled (Prefect's "retry", the same flow run) and any worker resumes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# Prefect's terminal state types, by name (prefect.client.schemas.objects.StateType values).
DONE = "COMPLETED"
FAILED = ("FAILED", "CRASHED")
STOPPED = ("CANCELLED", "CANCELLING")


class Next(StrEnum):
    WAIT = "wait"  # scheduled, pending or running: look again later
    DONE = "done"  # completed
    RETRY = "retry"  # failed or crashed with retries left: schedule the same run again
    GIVE_UP = "give_up"  # failed or crashed with no retry left, or cancelled by someone


def next_step(state_type: str | None, retries_used: int, max_retries: int) -> Next:
    """What the group close does with a child run whose state is ``state_type``."""
    if state_type == DONE:
        return Next.DONE
    if state_type in STOPPED:
        return Next.GIVE_UP  # an operator cancelled it: respected, not retried
    if state_type in FAILED:
        return Next.RETRY if retries_used < max_retries else Next.GIVE_UP
    return Next.WAIT


@dataclass
class Child:
    """One company's child run as the group close tracks it."""

    company_code: str
    config_path: str
    flow_run_id: str
    flow_run_name: str = ""
    state_type: str | None = None
    state_name: str = ""
    retries_used: int = 0
    url: str = ""
    gave_up: bool = False


def exceptions_by_type(counts_table: Iterable[Mapping[str, Any]] | None) -> dict[str, int]:
    """``{type: count}`` (non-zero only) from the daily run's counts table artifact."""
    out: dict[str, int] = {}
    for row in counts_table or []:
        n = int(row.get("count") or 0)
        if n:
            out[str(row["exception_type"])] = n
    return dict(sorted(out.items()))


def summary_row(
    child: Child, counts: dict[str, int] | None, stats: Mapping[str, Any] | None
) -> dict[str, Any]:
    """One company's line of the group summary artifact (a table artifact takes plain records)."""
    rate = (stats or {}).get("auto_match_rate")
    return {
        "company": child.company_code,
        "state": child.state_name or (child.state_type or "UNKNOWN").title(),
        "exceptions": sum((counts or {}).values()) if counts is not None else None,
        "by_type": ", ".join(f"{k} {v}" for k, v in (counts or {}).items())
        or ("none" if counts is not None else ""),
        "auto_match_rate": None if rate is None else f"{float(rate):.1%}",
        "retries": child.retries_used,
        "run": child.flow_run_name,
        "link": child.url,
    }


def group_outcome(children: Iterable[Child]) -> tuple[list[str], list[str]]:
    """(companies completed, companies not completed), each sorted."""
    done: list[str] = []
    not_done: list[str] = []
    for child in children:
        (done if child.state_type == DONE else not_done).append(child.company_code)
    return sorted(done), sorted(not_done)
