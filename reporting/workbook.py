"""reconciliation.xlsx: a summary sheet and one sheet per exception type, for finance to work in.

Written with xlsxwriter in constant-memory mode: rows are streamed, so large periods stay cheap.
Ids are written as text (Excel keeps leading zeros), money as ¥ with two decimals.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import xlsxwriter

from oafin.standard import EXCEPTION_TYPES
from reporting.exceptions_csv import report_frame

REASONS = {
    "MISSING_IN_FINANCE": "OA已审批，财务无单据 / approved in OA, nothing in finance",
    "MISSING_IN_OA": "财务有单据，OA无审批 / in finance with no OA approval",
    "AMOUNT_MISMATCH": "金额不一致 / amounts differ",
    "STATUS_MISMATCH": "状态不一致 / status differs",
    "PAYEE_MISMATCH": "收款人不一致 / paid to someone else",
    "DUPLICATE_PAYMENT": "重复付款 / paid more than once",
    "DUPLICATE_INVOICE": "发票重复使用 / invoice used twice",
    "INVALID_INVOICE": "发票无效 / invoice fails its checks",
    "SELF_APPROVAL": "自己审批自己 / approved own claim",
    "APPROVAL_LIMIT": "超审批权限 / over the approver's limit",
    "BUDGET_OVERRUN": "超预算 / over budget",
    "LATE_PAYMENT": "付款超期 / paid after the SLA",
    "UNMAPPED_CODE": "编码无法映射 / value the mapping does not know",
    "CONTRACT_VIOLATION": "数据不合规 / failed its data contract",
}
SHEET_COLUMNS = [
    ("exception_id", "Exception id", 18, "text"),
    ("claim_no", "OA no. 审批单号", 20, "text"),
    ("doc_no", "Finance doc 财务单号", 18, "text"),
    ("invoice_no", "Invoice 发票", 24, "text"),
    ("budget_code", "Budget 预算", 14, "text"),
    ("person_id", "Person 人员", 10, "text"),
    ("amount_fen", "Amount 金额 (¥)", 16, "money"),
    ("reason", "Reason 原因", 36, "text"),
    ("detail", "Detail 说明", 48, "text"),
    ("first_seen", "First seen", 20, "text"),
    ("last_seen", "Last seen", 20, "text"),
    ("status", "Status 状态", 14, "text"),
    ("comment", "Reviewer comment 备注", 30, "text"),
]


def write_workbook(exceptions: pd.DataFrame, summary: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = report_frame(exceptions)
    frame["reason"] = frame["exception_type"].map(REASONS)
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_formulas": False})
    try:
        fmt = {
            "head": wb.add_format({"bold": True, "bg_color": "#DDE7F0", "border": 1, "text_wrap": True}),
            "money": wb.add_format({"num_format": "¥#,##0.00"}),
            "title": wb.add_format({"bold": True, "font_size": 14}),
        }
        _summary_sheet(wb, fmt, frame, summary)
        for kind in EXCEPTION_TYPES:
            rows = frame.loc[frame["exception_type"] == kind]
            if not rows.empty:
                _type_sheet(wb, fmt, kind, rows)
    finally:
        wb.close()
    return path


def _summary_sheet(wb: Any, fmt: dict[str, Any], frame: pd.DataFrame, summary: dict[str, Any]) -> None:
    ws = wb.add_worksheet("Summary")
    ws.set_column(0, 0, 36)
    ws.set_column(1, 2, 18)
    ws.write(0, 0, f"oafin reconciliation {summary.get('period', '')}", fmt["title"])
    row = 2
    for key, value in summary.items():
        if isinstance(value, dict | list):
            continue
        ws.write_string(row, 0, str(key))
        if isinstance(value, int | float) and not isinstance(value, bool):
            ws.write_number(row, 1, value)
        else:
            ws.write_string(row, 1, "" if value is None else str(value))
        row += 1
    row += 1
    ws.write_row(row, 0, ["Exception type 异常类型", "Count 数量", "Amount 金额 (¥)"], fmt["head"])
    for kind in EXCEPTION_TYPES:
        rows = frame.loc[frame["exception_type"] == kind]
        row += 1
        ws.write_string(row, 0, kind)
        ws.write_number(row, 1, len(rows))
        ws.write_number(row, 2, int(rows["amount_fen"].fillna(0).abs().sum()) / 100, fmt["money"])


def _type_sheet(wb: Any, fmt: dict[str, Any], kind: str, rows: pd.DataFrame) -> None:
    ws = wb.add_worksheet(kind[:31])
    for col, (_key, label, width, _kind) in enumerate(SHEET_COLUMNS):
        ws.set_column(col, col, width)
        ws.write_string(0, col, label, fmt["head"])
    ws.freeze_panes(1, 0)
    for r, rec in enumerate(rows.to_dict("records"), start=1):
        for c, (key, _label, _width, kind_) in enumerate(SHEET_COLUMNS):
            value = rec.get(key)
            if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
                ws.write_blank(r, c, None)
            elif kind_ == "money":
                ws.write_number(r, c, int(value) / 100, fmt["money"])
            else:
                ws.write_string(r, c, str(value))
    ws.autofilter(0, 0, max(len(rows), 1), len(SHEET_COLUMNS) - 1)
