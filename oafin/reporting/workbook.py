"""reconciliation.xlsx: a summary sheet and one sheet per exception type, for finance to work in.

Written with xlsxwriter in constant-memory mode: rows are streamed to disk one at a time, so a
period with 100k exceptions stays cheap (``bench/reports.py`` measures it). Each sheet is written
top to bottom exactly once, which is what constant-memory mode requires.

- ids are written as text cells in a text-formatted column (Excel keeps leading zeros);
- money as numbers in yuan with the ``¥#,##0.00`` format; dates as real Excel dates (China time);
- the two columns a reviewer edits, "Status 状态" (a drop-down of the lifecycle statuses in
  Chinese and English, ``已确认 acknowledged``) and "Comment 备注", are shaded; ``oafin review
  import`` reads them back by their header text;
- Chinese first: sheet tabs are the exception types' Chinese names (``labels_zh``), the type
  column shows the Chinese name with the code beside it, details are Chinese sentences;
- a very hidden sheet ``oafin_stamp`` records what was written: the workbook's generation, its
  company, period and as-of, and each row's status and comment as written, with a digest. The
  import applies only the cells a reviewer changed against it, and refuses a row the warehouse
  has changed since (a later decision is never reverted by an older workbook).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import xlsxwriter

from oafin.periods import SHANGHAI
from oafin.reporting.context import AGE_LABELS, PAIR_FIELDS, ReportData, pair_summary, reason_of
from oafin.reporting.labels_zh import RISK_DEFINITIONS, sheet_name, status_label, type_label
from oafin.reporting.redact import redact_text
from oafin.standard import EXCEPTION_STATUSES, EXCEPTION_TYPES

# Kept for callers of the skeleton's one-line reasons.
REASONS = {k: f"{reason_of(k)[0]} / {reason_of(k)[1]}" for k in EXCEPTION_TYPES}

ID_HEADER = "Exception id 异常编号"
STATUS_HEADER = "Status 状态"
COMMENT_HEADER = "Comment 备注"

SUMMARY_SHEET = "汇总 Summary"
STAMP_SHEET = "oafin_stamp"
STAMP_MARK = "oafin-review-workbook"
STAMP_VERSION = 1

# (source column, header, width, kind); kind: text | id | money | date | int | status | comment
SHEET_COLUMNS: list[tuple[str, str, int, str]] = [
    ("exception_id", ID_HEADER, 18, "id"),
    ("claim_no", "OA no. 审批单号", 18, "id"),
    ("doc_no", "Finance doc 财务单号", 16, "id"),
    ("invoice_no", "Invoice 发票号", 24, "id"),
    ("budget_code", "Budget 预算科目", 14, "id"),
    ("type_label", "Type 类型", 22, "text"),
    ("person_name", "Name 姓名", 10, "text"),
    ("department", "Department 部门", 12, "text"),
    ("risk_fen", "At risk 风险金额 (¥)", 15, "money"),
    ("risk_category", "Category 风险类别", 14, "text"),
    ("amount_fen", "Amount 涉及金额 (¥)", 15, "money"),
    ("event_at", "Date 业务日期", 12, "date"),
    ("age_days", "Age 账龄 (days)", 9, "int"),
    ("reason_zh", "原因", 20, "text"),
    ("detail_text", "Detail 说明", 50, "text"),
    ("pair", "Pair 对账环节", 18, "text"),
    ("history", "History 处理记录", 40, "text"),
    ("first_seen", "First seen 首次发现", 12, "date"),
    ("last_seen", "Last seen 最近发现", 12, "date"),
    ("person_id", "Person id 人员编号", 11, "id"),
    ("status", STATUS_HEADER, 16, "status"),
    ("comment", COMMENT_HEADER, 36, "comment"),
]
STATUS_CHOICES = [status_label(s) for s in EXCEPTION_STATUSES]


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)


def _local(value: Any) -> datetime:
    """An aware instant as the naive China-time datetime Excel shows."""
    return pd.Timestamp(value).tz_convert(SHANGHAI).tz_localize(None).to_pydatetime()


def yuan_value(fen: int) -> float:
    """Fen to a yuan number for a spreadsheet cell; exact to the fen up to 2**53 fen."""
    return int(fen) / 100


def write_workbook(data: ReportData, path: Path, *, generation: str | None = None) -> Path:
    """Write the workbook; ``generation`` names this writing (the run stamp; default: its file name)."""
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
        _stamp_sheet(wb, data, generation or path.stem)
    finally:
        wb.close()
    return path


def stamp_digest(head: list[Any], rows: list[list[Any]]) -> str:
    """The digest of a stamp's header fields and rows (what the import checks before trusting it)."""
    text = json.dumps([head, rows], ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _stamp_sheet(wb: Any, data: ReportData, generation: str) -> None:
    """The very hidden sheet of what was written: baseline status and comment per exception."""
    ex = data.exceptions
    comments = [None if _missing(c) else str(c) for c in ex["comment"]]
    rows = [[str(i), str(s), c] for i, s, c in zip(ex["exception_id"], ex["status"], comments, strict=True)]
    head = [
        STAMP_MARK,
        STAMP_VERSION,
        data.company_code,
        data.period,
        pd.Timestamp(data.as_of).isoformat(),
        generation,
    ]
    ws = wb.add_worksheet(STAMP_SHEET)
    for c, value in enumerate([*head, stamp_digest(head, rows)]):
        ws.write(0, c, value) if not isinstance(value, str) else ws.write_string(0, c, value)
    for n, (eid, status, comment) in enumerate(rows, start=1):
        ws.write_string(n, 0, eid)
        ws.write_string(n, 1, status)
        if comment is not None:
            ws.write_string(n, 2, comment)
    ws.very_hidden()


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
        ("Exceptions 异常数 (shown, ignored ones left out)", k.get("exceptions"), "int"),
        ("  of which open 未处理 (incl. reopened 重新打开)", k.get("exceptions_open"), "int"),
        ("  of which reopened 重新打开", k.get("exceptions_reopened"), "int"),
        ("Money at risk 风险金额", k.get("risk_fen"), "money"),
        ("  paid out wrongly 已付出需追回", k.get("risk_paid_out_fen"), "money"),
        ("  in finance without approval 无审批入账/付款", k.get("risk_unapproved_fen"), "money"),
        ("  above a limit or budget 超限额", k.get("risk_over_limit_fen"), "money"),
        ("  owed, not paid 应付未付", k.get("risk_unpaid_fen"), "money"),
        ("Control findings 内控发现 (no money at risk)", k.get("control_findings"), "int"),
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
    ws = wb.add_worksheet(SUMMARY_SHEET)
    ws.set_landscape()
    ws.fit_to_pages(1, 0)  # printed (and PDF-rendered) one page wide
    ws.set_column(0, 0, 50)
    ws.set_column(1, 7, 14)
    ws.write_string(0, 0, f"对账报告 Reconciliation {data.company_code} {data.period}", fmt["title"])
    as_of = _local(data.as_of).strftime("%Y-%m-%d %H:%M")
    ws.write_string(
        1,
        0,
        f"截至 {as_of}（北京时间）· 每类异常一张工作表 · 在“Status 状态”和“Comment 备注”列填写后运行 "
        f"oafin review import（as of {as_of} China time; edit Status and Comment, then import this file）",
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

    pairs = pair_summary(data.stats)
    if pairs:
        row += 2
        ws.write_string(row, 0, "Chain pairs 链路各环节对账", fmt["section"])
        row += 1
        heads = [
            "Pair 对账环节",
            "Matched 已匹配",
            "Matched 已匹配金额 (¥)",
            "No counterpart 无对应",
            "No counterpart 无对应金额 (¥)",
            "Differing 不一致",
            "Difference 差额 (¥)",
        ]
        ws.write_row(row, 0, heads, fmt["head"])
        for pair in pairs:
            row += 1
            ws.write_string(row, 0, pair["pair"])
            for i, name in enumerate(PAIR_FIELDS, start=1):
                value = pair[name]
                if value is None:
                    ws.write_string(row, i, "—")
                elif name.endswith("_fen"):
                    ws.write_number(row, i, yuan_value(value), fmt["money"])
                else:
                    ws.write_number(row, i, value, fmt["int"])

    row += 2
    ws.write_string(row, 0, "Exceptions by type and age 异常类型与账龄", fmt["section"])
    row += 1
    heads = [
        "Type 类型",
        "Count 数量",
        "At risk 风险金额 (¥)",
        *[f"{a}" for a in AGE_LABELS],
        "Money at risk 风险金额定义",
    ]
    ws.write_row(row, 0, heads, fmt["head"])
    ages = data.by_age.set_index("exception_type") if len(data.by_age) else None
    for rec in data.by_type.to_dict("records"):
        row += 1
        kind = rec["exception_type"]
        ws.write_string(row, 0, f"{type_label(kind)} — {reason_of(kind)[0]}")
        ws.write_number(row, 1, int(rec["count"]), fmt["int"])
        ws.write_number(row, 2, yuan_value(rec["risk_fen"]), fmt["money"])
        for i, label in enumerate(AGE_LABELS):
            n = int(ages.at[kind, label]) if ages is not None and kind in ages.index else 0  # type: ignore[arg-type]  # a count
            ws.write_number(row, 3 + i, n, fmt["int"])
        ws.write_string(row, 3 + len(AGE_LABELS), RISK_DEFINITIONS.get(kind, (None, ""))[1])
    row += 1
    ws.write_string(row, 0, "Total 合计", fmt["bold"])
    ws.write_number(row, 1, int(data.by_type["count"].sum()) if len(data.by_type) else 0, fmt["int"])
    total_fen = int(data.by_type["risk_fen"].sum()) if len(data.by_type) else 0
    ws.write_number(row, 2, yuan_value(total_fen), fmt["money_bold"])
    row += 1
    ws.write_string(
        row,
        0,
        "账龄：业务日期（审批、记账、付款或被隔离记录的日期）到截止日的天数。风险金额按类型定义（见右列）；"
        "内控发现不计金额。Age: days from the record's business date to as-of.",
        fmt["muted"],
    )

    row += 2
    ws.write_string(row, 0, "Top departments by money at risk 风险金额最高的部门", fmt["section"])
    row += 1
    ws.write_row(row, 0, ["Department 部门", "Count 数量", "At risk 风险金额 (¥)"], fmt["head"])
    for rec in data.top_departments.to_dict("records"):
        row += 1
        ws.write_string(row, 0, str(rec["department"]))
        ws.write_number(row, 1, int(rec["count"]), fmt["int"])
        ws.write_number(row, 2, yuan_value(rec["risk_fen"]), fmt["money"])

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
    ws = wb.add_worksheet(sheet_name(kind))
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
            if kind_ == "status":
                ws.write_string(n, c, status_label(value), fmt["edit"])
            elif kind_ == "comment":
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
            "source": STATUS_CHOICES,
            "input_title": "Status 状态",
            "input_message": "选择处理状态 / choose a status",
        },
    )
    ws.autofilter(0, 0, last, len(columns) - 1)
