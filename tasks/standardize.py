"""Prefect skin over pipeline.standardize: map, validate, store standard rows and quarantine."""

from __future__ import annotations

from dataclasses import asdict

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from oafin.pipeline.runtime import code_tables, settings_from, warehouse
from oafin.pipeline.standardize import map_source, store_reference_tables, store_standard


@task(
    name="reference-tables",
    cache_policy=NO_CACHE,
    task_run_name="reference-tables-{label}",
    retries=1,
    retry_delay_seconds=2,
)
def reference_tables(config_path: str, label: str = "") -> None:
    """Store the code tables the reports and checks read (people, budgets)."""
    settings = settings_from(config_path)
    store_reference_tables(warehouse(settings.warehouse_url), code_tables(settings))


@task(
    name="standardize",
    cache_policy=NO_CACHE,
    task_run_name="standardize-{label}-{source}",
    retries=1,
    retry_delay_seconds=2,
)
def standardize(config_path: str, source: str, label: str = "") -> list:
    """Map every landed record of the source named ``source`` onto the standard (no writes)."""
    settings = settings_from(config_path)
    src = settings.source(source)
    records = map_source(warehouse(settings.warehouse_url), settings, src, code_tables(settings))
    get_run_logger().info("%s (%s): mapped %d records", src.name, src.system, len(records))
    return records


@task(
    name="validate",
    cache_policy=NO_CACHE,
    task_run_name="validate-{label}-{source}",
    retries=1,
    retry_delay_seconds=2,
)
def validate(config_path: str, source: str, records: list, label: str = "") -> dict:
    """Hold the mapped records to their contracts; store valid rows, quarantine the rest."""
    settings = settings_from(config_path)
    engine = warehouse(settings.warehouse_url)
    summary = store_standard(engine, settings.source(source), records)
    get_run_logger().info(
        "%s: %d valid, %d quarantined, %d invoices",
        source,
        summary.valid,
        summary.quarantined,
        summary.invoices,
    )
    return asdict(summary)
