"""Prefect skin over pipeline.report: write the files, put the summary on the flow run page.

Artifacts (prefect.artifacts, checked against prefect 3.9.1; keys: lowercase letters, digits,
dashes): a table of counts by type, a markdown of the KPIs and data quality, and links to the
workbook, the HTML report and the Data Docs. Nothing personal goes into them: counts, amounts,
rates and file links only (and every text passes ``redact_text`` anyway).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from oafin.pipeline.reconcile import PeriodResult
from oafin.pipeline.report import write_reports
from oafin.pipeline.runtime import settings_from, warehouse
from oafin.pipeline.sources import source_systems
from oafin.reporting.context import ReportData, reason_of
from oafin.reporting.html_report import days, pct, yuan
from oafin.reporting.markdown import md_text
from oafin.reporting.redact import redact_text
from oafin.standard import EXCEPTION_TYPES


def counts_table(data: ReportData) -> list[dict[str, Any]]:
    by_type = data.by_type.set_index("exception_type") if len(data.by_type) else None
    rows = []
    for kind in EXCEPTION_TYPES:
        found = by_type is not None and kind in by_type.index
        rows.append(
            {
                "exception_type": kind,
                "reason": reason_of(kind)[1],
                "count": int(by_type.at[kind, "count"]) if found else 0,  # type: ignore[union-attr, arg-type]  # found: by_type is a frame of counts
                "money_at_risk": yuan(int(by_type.at[kind, "risk_fen"])) if found else yuan(0),  # type: ignore[union-attr, arg-type]  # as above
            }
        )
    return rows


def kpi_markdown(data: ReportData) -> str:
    k = data.kpis
    q = data.quality or {}
    lines = [
        f"# Reconciliation {md_text(data.company_code)} {md_text(data.period)}",
        "",
        "| KPI | value |",
        "|---|---|",
        f"| Auto-match rate | {pct(k.get('auto_match_rate'))} |",
        f"| Exceptions (open) | {k['exceptions']:,} ({k['exceptions_open']:,}) |",
        f"| Money at risk 风险金额 (paid out wrongly) | {yuan(k['risk_fen'])} ({yuan(k['risk_paid_out_fen'])}) |",
        f"| Control findings 内控发现 | {k['control_findings']:,} |",
        f"| Matched claims / amount | {k['matched_claims']:,} / {yuan(k['matched_fen'])} |",
        f"| Unmatched claims / amount | {k['unmatched_claims']:,} / {yuan(k['unmatched_fen'])} |",
        f"| Approval-to-payment median / p90 | {days(k.get('cycle_median_days'))} / {days(k.get('cycle_p90_days'))} |",
        f"| Data accuracy (records passing contracts) | {pct(k.get('data_accuracy'))} |",
        f"| Data quality expectations passed | {q.get('passed', 0)} / {q.get('evaluated', 0)} |",
    ]
    for failure in q.get("failures", [])[:10]:
        lines.append(f"\n- failed: {md_text(failure)}")
    if q.get("error"):
        lines.append(f"\n**{md_text(q['error'])}**")
    return redact_text("\n".join(lines)) or ""


def report_link(path: Path, reports_dir: Path, public_url: str | None) -> str:
    """Where a browser opens ``path``: under ``reports.public_url`` when set (the reports folder as
    published), else the worker's ``file://`` path (which opens only on the worker itself)."""
    path = path.resolve()
    if public_url:
        try:
            relative = path.relative_to(reports_dir.resolve()).as_posix()
        except ValueError:
            relative = path.name
        return public_url.rstrip("/") + "/" + quote(relative)
    return path.as_uri()


def links_markdown(links: list[tuple[str, str, str]], public: bool) -> str:
    """The reports as a markdown list (text, url, what it is for), with a note when not published."""
    lines = ["", "## Reports", ""]
    lines += [f"- [{md_text(text)}]({url}): {md_text(purpose)}" for text, url, purpose in links]
    if not public:
        lines += [
            "",
            "These are paths on the worker: set `reports.public_url` in the config to where the "
            "reports folder is published to make them links that open from here.",
        ]
    return "\n".join(lines)


LINK_PURPOSES = {
    "html": "open this first: KPIs, money at risk, the exceptions to act on first",
    "xlsx": "the workbook finance reviews (Status / Comment)",
    "data_docs": "the data-quality checks",
}


@task(name="report", cache_policy=NO_CACHE, task_run_name="report-{result.period}")
def report(config_path: str, result: PeriodResult) -> dict[str, str]:
    settings = settings_from(config_path)
    logger = get_run_logger()
    paths, data = write_reports(
        result, settings.reports_dir, warehouse(settings.warehouse_url), systems=source_systems(settings)
    )
    key = f"oafin-{result.company_code}-{result.period}".lower()
    as_of = f"{result.as_of:%Y-%m-%d %H:%M} UTC"
    create_table_artifact(
        key=f"{key}-counts",
        table=counts_table(data),
        description=f"Exceptions by type, {result.company_code} {result.period} as of {as_of}",
    )
    # The run's scalar figures, for the group close's summary across companies (flows/group_close.py).
    create_table_artifact(
        key=f"{key}-stats",
        # scalars only, ratios to 4 places (a long float's digits read like a phone number to a scan)
        table=[
            {
                k: round(v, 4) if isinstance(v, float) else v
                for k, v in result.stats.items()
                if not isinstance(v, dict | list)
            }
        ],
        description=f"Run figures, {result.company_code} {result.period} as of {as_of}",
    )
    public_url = settings.reports.public_url
    links = [("html", "report", "report.html"), ("xlsx", "workbook", paths["xlsx"].name)]
    if "data_docs" in paths:
        links.append(("data_docs", "data-docs", "Data Docs (Great Expectations)"))
    urls = {name: report_link(paths[name], settings.reports_dir, public_url) for name, _, _ in links}
    create_markdown_artifact(
        key=f"{key}-kpis",
        markdown=kpi_markdown(data)
        + links_markdown(
            [(text, urls[name], LINK_PURPOSES[name]) for name, _, text in links], bool(public_url)
        ),
        description=f"Summary: KPIs and the reports, {result.company_code} {result.period} as of {as_of}",
    )
    where = "" if public_url else " (a path on the worker; set reports.public_url to publish)"
    for name, suffix, text in links:
        create_link_artifact(
            key=f"{key}-{suffix}",
            link=urls[name],
            link_text=text,
            description=f"{LINK_PURPOSES[name].capitalize()}{where}",
        )
    q = data.quality or {}
    if q.get("error") or q.get("failures"):
        logger.warning(
            "data quality: %d of %d expectations passed; %s",
            q.get("passed", 0),
            q.get("evaluated", 0),
            redact_text("; ".join(q.get("failures", [])[:5]) or q.get("error") or ""),
        )
    logger.info("reports written to %s", paths["html"].parent)
    return {k: str(v) for k, v in paths.items()}
