"""reconciliation.xlsx: a summary sheet and one sheet per exception type, for finance to work in.

Written with xlsxwriter in constant-memory mode: rows are streamed to disk one at a time, so a
period with 100k exceptions stays cheap (``bench/reports.py`` measures it). Each sheet is written
top to bottom exactly once, which is what constant-memory mode requires.

- ids are written as text cells in a text-formatted column (Excel keeps leading zeros);
- money as numbers in yuan with the ``¥#,##0.00`` format; dates as real Excel dates (China time);
- the two columns a reviewer edits, "Status 状态" (a drop-down of the lifecycle statuses) and
  "Comment 备注", are shaded; ``oafin review import`` reads them back by their header text.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import xlsxwriter

from oafin.periods import SHANGHAI
from oafin.reporting.context import AGE_LABELS, ReportData, reason_of
from oafin.reporting.redact import redact_text
from oafin.standard import EXCEPTION_STATUSES, EXCEPTION_TYPES

# Kept for callers of the skeleton's one-line reasons.
REASONS = {k: f"{reason_of(k)[0]} / {reason_of(k)[1]}" for k in EXCEPTION_TYPES}

ID_HEADER = "Exception id 异常编号"
STATUS_HEADER = "Status 状态"
COMMENT_HEADER = "Comment 备注"

# (source column, header, width, kind); kind: text | id | money | date | int | status | comment
SHEET_COLUMNS: list[tuple[str, str, int, str]] = [
    ("exception_id", ID_HEADER, 18, "id"),
    ("claim_no", "OA no. 审批单号", 18, "id"),
    ("doc_no", "Finance doc 财务单号", 16, "id"),
    ("invoice_no", "Invoice 发票号", 24, "id"),
    ("budget_code", "Budget 预算科目", 14, "id"),
    ("person_id", "Person id 人员编号", 11, "id"),
    ("person_name", "Name 姓名", 10, "text"),
    ("department", "Department 部门", 12, "text"),
    ("amount_fen", "Amount 金额 (¥)", 15, "money"),
    ("event_at", "Date 业务日期", 12, "date"),
    ("age_days", "Age 账龄 (days)", 9, "int"),
    ("reason_zh", "原因", 20, "text"),
    ("reason_en", "Reason", 32, "text"),
    ("detail_text", "Detail 说明", 50, "text"),
    ("first_seen", "First seen 首次发现", 12, "date"),
    ("last_seen", "Last seen 最近发现", 12, "date"),
    ("status", STATUS_HEADER, 14, "status"),
    ("comment", COMMENT_HEADER, 36, "comment"),
]


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)


def _local(value: Any) -> datetime:
    """An aware instant as the naive China-time datetime Excel shows."""
    return pd.Timestamp(value).tz_convert(SHANGHAI).tz_localize(None).to_pydatetime()


def yuan_value(fen: int) -> float:
    """Fen to a yuan number for a spreadsheet cell; exact to the fen up to 2**53 fen."""
    return int(fen) / 100


def write_workbook(data: ReportData, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(
        str(path), {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    )
    try:
        fmt = _formats(wb)
        _summary_sheet(wb, fmt, data)
        for kind in [
            *EXCEPTION_TYPES,
            *sorted(set(data.exceptions["exception_type"]) - set(EXCEPTION_TYPES)),
        ]:
            rows = data.exceptions.loc[data.exceptions["exception_type"] == kind]
            if not rows.empty:
                _type_sheet(wb, fmt, kind, rows)
    finally:
        wb.close()
    return path


def _formats(wb: Any) -> dict[str, Any]:
    head = {"bold": True, "bg_color": "#DDE7F0", "border": 1, "text_wrap": True, "valign": "top"}
    return {
        "head": wb.add_format(head),
        "head_edit": wb.add_format({**head, "bg_color": "#FFE9A8"}),
        "money": wb.add_format({"num_format": "¥#,##0.00"}),
        "money_bold": wb.add_format({"num_format": "¥#,##0.00", "bold": True}),
        "date": wb.add_format({"num_format": "yyyy-mm-dd"}),
        "int": wb.add_format({"num_format": "0"}),
        "pct": wb.add_format({"num_format": "0.0%"}),
        "num1": wb.add_format({"num_format": "0.0"}),
        "id": wb.add_format({"num_format": "@"}),
        "edit": wb.add_format({"bg_color": "#FFF6D5", "num_format": "@"}),
        "title": wb.add_format({"bold": True, "font_size": 14}),
        "section": wb.add_format({"bold": True, "font_size": 12, "font_color": "#1F4E79"}),
        "muted": wb.add_format({"font_color": "#66707A", "italic": True}),
        "wrap": wb.add_format({"text_wrap": True, "valign": "top"}),
        "bold": wb.add_format({"bold": True}),
    }


def _kpi_rows(data: ReportData) -> list[tuple[str, Any, str]]:
    k = data.kpis
    return [
        ("Auto-match rate 自动匹配率", k.get("auto_match_rate"), "pct"),
        ("Data accuracy 数据合规率 (records passing contracts)", k.get("data_accuracy"), "pct"),
        ("Exceptions 异常数", k.get("exceptions"), "int"),
        ("  of which open 未处理", k.get("exceptions_open"), "int"),
        ("Exception amount 异常金额", k.get("exceptions_amount_fen"), "money"),
        ("Claims in scope 本期审批单", k.get("claims_in_scope"), "int"),
        ("Approved claims 本期已审批", k.get("approved_in_scope"), "int"),
        ("Matched claims 已匹配", k.get("matched_claims"), "int"),
        ("Matched amount 已匹配金额", k.get("matched_fen"), "money"),
        ("Unmatched claims 未匹配", k.get("unmatched_claims"), "int"),
        ("Unmatched amount 未匹配金额", k.get("unmatched_fen"), "money"),
        ("Finance docs with no OA claim 财务无OA金额", k.get("missing_in_oa_fen"), "money"),
        ("Finance docs in scope 本期财务单据", k.get("docs_in_scope"), "int"),
        ("Approval-to-payment median 审批到付款中位数 (days)", k.get("cycle_median_days"), "num1"),
        ("Approval-to-payment p90 审批到付款P90 (days)", k.get("cycle_p90_days"), "num1"),
    ]


def _summary_sheet(wb: Any, fmt: dict[str, Any], data: ReportData) -> None:
    ws = wb.add_worksheet("Summary")
    ws.set_landscape()
    ws.fit_to_pages(1, 0)  # printed (and PDF-rendered) one page wide
    ws.set_column(0, 0, 50)
    ws.set_column(1, 7, 14)
    ws.write_string(0, 0, f"Reconciliation 对账 {data.company_code} {data.period}", fmt["title"])
    as_of = _local(data.as_of).strftime("%Y-%m-%d %H:%M")
    ws.write_string(
        1,
        0,
        f"as of {as_of} China time · one sheet per exception type · set Status and Comment there, "
        "then run: oafin review import reconciliation.xlsx",
        fmt["muted"],
    )
    row = 3
    ws.write_string(row, 0, "Key figures 关键指标", fmt["section"])
    for label, value, kind in _kpi_rows(data):
        row += 1
        ws.write_string(row, 0, label)
        if _missing(value):
            ws.write_string(row, 1, "—")
        elif kind == "money":
            ws.write_number(row, 1, yuan_value(value), fmt["money"])
        else:
            ws.write_number(row, 1, float(value), fmt[kind])

    row += 2
    ws.write_string(row, 0, "Exceptions by type and age 异常类型与账龄", fmt["section"])
    row += 1
    heads = ["Type 类型", "Count 数量", "Amount 金额 (¥)", *[f"{a}" for a in AGE_LABELS]]
    ws.write_row(row, 0, heads, fmt["head"])
    ages = data.by_age.set_index("exception_type") if len(data.by_age) else None
    for rec in data.by_type.to_dict("records"):
        row += 1
        kind = rec["exception_type"]
        ws.write_string(row, 0, f"{kind} — {reason_of(kind)[0]}")
        ws.write_number(row, 1, int(rec["count"]), fmt["int"])
        ws.write_number(row, 2, yuan_value(rec["amount_fen"]), fmt["money"])
        for i, label in enumerate(AGE_LABELS):
            n = int(ages.at[kind, label]) if ages is not None and kind in ages.index else 0  # type: ignore[arg-type]  # a count
            ws.write_number(row, 3 + i, n, fmt["int"])
    row += 1
    ws.write_string(row, 0, "Total 合计", fmt["bold"])
    ws.write_number(row, 1, int(data.by_type["count"].sum()) if len(data.by_type) else 0, fmt["int"])
    total_fen = int(data.by_type["amount_fen"].sum()) if len(data.by_type) else 0
    ws.write_number(row, 2, yuan_value(total_fen), fmt["money_bold"])
    row += 1
    ws.write_string(
        row,
        0,
        "Age: days from the approval, posting or payment date to as-of. Amount: absolute; "
        "for AMOUNT_MISMATCH the difference.",
        fmt["muted"],
    )

    row += 2
    ws.write_string(row, 0, "Top departments by exception amount 异常金额最高的部门", fmt["section"])
    row += 1
    ws.write_row(row, 0, ["Department 部门", "Count 数量", "Amount 金额 (¥)"], fmt["head"])
    for rec in data.top_departments.to_dict("records"):
        row += 1
        ws.write_string(row, 0, str(rec["department"]))
        ws.write_number(row, 1, int(rec["count"]), fmt["int"])
        ws.write_number(row, 2, yuan_value(rec["amount_fen"]), fmt["money"])

    row += 2
    ws.write_string(row, 0, "Approval-to-payment cycle by period 审批到付款周期", fmt["section"])
    row += 1
    ws.write_row(
        row, 0, ["Period 期间", "Paid claims 已付款", "Median 中位数 (days)", "P90 (days)"], fmt["head"]
    )
    for rec in data.cycle_trend.to_dict("records"):
        row += 1
        ws.write_string(row, 0, rec["period"])
        ws.write_number(row, 1, int(rec["n"]), fmt["int"])
        for col, key in ((2, "median_days"), (3, "p90_days")):
            if _missing(rec[key]):
                ws.write_string(row, col, "—")
            else:
                ws.write_number(row, col, float(rec[key]), fmt["num1"])

    if data.quality:
        row += 2
        q = data.quality
        ws.write_string(row, 0, "Data quality checks 数据质量校验 (Great Expectations)", fmt["section"])
        row += 1
        ws.write_string(row, 0, "Expectations passed 通过")
        ws.write_string(row, 1, f"{q.get('passed', 0)} / {q.get('evaluated', 0)}")
        for failure in q.get("failures", [])[:20]:
            row += 1
            ws.write_string(row, 0, redact_text(str(failure)) or "", fmt["wrap"])


OPTIONAL_KEYS = ("claim_no", "doc_no", "invoice_no", "budget_code")


def sheet_columns(rows: pd.DataFrame) -> list[tuple[str, str, int, str]]:
    """The sheet's columns: the business keys this type never fills are left out."""
    return [
        c
        for c in SHEET_COLUMNS
        if c[0] not in OPTIONAL_KEYS or rows[c[0]].map(lambda v: not _missing(v)).any()
    ]


def _cells(series: pd.Series, kind: str) -> list[Any]:
    """A column's cell values, converted once per column (not per cell): masked text, yuan
    numbers, naive China-time datetimes, ints; ``None`` for blanks."""
    if kind == "money":
        fen = pd.array(series, dtype="Int64").to_numpy(dtype=object, na_value=None)  # type: ignore[call-overload]  # stubs: a Series is valid input
        return [None if v is None else yuan_value(v) for v in fen]
    if kind == "int":
        return list(pd.array(series, dtype="Int64").to_numpy(dtype=object, na_value=None))  # type: ignore[call-overload]  # stubs: a Series is valid input
    if kind == "date":
        local = pd.to_datetime(series, utc=True).dt.tz_convert(SHANGHAI).dt.tz_localize(None)
        return [None if pd.isna(v) else v.to_pydatetime() for v in local]
    masked: dict[str, str] = {}  # masking is a regex pass: once per distinct value
    out: list[Any] = []
    for v in series.astype(object):
        if _missing(v):
            out.append(None)
            continue
        text = str(v)
        if text not in masked:
            masked[text] = redact_text(text) or ""
        out.append(masked[text])
    return out


def _type_sheet(wb: Any, fmt: dict[str, Any], kind: str, rows: pd.DataFrame) -> None:
    columns = sheet_columns(rows)
    ws = wb.add_worksheet(kind[:31])
    ws.set_landscape()
    ws.set_paper(9)  # A4
    ws.fit_to_pages(1, 0)
    ws.repeat_rows(0)
    for col, (_key, label, width, kind_) in enumerate(columns):
        ws.set_column(col, col, width, fmt["id"] if kind_ == "id" else None)
        ws.write_string(0, col, label, fmt["head_edit"] if kind_ in ("status", "comment") else fmt["head"])
    ws.set_row(0, 30)
    ws.freeze_panes(1, 2)  # header row and the exception id + OA number stay in view
    kinds = [c[3] for c in columns]
    values = [_cells(rows[key], kind_) for key, _label, _width, kind_ in columns]
    n = 0
    for n, row in enumerate(zip(*values, strict=True), start=1):
        for c, (value, kind_) in enumerate(zip(row, kinds, strict=True)):
            if kind_ in ("status", "comment"):
                ws.write_string(n, c, value or "", fmt["edit"])
            elif value is None:
                ws.write_blank(n, c, None)
            elif kind_ == "money":
                ws.write_number(n, c, value, fmt["money"])
            elif kind_ == "date":
                ws.write_datetime(n, c, value, fmt["date"])
            elif kind_ == "int":
                ws.write_number(n, c, value, fmt["int"])
            elif kind_ == "id":
                ws.write_string(n, c, value, fmt["id"])
            else:
                ws.write_string(n, c, value)
    last = max(n, 1)
    status_col = kinds.index("status")
    ws.data_validation(
        1,
        status_col,
        last,
        status_col,
        {
            "validate": "list",
            "source": list(EXCEPTION_STATUSES),
            "input_title": "Status 状态",
            "input_message": "open / acknowledged / resolved / ignored",
        },
    )
    ws.autofilter(0, 0, last, len(columns) - 1)
