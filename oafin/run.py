"""``oafin run``: the daily flow for one period, with a clear message instead of a traceback on failure."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oafin.config import Settings, load_settings
from oafin.connectors.limits import Acquire, RetryPolicy
from oafin.failure import report_failure

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from oafin.periods import Period
    from oafin.prefect_runtime import EarlyServer


def run_flow(
    config_path: Path,
    period: str,
    as_of: str | None = None,
    *,
    full: bool = False,
    server: EarlyServer | None = None,
) -> dict[str, Any]:
    """The daily flow on ``config_path``'s sources, after the checks that need no Prefect.

    ``server``: Prefect's temporary server, already starting (``oafin demo``); else the flow
    call starts it."""
    from oafin.pipeline.sources import check_sources
    from oafin.preflight import check_sources_reachable, check_warehouse

    # before Prefect is even imported: a bad config or mapping (no network needed), then a
    # database or system that does not answer
    settings = load_settings(config_path)
    check_sources(settings)
    check_sources_reachable(settings, Path(config_path).resolve())
    check_warehouse(settings, Path(config_path).resolve())

    from data_contracts.gx_suites import import_gx
    from flows.daily import daily
    from oafin.prefect_runtime import ephemeral_server

    import_gx()  # the report's Great Expectations, imported here: while an early server still starts
    with (
        frozen_heap(),
        ephemeral_server(early=server),
    ):  # a generous wait for Prefect's server on a busy machine
        return daily(config_path=str(Path(config_path).resolve()), period=period, as_of=as_of, full=full)


_frozen_depth = 0


@contextmanager
def frozen_heap(*, collect: bool = True) -> Iterator[None]:
    """Leave the objects alive now out of the garbage collector's passes until the block ends.

    What a run has imported and set up (Prefect, pandas, GX, the settings, a demo's data set and
    sandbox: ~2M objects by the flow call, nearly none of them garbage) lives for the whole run;
    without this, each full collection walked all of it again: 28 full passes, 20 s of a demo of
    110 s on a loaded 2-core machine, most of them (1-3.4 s each) while the demo set up.
    ``collect=False``: no automatic collection at all inside the block (a set-up phase that makes
    next to no garbage) until an inner ``frozen_heap()`` freezes what it made and collects again.
    Unfrozen when the outermost block ends, so a process that goes on (tests) can collect them.
    """
    global _frozen_depth
    was_enabled = gc.isenabled()
    gc.freeze()
    _frozen_depth += 1
    if collect:
        gc.enable()
    else:
        gc.disable()
    try:
        yield
    finally:
        _frozen_depth -= 1
        if _frozen_depth == 0:
            gc.unfreeze()
        if was_enabled:
            gc.enable()
        else:
            gc.disable()


def run_period(config_path: Path, period: str, as_of: str | None, *, full: bool = False) -> int:
    from oafin.preflight import UnreachableError, check_as_of, check_period

    check_period(period)  # ArgumentError: exit 2 before anything starts
    check_as_of(as_of)
    settings = load_settings(config_path)
    print(
        f"config:  {Path(config_path).resolve()} (relative paths in it resolve against {settings.base_dir})"
    )
    try:
        summary = run_flow(config_path, period, as_of, full=full)
    except UnreachableError as exc:
        print(f"oafin: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the flow's own logs hold the details; the operator gets one clear line
        from oafin.config import ConfigError

        if isinstance(exc, ConfigError):
            raise
        report_failure("run", exc)  # one line for the operator; the traceback kept
        return 1
    print_summary(summary)
    return 0


REPORT_LABELS = {
    "html": "open this first: KPIs, money at risk, the exceptions to act on first",
    "xlsx": "this run's workbook for finance: edit Status / Comment, then `.venv/bin/oafin review import`",
    "csv": "exceptions.csv: the machine interface (UTF-8), for the data team",
    "summary": "the KPIs as JSON",
    "data_docs": "Data Docs: the data-quality checks (Great Expectations)",
}


def print_summary(summary: dict[str, Any]) -> None:
    """What to look at first: the reports, each with what it is for, then the counts."""
    stats = summary["stats"]
    reports = summary["reports"]
    print(f"\nreports, {summary.get('company_code', '')} {summary['period']}:")
    for name in sorted(reports, key=lambda n: list(REPORT_LABELS).index(n) if n in REPORT_LABELS else 99):
        print(f"  {reports[name]}\n      {REPORT_LABELS.get(name, name)}")
    print(
        f"{stats['exceptions']} exceptions, auto-match rate {stats['auto_match_rate']} "
        "(the report's first table lists what to act on first)"
    )
    if reports.get("xlsx"):  # each run writes its own; this one is current
        print(f"review in {Path(reports['xlsx']).name} (the current workbook; earlier ones are kept)")


@dataclass
class PlainSteps:
    """The steps as plain calls in one process: extractions one after the other, each retried as
    the extract task is (a new attempt for what may heal; landing is idempotent)."""

    settings: Settings
    engine: Engine
    period: Period
    as_of: datetime
    start: datetime
    end: datetime
    overlap: timedelta
    full: bool
    limiter: Acquire | None
    attempts: int
    retry: RetryPolicy | None
    plans: list[Any] = field(default_factory=list)

    def plan(self) -> list[dict[str, Any]]:
        from oafin.pipeline.extract import plan_extraction

        self.plans = plan_extraction(
            self.engine, self.settings, self.start, self.end, overlap=self.overlap, full=self.full
        )
        return [p.as_dict() for p in self.plans]

    def extract(self, plans: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        from oafin.pipeline.extract import ExtractPlan, extract_kind, worth_retrying

        landed = []
        for item in plans:
            plan = ExtractPlan(**item)
            for attempt in range(1, self.attempts + 1):
                try:
                    summary = extract_kind(
                        self.engine, self.settings, plan, limiter=self.limiter, retry=self.retry
                    )
                    break
                except Exception as exc:
                    if attempt == self.attempts or not worth_retrying(exc, attempt):
                        raise
            landed.append({**item, "landed": summary.landed, "notes": summary.notes})
        return landed

    def reference_tables(self) -> None:
        from oafin.pipeline.runtime import code_tables
        from oafin.pipeline.standardize import store_reference_tables

        store_reference_tables(self.engine, code_tables(self.settings))

    def standardize(self, sources: Sequence[str]) -> list[dict[str, Any]]:
        from oafin.pipeline.runtime import code_tables
        from oafin.pipeline.standardize import map_source, store_standard

        tables = code_tables(self.settings)
        out = []
        for name in sources:
            source = self.settings.source(name)
            records = map_source(self.engine, self.settings, source, tables)
            out.append(asdict(store_standard(self.engine, source, records)))
        return out

    def reconcile(self) -> Any:
        from oafin.pipeline.reconcile import reconcile_period

        return reconcile_period(self.engine, self.settings, self.period, self.as_of)

    def report(self, result: Any) -> None:
        return None


def run_plain(
    config_path: Path | str,
    period: str,
    as_of: str | None = None,
    *,
    full: bool = False,
    overlap: timedelta | None = None,
    limiter: Acquire | None = None,
    attempts: int = 3,
    retry: RetryPolicy | None = None,
) -> dict[str, Any]:
    """The daily flow's data steps (oafin.pipeline.steps) as plain functions, without Prefect and
    without reports; for tests, benchmarks and the crash test (tests/test_crash.py kills it with
    SIGKILL at random points). Returns what was landed, stored and found.
    """
    from oafin.periods import Period, parse_as_of
    from oafin.pipeline.extract import DEFAULT_OVERLAP
    from oafin.pipeline.runtime import settings_from, warehouse
    from oafin.pipeline.steps import run_daily

    settings = settings_from(str(config_path))
    p = Period.parse(period)
    as_of_dt = parse_as_of(as_of, p)
    start, end = p.extraction_window(settings.reconcile.lookback_days, as_of_dt)
    steps = PlainSteps(
        settings,
        warehouse(settings.warehouse_url),
        p,
        as_of_dt,
        start,
        end,
        overlap or DEFAULT_OVERLAP,
        full,
        limiter,
        attempts,
        retry,
    )
    run = run_daily(steps, settings)
    return {
        "landed": run.extracted,
        "plans": steps.plans,
        "stored": run.standardized,
        "result": run.result,
        "notes": run.notes,
    }
