"""Prefect skin over pipeline.corrections: propose, and push with retries that never double-push."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from oafin.pipeline.corrections.propose import action_targets
from oafin.pipeline.corrections.push import push_approved
from oafin.pipeline.corrections.service import propose
from oafin.pipeline.runtime import code_tables, settings_from, warehouse


class RetryablePushError(RuntimeError):
    """Some pushes failed in a way that may heal; a retry re-checks each target before re-sending."""


@task(name="propose-corrections", cache_policy=NO_CACHE, task_run_name="propose-{period}")
def propose_corrections(config_path: str, period: str | None = None) -> dict:
    settings = settings_from(config_path)
    proposed = propose(
        warehouse(settings.warehouse_url),
        code_tables(settings),
        comment_userid=settings.corrections.comment_userid,
        period=period,
        targets=action_targets([s.system for s in settings.chain_sources]),
        options={**settings.corrections.model_dump(), "company_code": settings.company_code},
        tolerance_fen=settings.reconcile.amount_tolerance_fen,
    )
    get_run_logger().info(
        "%d actions proposed (%d new), %d exceptions without an automatic correction",
        len(proposed.keys),
        len(proposed.new),
        len(proposed.skipped),
    )
    return asdict(proposed)


@task(
    name="push-corrections",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=lambda task, run, state: _retryable(state),
)
def push_corrections(config_path: str, keys: list[str]) -> list[dict]:
    """Push the approved actions among ``keys``; a retry skips the done ones (the ledger says so)."""
    settings = settings_from(config_path)
    results = push_approved(warehouse(settings.warehouse_url), settings, keys)
    log = get_run_logger()
    for r in results:
        log.info("%s %s: %s", r.key[:16], r.action, r.outcome)
    if any(r.outcome == "error" and r.retryable for r in results):
        raise RetryablePushError(
            "; ".join(f"{r.key[:16]}: {r.detail}" for r in results if r.outcome == "error")
        )
    return [asdict(r) for r in results]


def _retryable(state: Any) -> bool:  # a Prefect State
    try:
        state.result()
    except RetryablePushError:
        return True
    except Exception:
        return False
    return False
