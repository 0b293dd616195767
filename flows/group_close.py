"""The group close: one daily run per company for a period, each started through a deployment so it
runs on whichever worker of the pool is free, and one summary across companies.

Scale-out is Prefect's, not ours: a work pool with workers on as many machines as the group needs,
a PostgreSQL-backed Prefect server they share, the per-system rate limits as Prefect global
concurrency limits every run draws from (tasks/limits.py), and the warehouse (PostgreSQL) as the only
place a run's progress lives. A child whose worker dies stops sending heartbeats; the automation this
flow makes sure exists ("oafin: crash unresponsive runs", Prefect's documented zombie-run recipe)
marks it Crashed, and this flow schedules the same run again (what the UI's Retry does), so a free
worker on another machine resumes it from the warehouse. Decisions are plain functions in
oafin/pipeline/group.py.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.runtime import flow_run as current_run

from flows.daily import resolve_period
from oafin.pipeline.group import Child, Next, exceptions_by_type, group_outcome, next_step, summary_row
from oafin.pipeline.runtime import settings_from

DAILY_DEPLOYMENT = "oafin-daily/daily"
ZOMBIE_AUTOMATION = "oafin: crash unresponsive runs"


class GroupCloseIncomplete(RuntimeError):
    """Some companies' runs did not complete after their retries; the summary says which."""


# A state change that says the run is alive or no longer running: any of them disarms the check.
ALIVE_OR_DONE = {
    f"prefect.flow-run.{name}"
    for name in (
        "heartbeat",
        "Running",
        "Completed",
        "Failed",
        "Cancelled",
        "Cancelling",
        "Crashed",
        "Paused",
        "Suspended",
        "AwaitingRetry",
        "Scheduled",
        "Retrying",
    )
}
# What arms it: a run handed to a worker or running. A machine that dies right after taking a run
# leaves it Pending ("Submitting") with no heartbeat ever sent, which heartbeats alone never catch.
ARMING = {f"prefect.flow-run.{name}" for name in ("heartbeat", "Pending", "Submitting", "Running")}


def unresponsive_after() -> int | None:
    """Three heartbeat periods (PREFECT_FLOWS_HEARTBEAT_FREQUENCY, default 180 s): a live run that
    is merely slow never trips it. None when heartbeats are off (nothing could be detected)."""
    from prefect.settings import get_current_settings

    frequency = get_current_settings().flows.heartbeat_frequency
    return None if not frequency else 3 * int(frequency)


def ensure_zombie_detection(within_seconds: int) -> bool:
    """Prefect's recipe for runs whose machine died (docs.prefect.io/v3/advanced/detect-zombie-flows),
    armed on Pending too: no sign of life for ``within_seconds`` → the run is marked Crashed.
    Idempotent: made once per server, by name; True when this call made it. The workers must send
    heartbeats more often than ``within_seconds`` (PREFECT_FLOWS_HEARTBEAT_FREQUENCY)."""
    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    with get_client(sync_client=True) as client:
        if client.read_automations_by_name(ZOMBIE_AUTOMATION):
            return False
    Automation(
        name=ZOMBIE_AUTOMATION,
        description="Marks a flow run Crashed when it shows no sign of life (oafin group close).",
        trigger=EventTrigger(
            after=ARMING,
            expect=ALIVE_OR_DONE,
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=within_seconds),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"no heartbeat for {within_seconds} s: its worker or machine stopped",
            )
        ],
    ).create()
    return True


def _company(config_path: str) -> str:
    return settings_from(config_path).company_code


def _table(client: SyncPrefectClient, flow_run_id: UUID, key: str) -> list[dict[str, Any]] | None:
    """The newest table artifact ``key`` of a flow run, as records (None when there is none)."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    found = client.read_artifacts(
        artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[key]), flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])
        )
    )
    if not found:
        return None
    data = found[-1].data
    return json.loads(data) if isinstance(data, str) else data  # type: ignore[return-value]


def _refresh(client: SyncPrefectClient, child: Child) -> None:
    run = client.read_flow_run(UUID(child.flow_run_id))
    child.flow_run_name = run.name or ""
    child.state_type = run.state.type.value if run.state else None
    child.state_name = (run.state.name or "") if run.state else ""


def _retry(client: SyncPrefectClient, child: Child) -> None:
    """Schedule the same flow run again, as the UI's Retry does: its landed work is in the warehouse."""
    from prefect.states import AwaitingRetry

    child.retries_used += 1
    client.set_flow_run_state(UUID(child.flow_run_id), AwaitingRetry(), force=True)


def _url(flow_run_id: str) -> str:
    from prefect.settings import PREFECT_UI_URL

    base = PREFECT_UI_URL.value()
    return f"{base.rstrip('/')}/runs/flow-run/{flow_run_id}" if base else f"flow-run {flow_run_id}"


@flow(name="oafin-group-close", flow_run_name="group-close-{period}")
def group_close(
    config_paths: list[str],
    period: str = "previous",
    full: bool = True,
    deployment: str = DAILY_DEPLOYMENT,
    max_retries: int = 2,
    poll_seconds: float = 5.0,
    give_up_after_seconds: float | None = None,
) -> list[dict[str, Any]]:
    """Close ``period`` for every company whose config is in ``config_paths`` (paths as the workers
    see them). Each company's daily run starts through ``deployment``; a failed or crashed one is
    scheduled again up to ``max_retries`` times; children still unfinished after
    ``give_up_after_seconds`` are reported as such. Writes one summary table artifact across
    companies and fails, after writing it, if a company's run did not complete.
    """
    log = get_run_logger()
    name = resolve_period(period)
    within = unresponsive_after()
    if within is None:
        log.warning("flow heartbeats are off: a child whose machine dies will not be noticed")
    elif ensure_zombie_detection(within):
        log.info("made the automation %r (no heartbeat for %d s → Crashed)", ZOMBIE_AUTOMATION, within)
    parent = str(current_run.id or "local")
    children: list[Child] = []
    for path in config_paths:
        company = _company(path)
        # The key makes a retry of this group close find its children instead of starting new ones.
        run: FlowRun = run_deployment(  # type: ignore[assignment]  # sync call: not a coroutine
            deployment,
            parameters={"config_path": path, "period": name, "full": full},
            timeout=0,
            idempotency_key=f"group-close-{parent}-{company}-{name}",
            tags=["oafin", "group-close", company],
        )
        children.append(Child(company, path, str(run.id), run.name, url=_url(str(run.id))))
    log.info("group close %s: %d companies started through %s", name, len(children), deployment)

    pending = list(children)
    deadline = None if give_up_after_seconds is None else time.monotonic() + give_up_after_seconds
    with get_client(sync_client=True) as client:
        while pending:
            if deadline is not None and time.monotonic() > deadline:
                log.error("group close %s: gave up waiting for %d runs", name, len(pending))
                for child in pending:
                    _refresh(client, child)
                    child.gave_up = True
                break
            still: list[Child] = []
            for child in pending:
                _refresh(client, child)
                step = next_step(child.state_type, child.retries_used, max_retries)
                if step is Next.RETRY:
                    log.warning(
                        "%s: run %s is %s; scheduling it again (retry %d of %d)",
                        child.company_code,
                        child.flow_run_name,
                        child.state_name,
                        child.retries_used + 1,
                        max_retries,
                    )
                    _retry(client, child)
                    still.append(child)
                elif step is Next.WAIT:
                    still.append(child)
                elif step is Next.GIVE_UP:
                    child.gave_up = True
            if len(still) != len(pending):
                log.info(
                    "group close %s: %d of %d runs finished", name, len(children) - len(still), len(children)
                )
            pending = still
            if pending:
                time.sleep(poll_seconds)
        rows = []
        for child in children:
            key = f"oafin-{child.company_code}-{name}".lower()
            counts = _table(client, UUID(child.flow_run_id), f"{key}-counts")
            stats = _table(client, UUID(child.flow_run_id), f"{key}-stats")
            rows.append(
                summary_row(
                    child,
                    exceptions_by_type(counts) if counts is not None else None,
                    stats[0] if stats else None,
                )
            )
    create_table_artifact(
        key=f"oafin-group-close-{name}",
        table=rows,
        description=f"Group close {name}: one line per company (state, exceptions by type, auto-match rate, run)",
    )
    done, not_done = group_outcome(children)
    log.info("group close %s: %d completed, %d not", name, len(done), len(not_done))
    if not_done:
        raise GroupCloseIncomplete(
            f"group close {name}: {len(not_done)} of {len(children)} companies did not complete "
            f"({', '.join(not_done)}); the summary artifact links each run"
        )
    return rows
