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

    oa_landed = extract.submit(config_path, "oa", start, end)
    fin_landed = extract.submit(config_path, "finance", start, end)
    oa_records = standardize.submit(config_path, "oa", wait_for=[oa_landed])
    fin_records = standardize.submit(config_path, "finance", wait_for=[fin_landed])
    oa_valid = validate.submit(config_path, "oa", oa_records)
    fin_valid = validate.submit(config_path, "finance", fin_records)
    result = reconcile.submit(config_path, period, as_of, wait_for=[oa_valid, fin_valid]).result()
    paths = report(config_path, result)
    summary = {
        "period": period,
        "extracted": {"oa": oa_landed.result()["landed"], "finance": fin_landed.result()["landed"]},
        "standardized": {"oa": oa_valid.result(), "finance": fin_valid.result()},
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
