"""The data standard (统一数据标准): entity names, their columns and column kinds.

Every source is mapped onto these entities before anything compares them
(DESIGN.md, "The data standard"). The same names are used in the warehouse,
the dataframes, the reports' machine columns and the tests.

Column kinds:
- ``text``: NFKC-normalised, stripped ``str``; missing is ``None``.
- ``fen``: money as an integer number of fen (``int``); never a float.
- ``ts``: a timezone-aware ``datetime`` in UTC.
- ``date``: a business date (``datetime.date``) in Asia/Shanghai.
- ``list``: a list of text values, held as one comma-joined ``str`` (``""`` for none)
  so that frames and warehouse columns stay scalar.
- ``int``: a plain integer.
"""

from __future__ import annotations

from typing import Final, Literal

ColumnKind = Literal["text", "fen", "ts", "date", "list", "int"]

BUSINESS_TZ: Final = "Asia/Shanghai"

CLAIM_STATUSES: Final = ("draft", "pending", "approved", "rejected", "withdrawn")
DOC_TYPES: Final = ("reimbursement", "payment", "voucher")
DOC_STATUSES: Final = ("received", "audited", "paid", "rejected", "reversed")

ENTITIES: Final[dict[str, dict[str, ColumnKind]]] = {
    "expense_claim": {
        "claim_id": "text",  # "<system>:<source id>"
        "claim_no": "text",  # the business number people quote
        "company_code": "text",
        "applicant_id": "text",  # person_id
        "department_code": "text",
        "expense_type_code": "text",
        "amount_fen": "fen",
        "currency": "text",
        "status": "text",  # CLAIM_STATUSES
        "submitted_at": "ts",
        "approved_at": "ts",
        "approver_ids": "list",  # person_ids of those who agreed, in order
        "budget_code": "text",
        "project_code": "text",
        "title": "text",
    },
    "claim_invoice": {
        "claim_id": "text",
        "invoice_code": "text",  # 10 or 12 digits; empty for a fully digital invoice
        "invoice_no": "text",  # 8 digits, or 20 for a fully digital invoice
        "issue_date": "date",
        "amount_ex_tax_fen": "fen",
        "tax_fen": "fen",
        "total_fen": "fen",
        "tax_rate_bp": "int",  # VAT rate in basis points: 600 is 6 %
        "seller_tax_id": "text",
    },
    "finance_doc": {
        "doc_id": "text",  # "<system>:<form>:<source id>"
        "doc_no": "text",
        "doc_type": "text",  # DOC_TYPES
        "company_code": "text",
        "claim_no_ref": "text",  # the OA number it carries, if any
        "source_doc_nos": "list",  # finance documents it settles
        "payee_id": "text",  # person_id
        "department_code": "text",
        "amount_fen": "fen",
        "currency": "text",
        "status": "text",  # DOC_STATUSES
        "posted_at": "ts",
        "paid_at": "ts",
        "account_code": "text",
        "period": "text",  # "2026-10", Asia/Shanghai
        # Chains (DESIGN, "Chains of systems"): the ERP voucher number written back onto a paid
        # expense-platform document, and a voucher's credit total (its amount_fen is the debit
        # total; data_contracts requires the two equal).
        "voucher_no": "text",
        "credit_fen": "fen",
    },
    "budget": {
        "budget_code": "text",
        "department_code": "text",
        "period": "text",
        "amount_fen": "fen",
    },
    "person": {
        "person_id": "text",
        "name": "text",
        "department": "text",
        "role": "text",
    },
    # a person's id in one system (DingTalk userid, Kingdee staff number, WeCom userid, Feishu
    # open_id, ...): one row per account, so a new system needs rows, never a new column
    "person_identity": {
        "person_id": "text",
        "system": "text",  # the system's name, as in the mapping file's `system:`
        "external_id": "text",
    },
}

PRIMARY_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "expense_claim": ("claim_id",),
    "claim_invoice": ("claim_id", "invoice_code", "invoice_no"),
    "finance_doc": ("doc_id",),
    "budget": ("budget_code", "period"),
    "person": ("person_id",),
    "person_identity": ("system", "external_id"),
}

# The business key each entity is quoted by in exceptions and reports.
BUSINESS_KEYS: Final[dict[str, str]] = {
    "expense_claim": "claim_no",
    "claim_invoice": "invoice_no",
    "finance_doc": "doc_no",
    "budget": "budget_code",
    "person": "person_id",
    "person_identity": "external_id",
}

EXCEPTION_TYPES: Final = (
    "MISSING_IN_FINANCE",
    "MISSING_IN_OA",
    "AMOUNT_MISMATCH",
    "STATUS_MISMATCH",
    "PAYEE_MISMATCH",
    "DUPLICATE_PAYMENT",
    "DUPLICATE_INVOICE",
    "INVALID_INVOICE",
    "SELF_APPROVAL",
    "APPROVAL_LIMIT",
    "BUDGET_OVERRUN",
    "LATE_PAYMENT",
    "UNMAPPED_CODE",
    "CONTRACT_VIOLATION",
    # Chains of three systems (OA → expense platform → ERP; oafin.engine.chain)
    "EXPENSE_WITHOUT_OA",
    "VOUCHER_MISSING",
    "VOUCHER_AMOUNT_MISMATCH",
    "VOUCHER_NOT_IN_ERP",
    "VOUCHER_PERIOD",
)

# Columns of every exceptions.csv and of the sandbox's truth.csv key columns.
EXCEPTION_KEY_COLUMNS: Final = ("claim_no", "doc_no", "invoice_no", "budget_code")
EXCEPTION_COLUMNS: Final = (
    "exception_id",
    "exception_type",
    "claim_no",
    "doc_no",
    "invoice_no",
    "budget_code",
    "person_id",
    "amount_fen",
    "detail",
    # the pair of the chain that found it (source names): OA and finance of a two-system chain
    "left_system",
    "right_system",
    "status",
    "first_seen",
    "last_seen",
)
# reopened: it had been resolved, and a later run found it again (oafin.warehouse.lifecycle)
EXCEPTION_STATUSES: Final = ("open", "reopened", "acknowledged", "resolved", "ignored")


def columns(entity: str) -> list[str]:
    """The standard columns of ``entity``, in order."""
    return list(ENTITIES[entity])


def yuan(fen: int) -> str:
    """Integer fen as a yuan amount text, exactly: 123456 → ``1234.56``."""
    sign = "-" if fen < 0 else ""
    fen = abs(int(fen))
    return f"{sign}{fen // 100}.{fen % 100:02d}"
