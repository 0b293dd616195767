"""Write a period's reports into ``<reports>/<period>/``.

exceptions.csv, reconciliation-<run stamp>.xlsx, report.html, summary.json, and the Great
Expectations Data Docs site in ``data_docs/``. Every number comes from one ``ReportData`` built
from the warehouse, so the files agree with each other and with the warehouse.

A review is never lost: each run writes its own workbook, ``reconciliation-<YYYYMMDD-HHMMSS>.xlsx``
(China time of writing), and never overwrites an existing file, so the 06:30 re-run cannot
destroy edits not yet imported. ``summary.json`` (``workbook``), report.html and the run's output
name the current one; an older one can still be imported (``oafin review import`` applies only
its reviewer's changes and refuses rows decided since).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from data_contracts.gx_suites import StandardTable
from oafin.periods import SHANGHAI
from oafin.pipeline.reconcile import PeriodResult
from oafin.reporting.context import (
    ReportData,
    build_report_data,
    exceptions_of_run,
    relative_link,
    shown_exceptions,
)
from oafin.reporting.exceptions_csv import write_exceptions_csv
from oafin.reporting.html_report import write_html_report
from oafin.reporting.redact import redact_text
from oafin.reporting.workbook import write_workbook
from oafin.warehouse.schema import STANDARD_TABLES, quarantine, raw_record
from oafin.warehouse.store import read_table

log = logging.getLogger(__name__)
DATA_DOCS = "data_docs"


def report_dir(base: Path, period: str) -> Path:
    return base / period


def new_workbook_path(out: Path, now: datetime) -> Path:
    """``reconciliation-<China time stamp>.xlsx`` in ``out``, never the name of an existing file."""
    stamp = now.astimezone(SHANGHAI).strftime("%Y%m%d-%H%M%S")
    path, n = out / f"reconciliation-{stamp}.xlsx", 2
    while path.exists():
        path, n = out / f"reconciliation-{stamp}-{n}.xlsx", n + 1
    return path


def standard_tables(engine: Engine, systems: Mapping[str, Sequence[str]]) -> dict[str, StandardTable]:
    """The standard tables and their landed/quarantined counts, read for the GX suites.

    ``systems``: per standard entity, the systems whose landed records map to it (from the
    config's sources, ``source_systems(settings)``)."""
    tables: dict[str, StandardTable] = {}
    with engine.connect() as conn:
        for entity in ("expense_claim", "finance_doc"):
            names = list(systems.get(entity, ()))
            raw = conn.execute(select(func.count()).where(raw_record.c.system.in_(names))).scalar_one()
            held = conn.execute(select(func.count()).where(quarantine.c.system.in_(names))).scalar_one()
            rows = read_table(conn, STANDARD_TABLES[entity])
            tables[entity] = StandardTable(rows=rows, landed=int(raw), quarantined=int(held))
    return tables


def quality_checks(
    engine: Engine,
    result: PeriodResult,
    data: ReportData,
    out: Path,
    systems: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Run the GX suites; a GX failure is reported in the result (and the report), never raised."""
    from data_contracts.gx_suites import build_batches, run_suites

    try:
        held = exceptions_of_run(engine, result.period, result.company_code, result.as_of)
        held = held.loc[held["status"] != "ignored"]
        batches = build_batches(
            standard_tables(engine, systems or {}),
            as_of=result.as_of,
            exceptions=data.exceptions,
            kpis=data.kpis,
            stats=result.stats,
            warehouse_exceptions=held,
        )
        return run_suites(batches, out / DATA_DOCS, run_name=result.period, run_time=result.as_of)
    except Exception as exc:  # shown on the report and logged; the reconciliation itself stands
        log.exception("Great Expectations could not run")
        return {
            "success": False,
            "evaluated": 0,
            "passed": 0,
            "failures": [],
            "error": redact_text(f"Great Expectations could not run: {type(exc).__name__}: {exc}"),
            "data_docs": None,
        }


def write_reports(
    result: PeriodResult,
    base: Path,
    engine: Engine,
    *,
    run_quality: bool = True,
    systems: Mapping[str, Sequence[str]] | None = None,
    now: datetime | None = None,
) -> tuple[dict[str, Path], ReportData]:
    """Write every report of ``result``; return their paths and the numbers they show.

    ``systems``: per standard entity, the systems that feed it (``source_systems(settings)``).
    """
    out = report_dir(base, result.period)
    out.mkdir(parents=True, exist_ok=True)
    shown = shown_exceptions(result.exceptions)
    workbook = new_workbook_path(out, now or datetime.now(UTC))
    data = build_report_data(
        engine,
        period=result.period,
        company_code=result.company_code,
        as_of=result.as_of,
        exceptions=shown,
        stats=result.stats,
    )
    data.links["workbook"] = workbook.name
    paths: dict[str, Path] = {}
    if run_quality:
        data.quality = quality_checks(engine, result, data, out, systems)
        if data.quality.get("data_docs"):
            paths["data_docs"] = Path(data.quality["data_docs"])
            data.links["data_docs"] = relative_link(paths["data_docs"], out)
        data.quality["pages"] = {
            suite: relative_link(Path(page), out)
            for suite, page in data.quality.get("pages", {}).items()
            if page
        }
    paths["csv"] = write_exceptions_csv(shown, out / "exceptions.csv")
    paths["xlsx"] = write_workbook(data, workbook, generation=workbook.stem)
    paths["html"] = write_html_report(data, out / "report.html")
    counts = {r["exception_type"]: int(r["count"]) for r in data.by_type.to_dict("records")}
    summary = {
        **result.stats,
        "exceptions_by_type": dict(sorted(counts.items())),
        "kpis": data.kpis,
        "workbook": workbook.name,  # the current workbook: review and import this one
        "exceptions_csv": "exceptions.csv (machine interface, UTF-8 without BOM)",
        "cycle_trend": data.cycle_trend.to_dict("records"),
        "quality": {k: v for k, v in (data.quality or {}).items() if k != "data_docs"},
    }
    summary_path = out / "summary.json"
    summary_path.write_text(
        json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True, default=str), encoding="utf-8"
    )
    paths["summary"] = summary_path
    return paths, data
