"""Write a period's reports: exceptions.csv, reconciliation.xlsx, report.html, summary.json."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.reconcile import PeriodResult
from reporting.exceptions_csv import write_exceptions_csv
from reporting.html_report import write_html_report
from reporting.workbook import write_workbook


def report_dir(base: Path, period: str) -> Path:
    return base / period


def write_reports(result: PeriodResult, base: Path) -> dict[str, Path]:
    out = report_dir(base, result.period)
    out.mkdir(parents=True, exist_ok=True)
    shown = result.exceptions.loc[result.exceptions["status"] != "ignored"]
    counts = shown.groupby("exception_type").size().to_dict()
    summary = {**result.stats, "exceptions_by_type": {k: int(v) for k, v in sorted(counts.items())}}
    paths = {
        "csv": write_exceptions_csv(shown, out / "exceptions.csv"),
        "xlsx": write_workbook(shown, summary, out / "reconciliation.xlsx"),
        "html": write_html_report(shown, summary, out / "report.html"),
    }
    summary_path = out / "summary.json"
    summary_path.write_text(
        json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=True), encoding="utf-8"
    )
    paths["summary"] = summary_path
    return paths
