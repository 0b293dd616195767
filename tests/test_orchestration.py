"""Orchestration: watermarks and incremental extraction, retry decisions, the shared rate limit,
and resuming a failed flow run without calling the APIs again for what had finished."""

from __future__ import annotations

import copy
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from flows.daily import resolve_period
from oafin.config import ConfigError, load_settings
from oafin.connectors.errors import AuthError, BadResponseError, RateLimitedError, SourceError, TransientError
from oafin.periods import Period
from oafin.pipeline.extract import extract_source, plan_extraction
from oafin.pipeline.runtime import warehouse
from oafin.systems.dingtalk.twin_render import instances as dingtalk_instances
from oafin.warehouse.schema import raw_record, raw_record_version
from oafin.warehouse.watermarks import Watermark, advance, plan_window, read_watermark
from tasks.extract import operator_hint, retry_if_transient
from tasks.limits import SharedRateLimiter, chunk_size
from tests.test_orchestration_support import write_config

T0 = datetime(2026, 8, 1, tzinfo=UTC)
DAY = timedelta(days=1)


# --- the watermark arithmetic --------------------------------------------------------------


def test_first_run_and_full_read_the_whole_window():
    assert plan_window(T0, T0 + 30 * DAY, None, 3 * DAY).mode == "full"
    mark = Watermark(T0, T0 + 10 * DAY)
    plan = plan_window(T0, T0 + 30 * DAY, mark, 3 * DAY, full=True)
    assert (plan.read_from, plan.read_to, plan.mode) == (T0, T0 + 30 * DAY, "full")


def test_incremental_reads_past_the_watermark_minus_the_overlap():
    plan = plan_window(T0, T0 + 30 * DAY, Watermark(T0, T0 + 10 * DAY), 3 * DAY)
    assert (plan.read_from, plan.read_to, plan.mode) == (T0 + 7 * DAY, T0 + 30 * DAY, "incremental")
    # the overlap never reaches before the window asked for
    plan = plan_window(T0 + 9 * DAY, T0 + 30 * DAY, Watermark(T0, T0 + 10 * DAY), 30 * DAY)
    assert plan.read_from == T0 + 9 * DAY


def test_a_window_not_contiguous_with_the_landed_range_is_read_whole():
    plan = plan_window(T0 + 20 * DAY, T0 + 30 * DAY, Watermark(T0, T0 + 10 * DAY), DAY)
    assert (plan.read_from, plan.mode) == (T0 + 20 * DAY, "full")


def test_a_rerun_of_a_landed_window_rereads_only_its_tail():
    plan = plan_window(T0, T0 + 10 * DAY, Watermark(T0, T0 + 40 * DAY), 2 * DAY)
    assert (plan.read_from, plan.read_to, plan.mode) == (T0 + 8 * DAY, T0 + 10 * DAY, "incremental")


def test_advance_extends_and_never_passes_now(warehouse_engine):
    with warehouse_engine.begin() as conn:
        first = advance(conn, "dingtalk", "P1", "C01", T0, T0 + 10 * DAY, now=T0 + 5 * DAY)
        assert first == Watermark(T0, T0 + 5 * DAY)  # the future part is not landed yet
        second = advance(conn, "dingtalk", "P1", "C01", T0 + 2 * DAY, T0 + 20 * DAY, now=T0 + 30 * DAY)
        assert second == Watermark(T0, T0 + 20 * DAY)
        # an earlier, overlapping window widens the range backwards
        third = advance(conn, "dingtalk", "P1", "C01", T0 - 5 * DAY, T0 + DAY, now=T0 + 30 * DAY)
        assert third == Watermark(T0 - 5 * DAY, T0 + 20 * DAY)
        assert read_watermark(conn, "dingtalk", "P1", "C01") == third
        assert read_watermark(conn, "dingtalk", "P1", "C02") is None


def test_resolve_period():
    now = datetime(2026, 1, 15, 3, tzinfo=UTC)
    assert resolve_period("2025-07", now) == "2025-07"
    assert resolve_period("current", now) == "2026-01"
    assert resolve_period(None, now) == "2026-01"
    assert resolve_period("previous", now) == "2025-12"
    # 2026-01-31 20:00 UTC is already February in Shanghai
    assert resolve_period("current", datetime(2026, 1, 31, 20, tzinfo=UTC)) == "2026-02"
    with pytest.raises(ValueError):
        resolve_period("2026-13", now)


# --- incremental extraction against the sandbox ----------------------------------------------


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def _payload(engine, iid: str) -> str:
    with engine.connect() as conn:
        return conn.execute(select(raw_record.c.payload).where(raw_record.c.source_id == iid)).scalar_one()


def test_incremental_extraction_reads_only_the_tail_and_catches_late_edits(
    sandbox_fresh, sandbox_dataset, tmp_path
):
    sb = sandbox_fresh
    settings = load_settings(write_config(tmp_path, sb, f"sqlite:///{tmp_path / 'w.db'}"))
    engine = warehouse(settings.warehouse_url)
    period = Period.parse(sandbox_dataset.period)
    start, end = period.extraction_window(settings.reconcile.lookback_days)

    first = extract_source(engine, settings, "oa", start, end)
    full_gets = sb.calls.count("/processinstance/get")
    assert first.landed == full_gets > 100
    mark = read_watermark(engine.connect(), "dingtalk", settings.source("oa").process_code, "C01")
    assert mark == Watermark(start, end)

    # Late edits: one instance created inside the overlap, one long before it.
    tail = [i for i in dingtalk_instances(sandbox_dataset) if i["create_time"] >= "2026-10-30"]
    head = [i for i in dingtalk_instances(sandbox_dataset) if i["create_time"] < "2026-09-15"]
    recent, old = tail[0]["process_instance_id"], head[0]["process_instance_id"]
    saved = {iid: copy.deepcopy(sb.dingtalk.instances[iid]) for iid in (recent, old)}
    before = {iid: _payload(engine, iid) for iid in (recent, old)}
    try:
        for iid in (recent, old):
            sb.dingtalk.instances[iid] = {**saved[iid], "title": saved[iid]["title"] + "（已修改）"}
        sb.calls.clear()
        second = extract_source(engine, settings, "oa", start, end, overlap=timedelta(hours=72))
        assert 0 < second.landed == sb.calls.count("/processinstance/get") < full_gets / 5
        assert _payload(engine, recent) != before[recent]  # the edit inside the overlap is caught
        assert _payload(engine, old) == before[old]  # the old one needs --full
        sb.calls.clear()
        third = extract_source(engine, settings, "oa", start, end, full=True)
        assert third.landed == full_gets == sb.calls.count("/processinstance/get")
        assert _payload(engine, old) != before[old]
    finally:
        sb.dingtalk.instances.update(saved)
    # updated, not duplicated; and the history keeps both versions of each edited record
    assert _count(engine, raw_record) == first.landed
    assert _count(engine, raw_record_version) == first.landed + 2
    engine.dispose()


def test_plan_names_each_kind_with_its_mapping_hash(sandbox, tmp_path):
    settings = load_settings(write_config(tmp_path, sandbox, f"sqlite:///{tmp_path / 'w.db'}"))
    plans = plan_extraction(warehouse(settings.warehouse_url), settings, T0, T0 + DAY)
    assert {(p.system, p.kind) for p in plans} == {
        ("dingtalk", "PROC-OAFIN-EXPENSE"),
        ("kingdee", "ER_ExpReimbursement"),
        ("kingdee", "AP_PAYBILL"),
    }
    assert all(p.mode == "full" and p.watermark_to is None and len(p.mapping_hash) == 16 for p in plans)


# --- retry decisions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        (TransientError("kingdee", "ExecuteBillQuery", "HTTP 503"), True),
        (RateLimitedError("dingtalk", "get", "errcode 90018"), True),
        (BadResponseError("dingtalk", "get", "not JSON"), True),
        (RateLimitedError("dingtalk", "get", "errcode 90020", retryable=False), False),
        (AuthError("dingtalk", "gettoken", "errcode 40089"), False),
        (SourceError("kingdee", "ExecuteBillQuery", "业务对象不存在"), False),
        (ConfigError("oa: credential missing"), False),
        (OSError("database is locked"), True),
    ],
)
def test_task_retries_only_what_can_heal(error, retry):
    from prefect.states import Completed, Failed

    assert retry_if_transient(None, None, Failed(data=error)) is retry
    assert retry_if_transient(None, None, Completed(data=1)) is False


def test_fail_fast_errors_tell_the_operator_what_to_do():
    from oafin.config import source_settings

    oa = source_settings({"name": "oa", "system": "dingtalk", "base_url": "http://unused"})
    erp = source_settings({"name": "my-erp", "system": "kingdee", "base_url": "http://unused"})
    auth = operator_hint(AuthError("dingtalk", "gettoken", "errcode 40089"), oa)
    assert "OAFIN_SOURCE_OA_APP_KEY" in auth and "OAFIN_SOURCE_OA_APP_SECRET" in auth and "retry" in auth
    # credentials are read from the worker's environment: a retry alone cannot pick up new ones
    assert "restart the worker" in auth and "environment" in auth
    kd_auth = operator_hint(AuthError("kingdee", "login", "refused"), erp)
    assert "OAFIN_SOURCE_MY_ERP_ACCT_ID" in kd_auth and "OAFIN_SOURCE_MY_ERP_APP_SECRET" in kd_auth
    assert "FormId" in operator_hint(SourceError("kingdee", "ExecuteBillQuery", "x"), erp)
    assert "process_code" in operator_hint(SourceError("dingtalk", "listids", "x"), oa)


# --- the shared rate limit -------------------------------------------------------------------


def test_shared_limiter_draws_chunks_and_paces_at_the_rate():
    taken: list[int] = []
    limiter = SharedRateLimiter("oafin-test", rate=200.0, take=taken.append)
    n = 120
    threads = [threading.Thread(target=lambda: [limiter() for _ in range(n // 4)]) for _ in range(4)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    # the shared pool granted at least what was used, in chunks, and not wildly more
    assert all(c == chunk_size(200.0) for c in taken)
    assert n <= sum(taken) <= n + 2 * chunk_size(200.0)
    assert elapsed >= (n - 1) / 200.0  # never faster than the rate


def test_shared_limiter_hands_a_failed_grant_to_the_caller():
    def refuse(_slots: int) -> None:
        raise RuntimeError("concurrency limit oafin-x does not exist")

    limiter = SharedRateLimiter("oafin-x", rate=10.0, take=refuse)
    with pytest.raises(RuntimeError, match="does not exist"):
        limiter()


# --- resume: a failed run retried re-executes only what failed ------------------------------


class _FormMissingOnce(dict):
    """The sandbox's Kingdee forms, with one form unknown to the first ``times`` queries."""

    def __init__(self, forms: dict, missing: str, times: int) -> None:
        super().__init__(forms)
        self.missing, self.times = missing, times

    def get(self, key, default=None):  # noqa: ANN001 - dict's signature
        if key == self.missing and self.times > 0:
            self.times -= 1
            return None
        return super().get(key, default)


@pytest.mark.e2e
def test_a_retried_run_does_not_extract_again_what_had_finished(prefect_harness, sandbox_fresh, tmp_path):
    from flows.daily import daily

    sb = sandbox_fresh
    config = write_config(tmp_path, sb, f"sqlite:///{tmp_path / 'w.db'}")
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('dir = "reports"', f'dir = "reports"\npublic_url = "{PUBLIC}"'), "utf-8")
    forms = sb.kingdee.forms
    # The first query of AP_PAYBILL is refused ("业务对象不存在": no retry can heal that), so its
    # task fails at once and so does the run's first attempt; the run is then retried.
    sb.kingdee.forms = _FormMissingOnce(forms, "AP_PAYBILL", times=1)
    try:
        summary = daily.with_options(retries=1, retry_delay_seconds=0)(
            config_path=str(config), period=sb.dataset.period, full=True
        )
    finally:
        sb.kingdee.forms = forms
    queries = [c for c in sb.calls.snapshot("kingdee") if "ExecuteBillQuery" in c.path]
    # AP_PAYBILL: the refused query and the good one; ER_ExpReimbursement finished in the first
    # attempt and was not queried again; DingTalk neither: one token, each instance fetched once.
    assert len(queries) == 3
    assert sb.calls.count("/gettoken") == 1
    assert sb.calls.count("/processinstance/get") == summary["extracted"]["oa"] > 100
    assert summary["extracted"]["finance"] > 100

    # the run page (issue #11): a full run is named as the close, the summary is inline, every
    # artifact says what it is, and the links open under reports.public_url
    run, artifacts = _latest_run_artifacts(f"monthly-close-C01-{sb.dataset.period}")
    assert run.state.is_completed()
    ours = [a for a in artifacts if a.key]  # without a key: Prefect's own (persisted results)
    assert len(ours) >= 4 and all(a.description for a in ours), [(a.key, a.type) for a in ours]
    links = [a for a in artifacts if a.type == "markdown" and "## Reports" in str(a.data)]
    assert len(links) == 1 and f"({PUBLIC}{sb.dataset.period}/report.html)" in str(links[0].data)
    assert "Auto-match rate" in str(links[0].data)
    # link artifacts are stored as markdown "[text](url)"
    hrefs = [str(a.data) for a in ours if a.key.endswith(("-report", "-workbook", "-data-docs"))]
    assert len(hrefs) >= 2 and all(f"]({PUBLIC}" in h for h in hrefs), hrefs


PUBLIC = "https://reports.example.com/oafin/"


def _latest_run_artifacts(name: str):  # noqa: ANN202 - (FlowRun, list[Artifact])
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterName,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=1,
        )
        assert runs, f"no flow run named {name}"
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[runs[0].id]))
        )
    return runs[0], artifacts


def test_a_failed_run_leaves_an_artifact_saying_what_failed_and_what_to_do(prefect_harness, tmp_path):
    from flows.daily import daily

    config = tmp_path / "oafin.toml"
    config.write_text("chain = []\n", encoding="utf-8")  # no sources: the run fails on its config
    with pytest.raises(Exception, match="sources"):
        daily(config_path=str(config), period="previous")
    run, artifacts = _latest_run_artifacts(f"monthly-close-unknown-{resolve_period('previous')}")
    assert run.state.is_failed()
    failed = [a for a in artifacts if a.key == "oafin-run-failed"]
    assert len(failed) == 1 and failed[0].description
    text = str(failed[0].data)
    assert "What failed:" in text and "sources" in text
    assert "press **Retry**" in text and "restart the worker" in text


# --- deployments -----------------------------------------------------------------------------


def test_every_deployment_calls_the_flow_with_parameters_it_accepts():
    import inspect
    from pathlib import Path

    import yaml

    from flows.daily import daily

    spec = yaml.safe_load((Path(__file__).parent.parent / "prefect.yaml").read_text(encoding="utf-8"))
    accepted = set(inspect.signature(daily.fn).parameters)
    names = set()
    for dep in spec["deployments"]:
        if not dep["entrypoint"].startswith("flows/daily.py:"):
            continue  # the corrections and group-close deployments: tests/test_operators.py
        module, func = dep["entrypoint"].split(":")
        assert (module, func) == ("flows/daily.py", "daily")
        assert set(dep["parameters"]) <= accepted, dep["name"]
        # every schedule on China time; `daily` has none: the group close starts it
        assert all(s["timezone"] == "Asia/Shanghai" for s in dep["schedules"]), dep["name"]
        assert dep["schedules"] or dep["name"] == "daily", dep["name"]
        resolve_period(dep["parameters"]["period"])  # a period the flow understands
        names.add(dep["name"])
    assert {"daily-C01", "monthly-close-C01"} <= names
    close = next(d for d in spec["deployments"] if d["name"] == "monthly-close-C01")
    assert close["parameters"]["period"] == "previous" and close["parameters"]["full"] is True
