"""Prefect skin over pipeline.report: write the files and put a summary on the flow run page."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from oafin.standard import EXCEPTION_TYPES
from pipeline.reconcile import PeriodResult
from pipeline.report import write_reports
from pipeline.runtime import settings_from


@task(name="report", cache_policy=NO_CACHE, task_run_name="report-{result.period}")
def report(config_path: str, result: PeriodResult) -> dict[str, str]:
    settings = settings_from(config_path)
    paths = write_reports(result, settings.reports_dir)
    shown = result.exceptions.loc[result.exceptions["status"] != "ignored"]
    counts = shown.groupby("exception_type").size()
    table = [{"exception_type": t, "count": int(counts.get(t, 0))} for t in EXCEPTION_TYPES]
    key = f"oafin-{result.company_code}-{result.period}".lower()
    create_table_artifact(
        key=key,
        table=table,
        description=f"Exceptions for {result.company_code} {result.period} as of {result.as_of:%Y-%m-%d %H:%M} UTC; "
        f"auto-match rate {result.stats.get('auto_match_rate')}",
    )
    create_link_artifact(key=f"{key}-report", link=paths["html"].resolve().as_uri(), link_text="report.html")
    get_run_logger().info("reports written to %s", paths["html"].parent)
    return {k: str(v) for k, v in paths.items()}
