"""report.html: one self-contained page (no network fetches) with the KPIs, a chart and the exceptions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from oafin.standard import EXCEPTION_TYPES
from reporting.exceptions_csv import report_frame
from reporting.workbook import REASONS

MAX_ROWS = 2000
_env = Environment(
    loader=PackageLoader("reporting", "templates"), autoescape=select_autoescape(["html", "j2"])
)


def yuan(fen: int | None) -> str:
    if fen is None or pd.isna(fen):
        return ""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


def _text(value: Any) -> str:
    return (
        "" if value is None or value is pd.NA or (isinstance(value, float) and value != value) else str(value)
    )


def write_html_report(exceptions: pd.DataFrame, summary: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = report_frame(exceptions)
    counts = frame.groupby("exception_type").size()
    top = max(int(counts.max()) if len(counts) else 1, 1)
    by_type = []
    for kind in EXCEPTION_TYPES:
        rows = frame.loc[frame["exception_type"] == kind]
        if rows.empty:
            continue
        by_type.append(
            {
                "type": kind,
                "reason": REASONS[kind],
                "count": len(rows),
                "bar": round(500 * len(rows) / top),
                "amount": yuan(int(rows["amount_fen"].fillna(0).abs().sum())),
            }
        )
    rate = summary.get("auto_match_rate")
    kpis = [
        {
            "key": "auto_match_rate",
            "label": "Auto-match rate 自动匹配率",
            "value": "—" if rate is None else f"{rate:.1%}",
        },
        {"key": "exceptions", "label": "Exceptions 异常", "value": len(frame)},
        {
            "key": "claims_in_scope",
            "label": "Claims in scope 本期审批单",
            "value": summary.get("claims_in_scope", 0),
        },
        {
            "key": "docs_in_scope",
            "label": "Finance docs 本期财务单据",
            "value": summary.get("docs_in_scope", 0),
        },
        {
            "key": "data_accuracy",
            "label": "Records passing contracts 数据合规率",
            "value": "—" if summary.get("data_accuracy") is None else f"{summary['data_accuracy']:.1%}",
        },
    ]
    shown = frame.head(MAX_ROWS)
    rows = [
        {
            "type": r["exception_type"],
            "claim": _text(r["claim_no"]),
            "doc": _text(r["doc_no"]),
            "invoice": _text(r["invoice_no"]),
            "budget": _text(r["budget_code"]),
            "amount": yuan(r["amount_fen"]),
            "detail": _text(r["detail"]),
            "status": _text(r["status"]),
            "first seen": _text(r["first_seen"]),
        }
        for r in shown.to_dict("records")
    ]
    html = _env.get_template("report.html.j2").render(
        period=summary.get("period", ""),
        company_code=summary.get("company_code", ""),
        as_of=summary.get("as_of", ""),
        n_exceptions=len(frame),
        kpis=kpis,
        by_type=by_type,
        columns=["type", "claim", "doc", "invoice", "budget", "amount", "detail", "status", "first seen"],
        rows=rows,
        truncated=len(frame) > MAX_ROWS,
    )
    path.write_text(html, encoding="utf-8")
    return path
