"""``oafin run``: the daily flow for one period, with a clear message instead of a traceback on failure."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from oafin.config import load_settings
from oafin.connectors.limits import Acquire, RetryPolicy


def run_flow(
    config_path: Path, period: str, as_of: str | None = None, *, full: bool = False
) -> dict[str, Any]:
    from flows.daily import daily

    load_settings(config_path)  # fail on a bad config before Prefect starts
    return daily(config_path=str(Path(config_path).resolve()), period=period, as_of=as_of, full=full)


def run_period(config_path: Path, period: str, as_of: str | None, *, full: bool = False) -> int:
    try:
        summary = run_flow(config_path, period, as_of, full=full)
    except Exception as exc:  # the flow's own logs hold the details; the operator gets one clear line
        from oafin.config import ConfigError

        if isinstance(exc, ConfigError):
            raise
        print(f"oafin: run failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print_summary(summary)
    return 0


def print_summary(summary: dict[str, Any]) -> None:
    stats = summary["stats"]
    print(
        f"period {summary['period']}: {stats['exceptions']} exceptions, auto-match rate {stats['auto_match_rate']}"
    )
    for name, path in summary["reports"].items():
        print(f"  {name:8} {path}")
    if summary["reports"].get("xlsx"):  # each run writes its own; this one is current
        print(
            f"  review in {Path(summary['reports']['xlsx']).name} (current workbook; earlier ones are kept)"
        )


def run_plain(
    config_path: Path | str,
    period: str,
    as_of: str | None = None,
    *,
    full: bool = False,
    overlap: timedelta | None = None,
    limiter: Acquire | None = None,
    attempts: int = 3,
    retry: RetryPolicy | None = None,
) -> dict[str, Any]:
    """The daily flow's data steps as plain functions, without Prefect and without reports.

    plan → extract every kind → standardize → validate → reconcile, in one process; for tests,
    benchmarks and the crash test (tests/test_crash.py kills it with SIGKILL at random points).
    Returns what was landed, stored and found.
    """
    from oafin.periods import Period, parse_as_of
    from oafin.pipeline.extract import DEFAULT_OVERLAP, ROLES, extract_kind, plan_extraction, worth_retrying
    from oafin.pipeline.reconcile import reconcile_period
    from oafin.pipeline.runtime import code_tables, settings_from, warehouse
    from oafin.pipeline.standardize import map_source, store_reference_tables, store_standard

    settings = settings_from(str(config_path))
    engine = warehouse(settings.warehouse_url)
    p = Period.parse(period)
    as_of_dt = parse_as_of(as_of, p)
    start, end = p.extraction_window(settings.reconcile.lookback_days, as_of_dt)
    plans = plan_extraction(engine, settings, start, end, overlap=overlap or DEFAULT_OVERLAP, full=full)
    landed = {role: 0 for role in ROLES}
    for plan in plans:
        # as the extract task does: a new attempt for what may heal (landing is idempotent)
        for attempt in range(1, attempts + 1):
            try:
                landed[plan.role] += extract_kind(engine, settings, plan, limiter=limiter, retry=retry).landed
                break
            except Exception as exc:
                if attempt == attempts or not worth_retrying(exc, attempt):
                    raise
    tables = code_tables(settings)
    stored = {}
    for role in ROLES:
        source = getattr(settings, role)
        records = map_source(engine, settings, source, tables)
        if role == "oa":
            store_reference_tables(engine, tables)
        stored[role] = store_standard(engine, source, records)
    result = reconcile_period(engine, settings, p, as_of_dt)
    return {"landed": landed, "plans": plans, "stored": stored, "result": result}
