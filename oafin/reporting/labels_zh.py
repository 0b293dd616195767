"""The one table of Chinese names and labels the reports show (finance in China reads Chinese).

Codes stay the interface (warehouse, CSV, tests); people see the Chinese name with the code beside
it for the data team. Everything a report writes in Chinese comes from here: exception type names
and reasons, lifecycle statuses (the workbook's drop-down), the standard fields' labels, the data
contract checks as sentences, and the money-at-risk categories (see ``risk_of``).
"""

from __future__ import annotations

import re
from typing import Final

# code -> (Chinese name, Chinese reason, English reason)
TYPES: Final[dict[str, tuple[str, str, str]]] = {
    "MISSING_IN_FINANCE": ("财务漏记", "OA已审批，财务无单据", "approved in OA, nothing in finance"),
    "MISSING_IN_OA": ("无审批付款", "财务有单据，OA无审批", "in finance with no OA approval behind it"),
    "AMOUNT_MISMATCH": ("金额不符", "OA与财务金额不一致", "OA and finance amounts differ"),
    "STATUS_MISMATCH": ("状态不符", "OA已驳回或撤回，财务已结算", "rejected or withdrawn in OA but settled in finance"),
    "PAYEE_MISMATCH": ("收款人不符", "付款给申请人以外的人", "paid to someone other than the applicant"),
    "DUPLICATE_PAYMENT": ("重复付款", "同一报销单多次付款", "paid more than once"),
    "DUPLICATE_INVOICE": ("发票重复报销", "同一发票用于多张报销单", "invoice used on more than one claim"),
    "INVALID_INVOICE": ("发票无效", "发票格式、校验码或税额不正确", "invoice fails format, checksum or tax arithmetic"),
    "SELF_APPROVAL": ("本人审批", "申请人审批了自己的报销单", "the applicant approved their own claim"),
    "APPROVAL_LIMIT": ("超审批权限", "审批人权限低于报销金额", "approved above the approver's limit"),
    "BUDGET_OVERRUN": ("超预算", "预算科目已审批金额超出预算", "approved claims exceed the budget line"),
    "LATE_PAYMENT": ("付款超期", "超过付款时限才付款或仍未付款", "paid later than the SLA, or still unpaid"),
    "UNMAPPED_CODE": ("编码无法映射", "源系统的编码在映射表中不存在", "a source value the mapping does not know"),
    "CONTRACT_VIOLATION": ("数据不合规", "记录未通过数据校验", "the record failed its data contract"),
    "EXPENSE_WITHOUT_OA": ("费用单无OA审批", "费用平台有单据，OA无审批", "an expense-platform document with no OA approval behind it"),
    "VOUCHER_MISSING": ("未生成凭证", "OA已审批、费用平台已付款，ERP无凭证", "approved in OA, paid on the expense platform, no voucher in the ERP"),
    "VOUCHER_AMOUNT_MISMATCH": ("凭证金额不符", "凭证金额与付款金额不一致", "the voucher books another amount than was paid"),
    "VOUCHER_NOT_IN_ERP": ("回写凭证号不存在", "回写到费用平台的凭证号在ERP中不存在", "the voucherNo written back names no voucher in the ERP"),
    "VOUCHER_PERIOD": ("凭证期间不符", "凭证记入已结账期间或不在付款所属期间", "the voucher is booked in a closed period or outside its payment's period"),
}  # fmt: skip


def type_name(code: str) -> str:
    """``DUPLICATE_PAYMENT`` → ``重复付款``; an unknown code stays as it is."""
    return TYPES.get(code, (code, code, code))[0]


def type_label(code: str) -> str:
    """The type as people read it, code alongside: ``重复付款 DUPLICATE_PAYMENT``."""
    return f"{type_name(code)} {code}" if code in TYPES else code


def sheet_name(code: str) -> str:
    """A worksheet tab: the Chinese name (Excel allows 31 characters; these are short)."""
    return type_name(code)[:31]


# lifecycle status -> Chinese; the drop-down shows "未处理 open" and the import accepts either word
STATUSES: Final[dict[str, str]] = {
    "open": "未处理",
    "reopened": "重新打开",
    "acknowledged": "已确认",
    "resolved": "已解决",
    "ignored": "已忽略",
}
STATUS_ALIASES: Final[dict[str, str]] = {
    **{zh: code for code, zh in STATUSES.items()},
    "待处理": "open",
    "确认": "acknowledged",
    "已处理": "resolved",
    "解决": "resolved",
    "忽略": "ignored",
    "重开": "reopened",
}


def status_label(status: str | None) -> str:
    """``acknowledged`` → ``已确认 acknowledged`` (what the workbook writes and its drop-down lists)."""
    if not status:
        return ""
    return f"{STATUSES[status]} {status}" if status in STATUSES else status


# standard field -> Chinese label
FIELDS: Final[dict[str, str]] = {
    "claim_id": "审批单标识",
    "claim_no": "审批单号",
    "company_code": "公司",
    "applicant_id": "申请人",
    "department_code": "部门",
    "expense_type_code": "费用类型",
    "amount_fen": "金额",
    "currency": "币种",
    "status": "状态",
    "submitted_at": "提交时间",
    "approved_at": "审批时间",
    "approver_ids": "审批人",
    "budget_code": "预算科目",
    "project_code": "项目",
    "title": "标题",
    "invoice_code": "发票代码",
    "invoice_no": "发票号码",
    "issue_date": "开票日期",
    "amount_ex_tax_fen": "不含税金额",
    "tax_fen": "税额",
    "tax_rate_bp": "税率",
    "total_fen": "价税合计",
    "seller_tax_id": "销售方税号",
    "doc_id": "单据标识",
    "doc_no": "财务单号",
    "doc_type": "单据类型",
    "claim_no_ref": "关联审批单号",
    "source_doc_nos": "源单号",
    "payee_id": "收款人",
    "posted_at": "记账时间",
    "paid_at": "付款时间",
    "account_code": "会计科目",
    "period": "期间",
    "person_id": "人员",
}


def field_label(field: str | None) -> str:
    """``amount_fen`` → ``金额``; a nested path (``invoices[0].total_fen``) by its last part."""
    if not field:
        return "记录"
    last = re.split(r"[.\]\[]", field.strip("]"))[-1] or field
    return FIELDS.get(last, FIELDS.get(field, field))


# data contract check name -> what it demands, in Chinese
CHECKS: Final[dict[str, str]] = {
    "not_nullable": "不能为空",
    "non_empty": "不能为空",
    "standard_id": "格式应为“系统:源编号”",
    "doc_id_format": "格式应为“系统:表单:源编号”",
    "currency_code": "应为三位币种代码（如 CNY）",
    "claim_status": "不是已知的审批状态",
    "doc_type": "不是已知的单据类型",
    "doc_status": "不是已知的单据状态",
    "amount_positive": "应大于零",
    "amount_not_negative": "不能为负数",
    "period_format": "应写作 YYYY-MM",
    "approved_at_required": "已审批的单据缺少审批时间",
    "approved_after_submitted": "审批时间早于提交时间",
    "doc_amount_positive": "应大于零（冲销单据除外）",
    "doc_dated": "缺少记账或付款日期",
    "paid_at_required": "已付款单据缺少付款时间",
    "voucher_balanced": "凭证借方合计不等于贷方合计",
    "text_kind": "应为文本",
    "list_kind": "应为逗号分隔的列表",
    "integer_kind": "应为整数（金额以分为单位）",
    "integer_range": "超出整数范围",
    "timestamp_tz_aware": "应为带时区的时间",
    "timestamp_range": "时间超出范围",
    "date_kind": "应为有效日期",
    "invoice_format": "格式不正确（应为10或12位代码加8位号码，或20位全电发票号码）",
    "digital_invoice_year": "全电发票号码应以开票年份后两位开头",
    "issue_date_required": "缺少开票日期",
    "amounts_required": "缺少不含税金额、税额或价税合计",
    "amounts_positive": "金额应大于零",
    "total_matches": "价税合计不等于不含税金额加税额",
    "tax_matches_rate": "税额与税率不符",
    "vat_rate_legal": "税率在开票日不合法",
    "seller_tax_id_format": "销售方税号应为18位统一社会信用代码",
    "seller_tax_id_check": "销售方统一社会信用代码校验位错误",
}


def check_text(message: str | None) -> str:
    """A contract message ``"<check>: <english>"`` as a Chinese phrase (the English kept if unknown)."""
    if not message:
        return "不合规"
    name, _, rest = message.partition(":")
    return CHECKS.get(name.strip(), message if not rest else CHECKS.get(name.strip(), rest.strip()))


# Money at risk (风险金额), per type: what finance could lose or must still pay, and how urgent.
# (priority, category code, Chinese category); lower priority numbers are acted on first.
PAID_OUT = (1, "paid_out", "已付出需追回")  # money already paid out wrongly
UNAPPROVED = (2, "unapproved", "无审批入账/付款")  # in the books with no approval behind it
OVER_LIMIT = (3, "over_limit", "超限额")  # approved beyond a limit or budget: the excess
UNPAID = (4, "unpaid", "应付未付")  # owed to an employee and not (fully) paid
CONTROL = (5, "control", "内控发现（无直接金额）")  # a control finding: no money at risk by itself

RISK_DEFINITIONS: Final[dict[str, tuple[tuple[int, str, str], str]]] = {
    "DUPLICATE_PAYMENT": (PAID_OUT, "多付金额：各笔付款合计减去应付金额 (overpaid)"),
    "STATUS_MISMATCH": (PAID_OUT, "已结算的报销金额 (settled although rejected/withdrawn)"),
    "PAYEE_MISMATCH": (PAID_OUT, "付给他人的报销金额 (paid to the wrong person)"),
    "AMOUNT_MISMATCH": (PAID_OUT, "差额：财务多于OA为多付，少于OA为少付 (the difference)"),
    "MISSING_IN_OA": (UNAPPROVED, "无审批的财务单据金额 (unapproved)"),
    "EXPENSE_WITHOUT_OA": (UNAPPROVED, "无审批的费用单据金额 (unapproved)"),
    "VOUCHER_MISSING": (CONTROL, "无：已付款未记账 (paid, not booked)"),
    "VOUCHER_AMOUNT_MISMATCH": (CONTROL, "无：账实不符 (books differ from the payment)"),
    "VOUCHER_NOT_IN_ERP": (CONTROL, "无：数据问题"),
    "VOUCHER_PERIOD": (CONTROL, "无：期间问题"),
    "APPROVAL_LIMIT": (OVER_LIMIT, "超出审批人权限的部分 (amount above the approver's limit)"),
    "BUDGET_OVERRUN": (OVER_LIMIT, "超出预算的部分 (excess over the budget)"),
    "MISSING_IN_FINANCE": (UNPAID, "未入账的报销金额 (unpaid)"),
    "LATE_PAYMENT": (UNPAID, "仍未付款时为报销金额；已付款（只是晚付）为零 (unpaid)"),
    "SELF_APPROVAL": (CONTROL, "无：内控发现"),
    "DUPLICATE_INVOICE": (CONTROL, "无：内控发现"),
    "INVALID_INVOICE": (CONTROL, "无：内控发现"),
    "UNMAPPED_CODE": (CONTROL, "无：数据问题"),
    "CONTRACT_VIOLATION": (CONTROL, "无：数据问题"),
}


def risk_category(code: str) -> tuple[int, str, str]:
    return RISK_DEFINITIONS.get(code, (CONTROL, ""))[0]
