"""Write a period's reports into ``<reports>/<period>/``.

exceptions.csv, reconciliation.xlsx, report.html, summary.json, and the Great Expectations Data
Docs site in ``data_docs/``. Every number comes from one ``ReportData`` built from the warehouse,
so the files agree with each other and with the warehouse.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from data_contracts.gx_suites import StandardTable
from oafin.pipeline.reconcile import PeriodResult
from oafin.reporting.context import ReportData, build_report_data, exceptions_of_run, relative_link
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


def standard_tables(engine: Engine) -> dict[str, StandardTable]:
    """The standard tables and their landed/quarantined counts, read for the GX suites."""
    tables: dict[str, StandardTable] = {}
    with engine.connect() as conn:
        for entity, system in (("expense_claim", "dingtalk"), ("finance_doc", "kingdee")):
            raw = conn.execute(select(func.count()).where(raw_record.c.system == system)).scalar_one()
            held = conn.execute(select(func.count()).where(quarantine.c.system == system)).scalar_one()
            rows = read_table(conn, STANDARD_TABLES[entity])
            tables[entity] = StandardTable(rows=rows, landed=int(raw), quarantined=int(held))
    return tables


def quality_checks(engine: Engine, result: PeriodResult, data: ReportData, out: Path) -> dict[str, Any]:
    """Run the GX suites; a GX failure is reported in the result (and the report), never raised."""
    from data_contracts.gx_suites import build_batches, run_suites

    try:
        held = exceptions_of_run(engine, result.period, result.company_code, result.as_of)
        held = held.loc[held["status"] != "ignored"]
        batches = build_batches(
            standard_tables(engine),
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
    result: PeriodResult, base: Path, engine: Engine, *, run_quality: bool = True
) -> tuple[dict[str, Path], ReportData]:
    """Write every report of ``result``; return their paths and the numbers they show."""
    out = report_dir(base, result.period)
    out.mkdir(parents=True, exist_ok=True)
    shown = result.exceptions.loc[result.exceptions["status"] != "ignored"]
    data = build_report_data(
        engine,
        period=result.period,
        company_code=result.company_code,
        as_of=result.as_of,
        exceptions=shown,
        stats=result.stats,
    )
    paths: dict[str, Path] = {}
    if run_quality:
        data.quality = quality_checks(engine, result, data, out)
        if data.quality.get("data_docs"):
            paths["data_docs"] = Path(data.quality["data_docs"])
            data.links["data_docs"] = relative_link(paths["data_docs"], out)
        data.quality["pages"] = {
            suite: relative_link(Path(page), out)
            for suite, page in data.quality.get("pages", {}).items()
            if page
        }
    paths["csv"] = write_exceptions_csv(shown, out / "exceptions.csv")
    paths["xlsx"] = write_workbook(data, out / "reconciliation.xlsx")
    paths["html"] = write_html_report(data, out / "report.html")
    counts = {r["exception_type"]: int(r["count"]) for r in data.by_type.to_dict("records")}
    summary = {
        **result.stats,
        "exceptions_by_type": dict(sorted(counts.items())),
        "kpis": data.kpis,
        "cycle_trend": data.cycle_trend.to_dict("records"),
        "quality": {k: v for k, v in (data.quality or {}).items() if k != "data_docs"},
    }
    summary_path = out / "summary.json"
    summary_path.write_text(
        json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True, default=str), encoding="utf-8"
    )
    paths["summary"] = summary_path
    return paths, data
