"""reconciliation.xlsx as a reviewer opens it: read back with openpyxl, cell by cell."""

from __future__ import annotations

from datetime import datetime

import pytest
from openpyxl import load_workbook

from oafin.reporting.workbook import COMMENT_HEADER, ID_HEADER, STATUS_HEADER, write_workbook
from tests.test_report_context import CARD, PHONE, RESIDENT_ID, report_data


@pytest.fixture
def workbook(tmp_path):
    path = write_workbook(report_data(), tmp_path / "reconciliation.xlsx")
    wb = load_workbook(path)  # not read-only: freeze panes, filters and validations are visible
    yield wb
    wb.close()


def rows_by_id(ws) -> dict[str, dict[str, object]]:
    header = [c.value for c in ws[1]]
    return {
        r[0].value: {h: c for h, c in zip(header, r, strict=False)}
        for r in ws.iter_rows(min_row=2)
        if r[0].value
    }


def test_one_sheet_per_type_after_the_summary(workbook):
    assert workbook.sheetnames == [
        "汇总 Summary",
        "财务漏记",
        "无审批付款",
        "金额不符",
        "编码无法映射",
        "oafin_stamp",
    ]
    assert workbook["财务漏记"].max_row == 3  # header + 2
    assert workbook["oafin_stamp"].sheet_state == "veryHidden"  # what the import compares edits with


def test_type_sheet_layout_frozen_filtered_and_editable(workbook):
    ws = workbook["财务漏记"]
    header = [c.value for c in ws[1]]
    assert header[0] == ID_HEADER and header[-2:] == [STATUS_HEADER, COMMENT_HEADER]
    assert (
        "Invoice 发票号" not in header and "Finance doc 财务单号" not in header
    )  # never filled for this type
    assert ws.freeze_panes == "C2"
    assert ws.auto_filter.ref == f"A1:{ws.cell(1, len(header)).column_letter}3"
    status_col = ws.cell(1, header.index(STATUS_HEADER) + 1).column_letter
    validations = ws.data_validations.dataValidation
    assert any(
        v.type == "list" and status_col in str(v.sqref) and "已确认 acknowledged" in v.formula1
        for v in validations
    )
    assert ws.column_dimensions["A"].width >= 15


def test_cells_have_the_right_types_and_formats(workbook):
    rows = rows_by_id(workbook["财务漏记"])
    e1 = rows["e1"]
    assert e1["OA no. 审批单号"].value == "0012345"  # text: the leading zeros survive
    assert e1["OA no. 审批单号"].data_type == "s"
    assert e1["Amount 涉及金额 (¥)"].value == pytest.approx(1234.56)
    assert e1["Amount 涉及金额 (¥)"].number_format == "¥#,##0.00"
    assert e1["At risk 风险金额 (¥)"].value == pytest.approx(1234.56)  # unpaid: the claim
    assert e1["Type 类型"].value == "财务漏记 MISSING_IN_FINANCE"
    assert isinstance(e1["First seen 首次发现"].value, datetime)
    assert e1["First seen 首次发现"].value == datetime(
        2026, 11, 1, 0, 0
    )  # 16:00 UTC is the next day in China
    assert e1["First seen 首次发现"].number_format == "yyyy-mm-dd"
    assert e1["Name 姓名"].value == "张三" and e1["Department 部门"].value == "财务部"
    assert e1["原因"].value == "OA已审批，财务无单据"
    assert e1["Detail 说明"].value == "2026-10-03 审批通过，报销金额 ¥1,234.56，财务系统中没有对应单据"
    assert e1[STATUS_HEADER].value == "未处理 open"
    e5 = rows["e5"]
    assert e5["Age 账龄 (days)"].value == 11
    assert e5["Detail 说明"].data_type == "s"  # "=HYPERLINK(..." stays text, never a formula
    e2 = rows_by_id(workbook["金额不符"])["e2"]
    assert e2["Amount 涉及金额 (¥)"].value == pytest.approx(-2.50)
    assert e2["At risk 风险金额 (¥)"].value == pytest.approx(2.50)  # underpaid: owed
    assert e2["Category 风险类别"].value == "应付未付"


def test_personal_numbers_are_masked_in_every_cell(workbook):
    texts = [
        str(c.value)
        for ws in workbook.worksheets
        for row in ws.iter_rows()
        for c in row
        if c.value is not None
    ]
    joined = "\n".join(texts)
    for secret in (CARD, PHONE, RESIDENT_ID):
        assert secret not in joined
    assert "*" * 15 + CARD[-4:] in joined


def test_summary_sheet_kpis_and_totals(workbook):
    ws = workbook["汇总 Summary"]
    cells = {r[0].value: r[1] for r in ws.iter_rows(min_col=1, max_col=3) if r[0].value}
    assert cells["Auto-match rate 自动匹配率"].value == pytest.approx(0.6667)
    assert cells["Auto-match rate 自动匹配率"].number_format == "0.0%"
    assert cells["Matched amount 已匹配金额"].value == pytest.approx(437.50)
    assert cells["Unmatched amount 未匹配金额"].value == pytest.approx(0.00)
    assert cells["Approval-to-payment median 审批到付款中位数 (days)"].value == pytest.approx(2.0)
    assert cells["Total 合计"].value == 5
    assert cells["财务漏记 MISSING_IN_FINANCE — OA已审批，财务无单据"].value == 2
    assert cells["Money at risk 风险金额"].value == pytest.approx(1364.06)
    assert cells["Control findings 内控发现 (no money at risk)"].value == 1
    assert cells["财务部"].value == 2  # top departments: count
