"""Prefect skin over pipeline.extract: a plan task, one extract task per (system, kind).

Resume: both tasks persist their results under a cache key made of their real inputs (the
config file and its content hash, the window, the watermark the plan was made from, the mapping
file's hash: all inside ``plan``) plus the flow run id (prefect-notes.md: ``persist_result=True``
and a cache policy). Pressing "retry" on a failed flow run in the UI re-runs the same flow run:
the plan comes back from the cache with the watermarks it was made from, so every extraction that
had finished is a cache hit and makes no API call; only what failed runs again. A new run (the
next day's schedule) has a new flow run id and reads afresh from the watermarks.

Retries: the connectors already retry inside a call (backoff with jitter, Retry-After). A task
is retried only when its error says it can heal (``ConnectorError.retryable``); bad credentials,
a refused request or a bad config fail at once, with what to do in the message.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import INPUTS, RUN_ID, TASK_SOURCE
from prefect.tasks import exponential_backoff

from oafin.connectors.errors import ConnectorError
from oafin.pipeline.extract import ExtractPlan, extract_kind, plan_extraction, worth_retrying
from oafin.pipeline.runtime import settings_from, warehouse
from oafin.pipeline.sources import operator_hint as operator_hint  # the source's system says what to do
from oafin.reporting.redact import redact_text
from tasks.limits import shared_limiter

RESUMABLE = INPUTS + TASK_SOURCE + RUN_ID


def config_hash(config_path: str) -> str:
    """The config file's content hash: the same path with other content is another input."""
    return hashlib.sha256(Path(config_path).read_bytes()).hexdigest()[:16]


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:  # Prefect's hook signature
    """Retry what can heal (``oafin.pipeline.extract.worth_retrying``): a connector error marked
    retryable, an unexpected one (a dropped database connection), a token refused right after a
    refresh once; never bad credentials, a refused request or a bad config."""
    try:
        state.result()
    except Exception as exc:
        return worth_retrying(exc, getattr(task_run, "run_count", 1) or 1)
    return False


@task(
    name="plan-extraction",
    task_run_name="plan-{label}",
    cache_policy=RESUMABLE,
    persist_result=True,
    retries=1,
    retry_delay_seconds=2,
)
def plan(
    config_path: str,
    config_digest: str,
    label: str,
    start: datetime,
    end: datetime,
    overlap_hours: float,
    full: bool,
) -> list[dict[str, Any]]:
    """What each (source, kind) must read, from the warehouse's watermarks."""
    settings = settings_from(config_path)
    plans = plan_extraction(
        warehouse(settings.warehouse_url),
        settings,
        start,
        end,
        overlap=timedelta(hours=overlap_hours),
        full=full,
    )
    log = get_run_logger()
    for p in plans:
        log.info("%s %s: %s read %s .. %s", p.system, p.kind, p.mode, p.read_from, p.read_to)
    return [p.as_dict() for p in plans]


@task(
    name="extract",
    task_run_name="extract-{label}-{kind}",
    cache_policy=RESUMABLE,
    persist_result=True,
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=5),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_if_transient,
)
def extract(config_path: str, config_digest: str, label: str, kind: str, plan: dict[str, Any]) -> dict:
    """Land one kind's records for the planned window and advance its watermark."""
    settings = settings_from(config_path)
    p = ExtractPlan(**plan)
    source = settings.source(p.source)
    log = get_run_logger()
    try:
        summary = extract_kind(warehouse(settings.warehouse_url), settings, p, limiter=shared_limiter(source))
    except ConnectorError as exc:
        if worth_retrying(exc, 1):
            raise
        hint = operator_hint(exc, source)
        # connector messages carry no secrets (oafin.connectors.http.Redactor); ids and card numbers
        # that a system echoes back are masked too
        log.error("%s %s: cannot heal by retrying: %s. %s", p.system, p.kind, redact_text(str(exc)), hint)
        raise exc.redacted(lambda detail: f"{detail}. {hint}") from exc
    log.info("%s %s: landed %d records (%s)", p.system, p.kind, summary.landed, p.mode)
    for note in summary.notes:
        log.warning("%s %s: %s", p.system, p.kind, note)
    return {
        "source": p.source,
        "system": p.system,
        "kind": p.kind,
        "landed": summary.landed,
        "mode": p.mode,
        "notes": summary.notes,
    }
