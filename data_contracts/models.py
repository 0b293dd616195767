"""pandera models of the standard entities (DESIGN.md, "The data standard" and "Data contracts").

Columns, order and dtypes are ``oafin.standard.ENTITIES`` as ``frames.py``
builds them. Every custom check has a name; ``REASONS`` says what it demands and
``validate.py`` turns a failure into ``"<name>: <reason>"``. Checks over several
columns (``@pa.dataframe_check``) report against the field ``CHECK_FIELDS`` names.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from data_contracts import checks
from data_contracts.frames import KIND_CHECKS
from data_contracts.invoices import DEFAULT_OPTIONS, INVOICE_RULES
from oafin.standard import CLAIM_STATUSES, DOC_STATUSES, DOC_TYPES

# dtype_kwargs pin both the unit and the zone: datetime64[ns, UTC].
_UTC = {"unit": "ns", "tz": "UTC"}

STANDARD_ID_PATTERN: Final = r"[^:\s]+:\S(?:.*\S)?"  # "<system>:<source id>"
DOC_ID_PATTERN: Final = r"[^:\s]+:[^:\s]+:\S(?:.*\S)?"  # "<system>:<form>:<source id>"
CURRENCY_PATTERN: Final = r"[A-Z]{3}"

REASONS: Final[dict[str, str]] = {
    "not_nullable": "a value is required",
    "non_empty": "must not be empty",
    "standard_id": "must be '<system>:<source id>'",
    "doc_id_format": "must be '<system>:<form>:<source id>'",
    "currency_code": "must be a 3-letter ISO 4217 code such as CNY",
    "claim_status": "must be one of " + ", ".join(CLAIM_STATUSES),
    "doc_type": "must be one of " + ", ".join(DOC_TYPES),
    "doc_status": "must be one of " + ", ".join(DOC_STATUSES),
    "amount_positive": "must be > 0 fen",
    "amount_not_negative": "must be >= 0 fen",
    "period_format": "must be a month written YYYY-MM",
    "approved_at_required": "an approved claim needs approved_at",
    "approved_after_submitted": "approved_at must not be before submitted_at",
    "doc_amount_positive": "must be > 0 fen unless the document is reversed",
    "doc_dated": "a document needs posted_at or paid_at",
    "paid_at_required": "a paid document needs paid_at",
    "voucher_balanced": "a voucher's debits (amount_fen) must equal its credits (credit_fen)",
    **KIND_CHECKS,
    **{name: rule.description for name, rule in INVOICE_RULES.items()},
}

CHECK_FIELDS: Final[dict[str, str]] = {
    "approved_at_required": "approved_at",
    "approved_after_submitted": "approved_at",
    "doc_amount_positive": "amount_fen",
    "doc_dated": "posted_at",
    "paid_at_required": "paid_at",
    "voucher_balanced": "credit_fen",
    **{name: rule.field for name, rule in INVOICE_RULES.items()},
}


class _Standard(pa.DataFrameModel):
    class Config:
        strict = True  # exactly the standard columns ...
        ordered = True  # ... in the standard order
        coerce = False  # frames.py builds the dtypes; a wrong dtype is a bug, not data


class ExpenseClaim(_Standard):
    claim_id: Series[str]
    claim_no: Series[str]
    company_code: Series[str]
    applicant_id: Series[str]
    department_code: Series[str]
    expense_type_code: Series[str]
    amount_fen: Series[pd.Int64Dtype]
    currency: Series[str]
    status: Series[str]
    submitted_at: Series[pd.DatetimeTZDtype] = pa.Field(dtype_kwargs=_UTC)
    approved_at: Series[pd.DatetimeTZDtype] = pa.Field(dtype_kwargs=_UTC, nullable=True)
    approver_ids: Series[str]
    budget_code: Series[str] = pa.Field(nullable=True)
    project_code: Series[str] = pa.Field(nullable=True)
    title: Series[str] = pa.Field(nullable=True)

    @pa.check(
        "claim_no", "company_code", "applicant_id", "department_code", "expense_type_code", name="non_empty"
    )
    def non_empty(cls, s: Series[str]) -> pd.Series[bool]:
        return s.str.len() > 0

    @pa.check("claim_id", name="standard_id")
    def standard_id(cls, s: Series[str]) -> pd.Series[bool]:
        return s.str.fullmatch(STANDARD_ID_PATTERN)

    @pa.check("amount_fen", name="amount_positive")
    def amount_positive(cls, s: Series[int]) -> pd.Series[bool]:
        return s > 0

    @pa.check("currency", name="currency_code")
    def currency_code(cls, s: Series[str]) -> pd.Series[bool]:
        return s.str.fullmatch(CURRENCY_PATTERN)

    @pa.check("status", name="claim_status")
    def claim_status(cls, s: Series[str]) -> pd.Series[bool]:
        return s.isin(CLAIM_STATUSES)

    @pa.dataframe_check(name="approved_at_required")
    def approved_at_required(cls, df: pd.DataFrame) -> pd.Series[bool]:
        return ~((df["status"] == "approved") & df["approved_at"].isna())

    @pa.dataframe_check(name="approved_after_submitted")
    def approved_after_submitted(cls, df: pd.DataFrame) -> pd.Series[bool]:
        return ~(df["approved_at"] < df["submitted_at"])


def _rule(name: str) -> Any:
    """A dataframe check applying one invoice rule (invoices.py) with the default options."""

    def check(cls: Any, df: pd.DataFrame) -> pd.Series[bool]:
        return INVOICE_RULES[name].passes(df, DEFAULT_OPTIONS)

    check.__name__ = name
    return pa.dataframe_check(name=name)(check)


class ClaimInvoice(_Standard):
    """An invoice attached to a claim. Its rules are ``invoices.INVOICE_RULES``; the pipeline
    applies them with ``check_invoices`` and reports, not quarantines, a failure."""

    claim_id: Series[str]
    # nullable: a missing value is named by the invoice rule that needs it
    invoice_code: Series[str] = pa.Field(nullable=True)
    invoice_no: Series[str] = pa.Field(nullable=True)
    issue_date: Series[np.datetime64] = pa.Field(nullable=True)
    amount_ex_tax_fen: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    tax_fen: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    total_fen: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    tax_rate_bp: Series[pd.Int64Dtype] = pa.Field(nullable=True)
    seller_tax_id: Series[str] = pa.Field(nullable=True)

    @pa.check("claim_id", name="standard_id")
    def standard_id(cls, s: Series[str]) -> pd.Series[bool]:
        return s.str.fullmatch(STANDARD_ID_PATTERN)

    invoice_format = _rule("invoice_format")
    digital_invoice_year = _rule("digital_invoice_year")
    issue_date_required = _rule("issue_date_required")
    amounts_required = _rule("amounts_required")
    amounts_positive = _rule("amounts_positive")
    total_matches = _rule("total_matches")
    tax_matches_rate = _rule("tax_matches_rate")
    vat_rate_legal = _rule("vat_rate_legal")
    seller_tax_id_format = _rule("seller_tax_id_format")
    seller_tax_id_checksum = _rule("seller_tax_id_checksum")


class FinanceDoc(_Standard):
    doc_id: Series[str]
    doc_no: Series[str]
    doc_type: Series[str]
    company_code: Series[str]
    claim_no_ref: Series[str] = pa.Field(nullable=True)
    source_doc_nos: Series[str]
    payee_id: Series[str] = pa.Field(nullable=True)  # a supplier is no person
    department_code: Series[str] = pa.Field(nullable=True)  # payments carry none
    amount_fen: Series[pd.Int64Dtype]
    currency: Series[str]
    status: Series[str]
    posted_at: Series[pd.DatetimeTZDtype] = pa.Field(dtype_kwargs=_UTC, nullable=True)
    paid_at: Series[pd.DatetimeTZDtype] = pa.Field(dtype_kwargs=_UTC, nullable=True)
    account_code: Series[str] = pa.Field(nullable=True)
    period: Series[str] = pa.Field(nullable=True)  # the default forms carry none
    voucher_no: Series[str] = pa.Field(nullable=True)  # written back onto an expense-platform document
    credit_fen: Series[pd.Int64Dtype] = pa.Field(nullable=True)  # a voucher's credit total

    @pa.check("doc_no", "company_code", name="non_empty")
    def non_empty(cls, s: Series[str]) -> pd.Series[bool]:
        return s.str.len() > 0

    @pa.check("doc_id", name="doc_id_format")
    def doc_id_format(cls, s: Series[str]) -> pd.Series[bool]:
        return s.str.fullmatch(DOC_ID_PATTERN)

    @pa.check("doc_type", name="doc_type")
    def doc_type_known(cls, s: Series[str]) -> pd.Series[bool]:
        return s.isin(DOC_TYPES)

    @pa.check("status", name="doc_status")
    def doc_status(cls, s: Series[str]) -> pd.Series[bool]:
        return s.isin(DOC_STATUSES)

    @pa.check("currency", name="currency_code")
    def currency_code(cls, s: Series[str]) -> pd.Series[bool]:
        return s.str.fullmatch(CURRENCY_PATTERN)

    @pa.check("period", name="period_format")
    def period_format(cls, s: Series[str]) -> pd.Series[bool]:
        return s.str.fullmatch(checks.PERIOD_PATTERN)

    @pa.dataframe_check(name="doc_amount_positive")
    def doc_amount_positive(cls, df: pd.DataFrame) -> pd.Series[bool]:
        # DESIGN: amounts > 0, except a reversed document (zero or a red-letter negative)
        return ((df["amount_fen"] > 0) | (df["status"] == "reversed")).fillna(True)

    @pa.dataframe_check(name="doc_dated")
    def doc_dated(cls, df: pd.DataFrame) -> pd.Series[bool]:
        return df["posted_at"].notna() | df["paid_at"].notna()

    @pa.dataframe_check(name="paid_at_required")
    def paid_at_required(cls, df: pd.DataFrame) -> pd.Series[bool]:
        return ~((df["status"] == "paid") & df["paid_at"].isna())

    @pa.dataframe_check(name="voucher_balanced")
    def voucher_balanced(cls, df: pd.DataFrame) -> pd.Series[bool]:
        # double entry: a voucher's debit total (amount_fen) equals its credit total
        voucher = df["doc_type"] == "voucher"
        return ~(voucher & ~(df["amount_fen"] == df["credit_fen"]).fillna(False))


class Budget(_Standard):
    budget_code: Series[str]
    department_code: Series[str]
    period: Series[str]
    amount_fen: Series[pd.Int64Dtype]

    @pa.check("budget_code", "department_code", name="non_empty")
    def non_empty(cls, s: Series[str]) -> pd.Series[bool]:
        return s.str.len() > 0

    @pa.check("period", name="period_format")
    def period_format(cls, s: Series[str]) -> pd.Series[bool]:
        return s.str.fullmatch(checks.PERIOD_PATTERN)

    @pa.check("amount_fen", name="amount_not_negative")
    def amount_not_negative(cls, s: Series[int]) -> pd.Series[bool]:
        return s >= 0


class Person(_Standard):
    person_id: Series[str]
    name: Series[str]
    department: Series[str] = pa.Field(nullable=True)
    role: Series[str] = pa.Field(nullable=True)

    @pa.check("person_id", "name", name="non_empty")
    def non_empty(cls, s: Series[str]) -> pd.Series[bool]:
        return s.str.len() > 0


class PersonIdentity(_Standard):
    person_id: Series[str]
    system: Series[str]
    external_id: Series[str]

    @pa.check("person_id", "system", "external_id", name="non_empty")
    def non_empty(cls, s: Series[str]) -> Series[bool]:
        return s.str.len() > 0  # type: ignore[return-value]  # pandas' Series is pandera's at run time


MODELS: Final[dict[str, type[_Standard]]] = {
    "expense_claim": ExpenseClaim,
    "claim_invoice": ClaimInvoice,
    "finance_doc": FinanceDoc,
    "budget": Budget,
    "person": Person,
    "person_identity": PersonIdentity,
}
