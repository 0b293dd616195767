"""Prefect skin over pipeline.reconcile."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from oafin.periods import Period, parse_as_of
from oafin.pipeline.reconcile import PeriodResult, reconcile_period
from oafin.pipeline.runtime import settings_from, warehouse


@task(
    name="reconcile",
    cache_policy=NO_CACHE,
    task_run_name="reconcile-{period}",
    retries=1,
    retry_delay_seconds=2,
)
def reconcile(config_path: str, period: str, as_of: str | None = None) -> PeriodResult:
    settings = settings_from(config_path)
    p = Period.parse(period)
    result = reconcile_period(warehouse(settings.warehouse_url), settings, p, parse_as_of(as_of, p))
    get_run_logger().info("%s: %d exceptions; %s", period, result.stats["exceptions"], result.stats)
    return result
