"""Prefect skin over pipeline.standardize: map, validate, store standard rows and quarantine."""

from __future__ import annotations

from dataclasses import asdict

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from oafin.pipeline.runtime import code_tables, settings_from, warehouse
from oafin.pipeline.standardize import map_source, store_reference_tables, store_standard


@task(
    name="standardize",
    cache_policy=NO_CACHE,
    task_run_name="standardize-{label}-{role}",
    retries=1,
    retry_delay_seconds=2,
)
def standardize(config_path: str, role: str, label: str = "") -> list:
    """Map every landed record of the source onto the standard (no writes)."""
    settings = settings_from(config_path)
    source = getattr(settings, role)
    records = map_source(warehouse(settings.warehouse_url), settings, source, code_tables(settings))
    get_run_logger().info("%s: mapped %d records", source.system, len(records))
    return records


@task(
    name="validate",
    cache_policy=NO_CACHE,
    task_run_name="validate-{label}-{role}",
    retries=1,
    retry_delay_seconds=2,
)
def validate(config_path: str, role: str, records: list, label: str = "") -> dict:
    """Hold the mapped records to their contracts; store valid rows, quarantine the rest."""
    settings = settings_from(config_path)
    engine = warehouse(settings.warehouse_url)
    if role == "oa":
        store_reference_tables(engine, code_tables(settings))
    summary = store_standard(engine, getattr(settings, role), records)
    get_run_logger().info(
        "%s: %d valid, %d quarantined, %d invoices",
        summary.system,
        summary.valid,
        summary.quarantined,
        summary.invoices,
    )
    return asdict(summary)
