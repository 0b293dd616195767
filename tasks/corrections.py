"""Prefect skin over pipeline.corrections: propose, and push with retries that never double-push."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from oafin.pipeline.corrections import oa
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


def oa_report_link(settings: Any, period: str | None) -> str:
    """The run's report, as the OA approval form links it (``reports.public_url`` when published)."""
    from tasks.report import report_link

    folder = settings.reports_dir / period if period else settings.reports_dir
    return report_link(folder / "report.html", settings.reports_dir, settings.reports.public_url)


@task(name="oa-approval", cache_policy=NO_CACHE, task_run_name="oa-approval-{period}")
def oa_approval(config_path: str, keys: list[str], watch: list[str], period: str | None = None) -> list[dict]:
    """Send the waiting ``keys`` for approval in the OA (one new batch at most), then read every
    batch holding any of ``watch`` (this run's actions): decided ones are recorded (exactly once),
    open ones reported."""
    settings = settings_from(config_path)
    engine = warehouse(settings.warehouse_url)
    log = get_run_logger()
    title = f"oafin 对账更正审批 {period}" if period else "oafin 对账更正审批"
    with oa.oa_client(settings) as client:
        oa.submit(
            engine,
            settings,
            oa.waiting_keys(engine, keys),
            client,
            report_link=oa_report_link(settings, period),
            title=title,
        )
        outcomes = [
            oa.check(engine, settings, code_tables(settings), batch_id, client)
            for batch_id in oa.batch_ids_for(engine, [*keys, *watch])
        ]
    for o in outcomes:
        log.info("OA instance %s (batch %s): %s", o.instance_id, o.batch_id[:12], o.status)
        for key, reason in o.refused.items():
            log.warning("%s: %s", key[:16], reason)
    return [asdict(o) for o in outcomes]


@task(name="check-oa-approvals", cache_policy=NO_CACHE)
def check_oa_approvals_task(config_path: str) -> dict:
    """The scheduled check: read every open OA batch, record decisions, push what was approved."""
    settings = settings_from(config_path)
    done = oa.check_and_push(warehouse(settings.warehouse_url), settings, code_tables(settings))
    log = get_run_logger()
    for o in done["batches"]:
        log.info("OA instance %s (batch %s): %s", o.instance_id, o.batch_id[:12], o.status)
    return {"batches": [asdict(o) for o in done["batches"]], "results": [asdict(r) for r in done["results"]]}


def _retryable(state: Any) -> bool:  # a Prefect State
    try:
        state.result()
    except RetryablePushError:
        return True
    except Exception:
        return False
    return False
