"""Prefect skin over pipeline.extract: retries on transient failures, fail fast on the rest."""

from __future__ import annotations

from datetime import datetime

from prefect import get_run_logger, task
from prefect.tasks import exponential_backoff

from connectors.errors import AuthError, SourceError
from oafin.config import ConfigError
from pipeline.extract import extract_source
from pipeline.runtime import settings_from, warehouse

PERMANENT = (AuthError, SourceError, ConfigError)


def retry_unless_permanent(task, task_run, state) -> bool:  # noqa: ANN001 - Prefect's hook signature
    """Bad credentials, a malformed request or a bad config cannot heal by retrying."""
    try:
        state.result()
    except PERMANENT:
        return False
    except Exception:
        return True
    return False


@task(
    name="extract",
    task_run_name="extract-{role}",
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=5),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_unless_permanent,
)
def extract(config_path: str, role: str, start: datetime, end: datetime) -> dict:
    settings = settings_from(config_path)
    summary = extract_source(warehouse(settings.warehouse_url), settings, role, start, end)
    get_run_logger().info(
        "%s (%s): landed %d records %s", role, summary.system, summary.landed, summary.by_kind
    )
    return {"system": summary.system, "landed": summary.landed, "by_kind": summary.by_kind}
