"""The warehouse schema of the last release before migrations (commit aee373d), frozen.

Revision 0001 creates exactly these tables, and a warehouse that an old release made with
``create_all`` (no ``alembic_version`` table) is recognised as revision 0001 when its tables and
columns are these. Never edit this file to follow the code: a change is a new revision.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import BigInteger, Column, Date, Integer, MetaData, PrimaryKeyConstraint, String, Table, Text

from oafin.warehouse.types import UTCDateTime

# The standard entities as they were: (column, kind) in order, and the primary key.
_STANDARD: Final[dict[str, tuple[tuple[tuple[str, str], ...], tuple[str, ...]]]] = {
    "expense_claim": (
        (
            ("claim_id", "text"),
            ("claim_no", "text"),
            ("company_code", "text"),
            ("applicant_id", "text"),
            ("department_code", "text"),
            ("expense_type_code", "text"),
            ("amount_fen", "fen"),
            ("currency", "text"),
            ("status", "text"),
            ("submitted_at", "ts"),
            ("approved_at", "ts"),
            ("approver_ids", "list"),
            ("budget_code", "text"),
            ("project_code", "text"),
            ("title", "text"),
        ),
        ("claim_id",),
    ),
    "claim_invoice": (
        (
            ("claim_id", "text"),
            ("invoice_code", "text"),
            ("invoice_no", "text"),
            ("issue_date", "date"),
            ("amount_ex_tax_fen", "fen"),
            ("tax_fen", "fen"),
            ("total_fen", "fen"),
            ("tax_rate_bp", "int"),
            ("seller_tax_id", "text"),
        ),
        ("claim_id", "invoice_code", "invoice_no"),
    ),
    "finance_doc": (
        (
            ("doc_id", "text"),
            ("doc_no", "text"),
            ("doc_type", "text"),
            ("company_code", "text"),
            ("claim_no_ref", "text"),
            ("source_doc_nos", "list"),
            ("payee_id", "text"),
            ("department_code", "text"),
            ("amount_fen", "fen"),
            ("currency", "text"),
            ("status", "text"),
            ("posted_at", "ts"),
            ("paid_at", "ts"),
            ("account_code", "text"),
            ("period", "text"),
        ),
        ("doc_id",),
    ),
    "budget": (
        (("budget_code", "text"), ("department_code", "text"), ("period", "text"), ("amount_fen", "fen")),
        ("budget_code", "period"),
    ),
    "person": (
        (
            ("person_id", "text"),
            ("dingtalk_userid", "text"),
            ("kingdee_staff_number", "text"),
            ("name", "text"),
            ("department", "text"),
            ("role", "text"),
        ),
        ("person_id",),
    ),
}


def _kind_type(kind: str) -> Any:
    return {
        "text": Text(),
        "fen": BigInteger(),
        "ts": UTCDateTime(),
        "date": Date(),
        "list": Text(),
        "int": Integer(),
    }[kind]


def _source_key() -> list[Column[Any]]:
    return [
        Column("system", String(40), nullable=False),
        Column("kind", String(100), nullable=False),
        Column("source_id", String(200), nullable=False),
    ]


def _payload() -> list[Column[Any]]:
    return [Column("payload_hash", String(64), nullable=False), Column("payload", Text, nullable=False)]


def release_1() -> MetaData:
    """A new MetaData holding the release-1 tables, in the order ``create_all`` made them."""
    md = MetaData()
    for entity, (columns, pk) in _STANDARD.items():
        cols = [
            Column(name, String(200) if name in pk else _kind_type(kind), nullable=name not in pk)
            for name, kind in columns
        ]
        Table(entity, md, *cols, PrimaryKeyConstraint(*pk))
    Table(
        "raw_record",
        md,
        *_source_key(),
        *_payload(),
        PrimaryKeyConstraint("system", "kind", "source_id"),
    )
    Table(
        "raw_record_version",
        md,
        *_source_key(),
        *_payload(),
        PrimaryKeyConstraint("system", "kind", "source_id", "payload_hash"),
    )
    Table(
        "quarantine",
        md,
        *_source_key(),
        Column("entity", String(40), nullable=False),
        Column("business_key", Text),
        Column("company_code", Text),
        Column("person_id", Text),
        Column("amount_fen", BigInteger),
        Column("scope_at", UTCDateTime()),
        Column("claim_no_ref", Text),
        Column("exception_type", String(40), nullable=False),
        Column("reasons", Text, nullable=False),
        *_payload(),
        PrimaryKeyConstraint("system", "kind", "source_id"),
    )
    Table(
        "exception",
        md,
        Column("exception_id", String(40), nullable=False),
        Column("exception_type", String(40), nullable=False),
        Column("company_code", Text),
        Column("period", String(7), nullable=False),
        Column("claim_no", Text),
        Column("doc_no", Text),
        Column("invoice_no", Text),
        Column("budget_code", Text),
        Column("person_id", Text),
        Column("amount_fen", BigInteger),
        Column("detail", Text),
        Column("status", String(20), nullable=False),
        Column("first_seen", UTCDateTime(), nullable=False),
        Column("last_seen", UTCDateTime(), nullable=False),
        PrimaryKeyConstraint("exception_id"),
    )
    Table(
        "run_log",
        md,
        Column("run_id", String(64), nullable=False),
        Column("period", String(7), nullable=False),
        Column("as_of", UTCDateTime(), nullable=False),
        Column("started_at", UTCDateTime(), nullable=False),
        Column("finished_at", UTCDateTime()),
        Column("summary", Text),
        PrimaryKeyConstraint("run_id"),
    )
    Table(
        "match",
        md,
        Column("period", String(7), nullable=False),
        Column("company_code", String(40), nullable=False),
        Column("claim_id", String(200), nullable=False),
        Column("doc_id", String(200), nullable=False),
        Column("match_pass", String(10), nullable=False),
        Column("rule", String(40), nullable=False),
        PrimaryKeyConstraint("period", "company_code", "claim_id", "doc_id"),
    )
    Table(
        "exception_review",
        md,
        Column("exception_id", String(40), nullable=False),
        Column("status", String(20), nullable=False),
        Column("comment", Text),
        Column("reviewed_file", Text),
        Column("imported_at", UTCDateTime(), nullable=False),
        PrimaryKeyConstraint("exception_id"),
    )
    Table(
        "audit_log",
        md,
        Column("seq", BigInteger, autoincrement=False, nullable=False),
        Column("at", UTCDateTime(), nullable=False),
        Column("event", String(40), nullable=False),
        Column("actor", Text, nullable=False),
        Column("subject", Text, nullable=False),
        Column("payload", Text, nullable=False),
        Column("prev_hash", String(64), nullable=False),
        Column("row_hash", String(64), nullable=False),
        PrimaryKeyConstraint("seq"),
    )
    Table(
        "correction_ledger",
        md,
        Column("idempotency_key", String(64), nullable=False),
        Column("exception_id", String(40), nullable=False),
        Column("exception_type", String(40), nullable=False),
        Column("action", String(40), nullable=False),
        Column("system", String(40), nullable=False),
        Column("target", Text, nullable=False),
        Column("content_hash", String(64), nullable=False),
        Column("content", Text, nullable=False),
        Column("preview", Text, nullable=False),
        Column("claim_no", Text),
        Column("applicant_id", Text),
        Column("amount_fen", BigInteger),
        Column("status", String(20), nullable=False),
        Column("approved_by", Text),
        Column("approved_at", UTCDateTime()),
        Column("attempts", Integer, nullable=False, default=0),
        Column("response", Text),
        Column("last_error", Text),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
        Column("audit_seq", BigInteger),
        Column("audit_hash", String(64)),
        PrimaryKeyConstraint("idempotency_key"),
    )
    Table(
        "extract_watermark",
        md,
        Column("system", String(40), nullable=False),
        Column("kind", String(100), nullable=False),
        Column("company_code", String(40), nullable=False),
        Column("covered_from", UTCDateTime(), nullable=False),
        Column("covered_to", UTCDateTime(), nullable=False),
        PrimaryKeyConstraint("system", "kind", "company_code"),
    )
    return md
