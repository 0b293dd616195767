"""report.html: one self-contained page with the KPIs the business is judged on, charts and exceptions.

Self-contained: inline CSS, inline SVG charts, a few lines of inline script for paging; a
Content-Security-Policy meta tag forbids every network fetch, so a stray external reference would
be blocked and show up as a console error (which the browser test treats as a failure).

Big periods: the exception list embeds at most ``MAX_ROWS`` rows as JSON, in the order finance
acts on them (money already paid out wrongly first, then by money at risk; ``context``), and
pages through them 50 at a time; the summaries above it always cover every exception, and
the workbook and CSV hold all rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

from oafin.periods import SHANGHAI
from oafin.reporting.context import AGE_LABELS, PAIR_FIELDS, ReportData, pair_summary, reason_of
from oafin.reporting.labels_zh import RISK_DEFINITIONS, status_label, type_label, type_name
from oafin.reporting.redact import redact_text

MAX_ROWS = 5000
PAGE_SIZE = 50
_env = Environment(
    loader=PackageLoader("oafin.reporting", "templates"), autoescape=select_autoescape(["html", "j2"])
)


def wrap_groups(text: str) -> Markup:
    """A figure that may break only between its digit groups (``¥1,234,<wbr>567.00``): a large
    amount wraps inside its KPI card instead of running out of it."""
    return Markup(",<wbr>").join(escape(part) for part in str(text).split(","))


_env.filters["wrap_groups"] = wrap_groups


def yuan(fen: int | None) -> str:
    """``123456`` fen → ``¥1,234.56``."""
    if fen is None or pd.isna(fen):
        return ""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


def pct(value: float | None) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:.1%}"


def days(value: float | None) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:.1f} d"


def _text(value: Any) -> str:
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value):
        return ""
    return redact_text(str(value)) or ""


def _date(value: Any) -> str:
    if value is None or value is pd.NaT or pd.isna(value):
        return ""
    return pd.Timestamp(value).tz_convert(SHANGHAI).strftime("%Y-%m-%d")


def _hbars(items: list[tuple[Any, Any, Any]], width: int = 420) -> list[dict[str, Any]]:
    """Horizontal bar geometry: (label, value, shown text) → rows with a bar length in px."""
    top = max((v for _, v, _ in items), default=0) or 1
    return [
        {"label": label, "value": value, "text": text, "w": round(width * value / top, 1)}
        for label, value, text in items
    ]


def _trend_chart(trend: pd.DataFrame, w: int = 560, h: int = 220) -> dict[str, Any]:
    """Line chart geometry for median and p90 cycle days per period."""
    pts = trend.dropna(subset=["median_days"]).to_dict("records")
    left, right, top, bottom = 48, 56, 24, 36
    ymax = max([float(r["p90_days"] or 0) for r in pts] + [1.0])
    ymax = float(int(ymax) + 1)
    n = len(pts)

    def x(i: int) -> float:
        return round(left + (w - left - right) * (0.5 if n == 1 else i / (n - 1)), 1)

    def y(v: float) -> float:
        return round(top + (h - top - bottom) * (1 - v / ymax), 1)

    series = []
    for key, colour, name in (("median_days", "#3f7cbf", "median"), ("p90_days", "#d9822b", "p90")):
        points = [{"x": x(i), "y": y(float(r[key])), "v": f"{float(r[key]):.1f}"} for i, r in enumerate(pts)]
        series.append(
            {
                "name": name,
                "colour": colour,
                "points": points,
                "path": " ".join(f"{p['x']},{p['y']}" for p in points),
            }
        )
    ticks = [{"y": y(v), "label": f"{v:g}"} for v in (0, ymax / 2, ymax)]
    labels = [{"x": x(i), "label": r["period"]} for i, r in enumerate(pts)]
    return {
        "w": w,
        "h": h,
        "series": series,
        "ticks": ticks,
        "labels": labels,
        "left": left,
        "bottom": h - bottom,
    }


def _rows_json(ex: pd.DataFrame) -> tuple[str, int]:
    """The exceptions the page lists (in ``ex``'s order: what to act on first; at most ``MAX_ROWS``)."""
    shown = ex.head(MAX_ROWS)
    rows = [
        [
            _text(type_label(r["exception_type"])),
            _text(r["claim_no"]) or _text(r["doc_no"]) or _text(r["invoice_no"]) or _text(r["budget_code"]),
            _text(r["person_name"]),
            _text(r["department"]),
            yuan(r["risk_fen"]) if r["risk_fen"] else "—",
            _text(r["risk_category"]),
            _date(r["event_at"]),
            "" if pd.isna(r["age_days"]) else int(r["age_days"]),
            _text(r["detail_text"]),
            _text(status_label(r["status"])),
            _text(r.get("history")),
            _text(r.get("pair")),
        ]
        for r in shown.to_dict("records")
    ]
    text = json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
    # Inside <script>: nothing may close the element or open a comment.
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"), len(rows)


def render_html(data: ReportData) -> str:
    k = data.kpis
    kpis = [
        ("risk_fen", "Money at risk 风险金额", yuan(k["risk_fen"]), k["risk_fen"]),
        (
            "risk_paid_out_fen",
            "Paid out wrongly 已付出需追回",
            yuan(k["risk_paid_out_fen"]),
            k["risk_paid_out_fen"],
        ),
        ("exceptions", "Exceptions 异常", f"{k['exceptions']:,}", k["exceptions"]),
        (
            "control_findings",
            "Control findings 内控发现",
            f"{k['control_findings']:,}",
            k["control_findings"],
        ),
        (
            "auto_match_rate",
            "Auto-match rate 自动匹配率",
            pct(k.get("auto_match_rate")),
            k.get("auto_match_rate"),
        ),
        (
            "cycle_median_days",
            "Approval→payment median 审批到付款中位数",
            days(k.get("cycle_median_days")),
            k.get("cycle_median_days"),
        ),
        ("cycle_p90_days", "Approval→payment p90", days(k.get("cycle_p90_days")), k.get("cycle_p90_days")),
        (
            "data_accuracy",
            "Records passing contracts 数据合规率",
            pct(k.get("data_accuracy")),
            k.get("data_accuracy"),
        ),
    ]
    totals = [
        (
            "risk_unapproved_fen",
            "In finance without approval 无审批入账/付款",
            yuan(k["risk_unapproved_fen"]),
            k["risk_unapproved_fen"],
        ),
        (
            "risk_over_limit_fen",
            "Above a limit or budget 超限额",
            yuan(k["risk_over_limit_fen"]),
            k["risk_over_limit_fen"],
        ),
        ("risk_unpaid_fen", "Owed, not paid 应付未付", yuan(k["risk_unpaid_fen"]), k["risk_unpaid_fen"]),
        (
            "exceptions_open",
            "Open 未处理 (incl. reopened)",
            f"{k['exceptions_open']:,}",
            k["exceptions_open"],
        ),
        (
            "exceptions_reopened",
            "Reopened 重新打开",
            f"{k['exceptions_reopened']:,}",
            k["exceptions_reopened"],
        ),
        ("claims_in_scope", "Claims in scope 本期审批单", f"{k['claims_in_scope']:,}", k["claims_in_scope"]),
        ("approved_in_scope", "Approved 已审批", f"{k['approved_in_scope']:,}", k["approved_in_scope"]),
        ("matched_claims", "Matched claims 已匹配", f"{k['matched_claims']:,}", k["matched_claims"]),
        ("matched_fen", "Matched amount 已匹配金额", yuan(k["matched_fen"]), k["matched_fen"]),
        ("unmatched_claims", "Unmatched claims 未匹配", f"{k['unmatched_claims']:,}", k["unmatched_claims"]),
        ("unmatched_fen", "Unmatched amount 未匹配金额", yuan(k["unmatched_fen"]), k["unmatched_fen"]),
        (
            "missing_in_oa_fen",
            "In finance, not in OA 财务无OA",
            yuan(k["missing_in_oa_fen"]),
            k["missing_in_oa_fen"],
        ),
        (
            "docs_in_scope",
            "Finance docs in scope 本期财务单据",
            f"{k.get('docs_in_scope') or 0:,}",
            k.get("docs_in_scope"),
        ),
    ]
    by_type = [
        {
            "type": r["exception_type"],
            "name": type_name(r["exception_type"]),
            "reason": reason_of(r["exception_type"])[0],
            "count": int(r["count"]),
            "amount_fen": int(r["risk_fen"]),
            "amount": yuan(r["risk_fen"]) if r["risk_fen"] else "—",
            "definition": RISK_DEFINITIONS.get(r["exception_type"], (None, ""))[1],
        }
        for r in data.by_type.to_dict("records")
    ]
    age_totals = [(a, int(data.by_age[a].sum()) if len(data.by_age) else 0) for a in AGE_LABELS]
    ages = [
        {"type": r["exception_type"], "cells": [int(r[a]) for a in AGE_LABELS]}
        for r in data.by_age.to_dict("records")
    ]
    deps = [
        {
            "department": str(r["department"]),
            "count": int(r["count"]),
            "amount_fen": int(r["risk_fen"]),
            "amount": yuan(r["risk_fen"]),
        }
        for r in data.top_departments.to_dict("records")
    ]
    trend = [
        {
            "period": r["period"],
            "n": int(r["n"]),
            "median": days(r["median_days"]),
            "p90": days(r["p90_days"]),
        }
        for r in data.cycle_trend.to_dict("records")
    ]
    pairs = [
        {
            "pair": p["pair"],
            "cells": [
                "—" if p[name] is None else (yuan(p[name]) if name.endswith("_fen") else f"{p[name]:,}")
                for name in PAIR_FIELDS
            ],
            "values": ["" if p[name] is None else p[name] for name in PAIR_FIELDS],
        }
        for p in pair_summary(data.stats)
    ]
    rows_json, n_rows = _rows_json(data.exceptions)
    return _env.get_template("report.html.j2").render(
        period=data.period,
        company_code=data.company_code,
        as_of=pd.Timestamp(data.as_of).tz_convert(SHANGHAI).strftime("%Y-%m-%d %H:%M"),
        kpis=[{"key": a, "label": b, "text": c, "value": "" if d is None else d} for a, b, c, d in kpis],
        pairs=pairs,
        pair_fields=PAIR_FIELDS,
        totals=[{"key": a, "label": b, "text": c, "value": "" if d is None else d} for a, b, c, d in totals],
        by_type=by_type,
        type_bars=_hbars([(r["name"], r["count"], f"{r['count']:,}") for r in by_type]),
        age_labels=AGE_LABELS,
        age_bars=_hbars([(a, n, f"{n:,}") for a, n in age_totals]),
        ages=ages,
        workbook=data.links.get("workbook", "reconciliation.xlsx"),
        deps=deps,
        dep_bars=_hbars([(d["department"], d["amount_fen"], d["amount"]) for d in deps], width=300),
        trend=trend,
        trend_chart=_trend_chart(data.cycle_trend),
        quality=data.quality,
        links=data.links,
        rows_json=rows_json,
        n_rows=n_rows,
        n_exceptions=len(data.exceptions),
        page_size=PAGE_SIZE,
    )


def write_html_report(data: ReportData, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(data), encoding="utf-8")
    return path
