"""The daily flow: extract OA + finance → standardize → validate → reconcile → report."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from engine.period import Period, parse_as_of
from pipeline.runtime import settings_from
from tasks.extract import extract
from tasks.reconcile import reconcile
from tasks.report import report
from tasks.standardize import standardize, validate

ROLES = ("oa", "finance")


@flow(name="oafin-daily", flow_run_name="daily-{period}")
def daily(config_path: str, period: str, as_of: str | None = None) -> dict[str, Any]:
    """Reconcile ``period`` (``2026-10``, Asia/Shanghai) for the systems in the config file at ``config_path``.

    ``as_of`` (ISO date or datetime, China time if no zone) defaults to the end of the period.
    """
    log = get_run_logger()
    settings = settings_from(config_path)
    p = Period.parse(period)
    as_of_dt = parse_as_of(as_of, p)
    start, end = p.extraction_window(settings.reconcile.lookback_days, as_of_dt)
    log.info("period %s as of %s: extracting %s .. %s", period, as_of_dt, start, end)

    # Both sides extract concurrently; .result() re-raises a failed task's own error for the operator.
    landing = {role: extract.submit(config_path, role, start, end) for role in ROLES}
    extracted = {role: future.result() for role, future in landing.items()}
    mapped = {role: standardize.submit(config_path, role) for role in ROLES}
    checked = {role: validate.submit(config_path, role, mapped[role]) for role in ROLES}
    standardized = {role: future.result() for role, future in checked.items()}
    result = reconcile(config_path, period, as_of)
    paths = report(config_path, result)
    summary = {
        "period": period,
        "extracted": {role: extracted[role]["landed"] for role in ROLES},
        "standardized": standardized,
        "stats": result.stats,
        "reports": paths,
    }
    log.info(
        "done: %d OA and %d finance records, %d exceptions, auto-match %s, reports in %s",
        summary["extracted"]["oa"],
        summary["extracted"]["finance"],
        len(result.exceptions),
        result.stats.get("auto_match_rate"),
        paths["html"],
    )
    return summary
