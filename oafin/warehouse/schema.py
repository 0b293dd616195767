"""The warehouse's tables (SQLAlchemy Core): raw landing, standard entities, quarantine, exceptions.

Standard tables are generated from ``oafin.standard.ENTITIES`` so the warehouse cannot drift from
the standard. Nothing here holds wall-clock time except ``run_log``: every other table is a pure
function of the inputs, which is what makes a re-run of the same period change nothing.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, Integer, PrimaryKeyConstraint, String, Table, Text
from sqlalchemy.types import TypeEngine

from oafin.standard import ENTITIES, PRIMARY_KEYS
from oafin.warehouse.meta import metadata  # one MetaData: the table modules register on it
from oafin.warehouse.types import UTCDateTime

_KIND_TYPES: dict[str, type[TypeEngine] | TypeEngine] = {
    "text": Text(),
    "fen": BigInteger(),
    "ts": UTCDateTime(),
    "date": Date(),
    "list": Text(),
    "int": Integer(),
}


def _standard_table(entity: str) -> Table:
    pk = PRIMARY_KEYS[entity]
    cols = [
        Column(name, String(200) if name in pk else _KIND_TYPES[kind], nullable=name not in pk)
        for name, kind in ENTITIES[entity].items()
    ]
    return Table(entity, metadata, *cols, PrimaryKeyConstraint(*pk))


STANDARD_TABLES: dict[str, Table] = {entity: _standard_table(entity) for entity in ENTITIES}


# The newest payload of every source record, as the API returned it (canonical JSON).
def _source_key() -> list[Column]:
    """Which source record a row is about: the system, the kind within it, the system's own id."""
    return [
        Column("system", String(40), nullable=False),
        Column("kind", String(100), nullable=False),
        Column("source_id", String(200), nullable=False),
    ]


def _payload() -> list[Column]:
    """The record as the API returned it (canonical JSON) and its sha256."""
    return [Column("payload_hash", String(64), nullable=False), Column("payload", Text, nullable=False)]


raw_record = Table(
    "raw_record",
    metadata,
    *_source_key(),
    *_payload(),
    PrimaryKeyConstraint("system", "kind", "source_id"),
)

# Every distinct payload ever seen for a record, so an edit in the source leaves a trail.
raw_record_version = Table(
    "raw_record_version",
    metadata,
    *_source_key(),
    *_payload(),
    PrimaryKeyConstraint("system", "kind", "source_id", "payload_hash"),
)

# Records that may not enter the reconciliation, with every reason and the raw payload.
quarantine = Table(
    "quarantine",
    metadata,
    *_source_key(),
    Column("entity", String(40), nullable=False),
    Column("business_key", Text),  # claim_no or doc_no, when it could be read
    Column("company_code", Text),
    Column("person_id", Text),
    Column("amount_fen", BigInteger),
    Column("scope_at", UTCDateTime()),  # approved/submitted/posted/paid time, when it could be read
    Column("claim_no_ref", Text),  # a finance document's OA number, when it could be read
    Column("exception_type", String(40), nullable=False),  # UNMAPPED_CODE or CONTRACT_VIOLATION
    Column("reasons", Text, nullable=False),  # JSON list of {code, field, value, message}
    *_payload(),
    PrimaryKeyConstraint("system", "kind", "source_id"),
)

# Exceptions with their lifecycle; exception_id is stable across runs (type + business key).
exception = Table(
    "exception",
    metadata,
    Column("exception_id", String(40), nullable=False),
    Column("exception_type", String(40), nullable=False),
    Column("company_code", Text),
    Column("period", String(7), nullable=False),  # the period in which it was first found
    Column("claim_no", Text),
    Column("doc_no", Text),
    Column("invoice_no", Text),
    Column("budget_code", Text),
    Column("person_id", Text),
    Column("amount_fen", BigInteger),
    Column("detail", Text),
    Column("left_system", Text),  # the chain's pair that found it (source names)
    Column("right_system", Text),
    Column("status", String(20), nullable=False),
    Column("first_seen", UTCDateTime(), nullable=False),  # as_of of the first run that found it
    Column("last_seen", UTCDateTime(), nullable=False),  # as_of of the latest run that found it
    PrimaryKeyConstraint("exception_id"),
)

# The history of each exception (oafin.warehouse.lifecycle, oafin.review): one row per lifecycle
# change (at the run's as_of) or imported review decision (at the import's time); never rewritten.
exception_event = Table(
    "exception_event",
    metadata,
    Column("exception_id", String(40), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("event", String(20), nullable=False),  # reopened | resolved | review
    Column("status", String(20), nullable=False),  # the status after the event
    Column("comment", Text),  # the reviewer's comment, for review events
    Column("note", Text, nullable=False),  # one sentence for people (Chinese)
    PrimaryKeyConstraint("exception_id", "at", "event"),
)

# Bookkeeping of runs (wall-clock times live only here).
run_log = Table(
    "run_log",
    metadata,
    Column("run_id", String(64), nullable=False),
    Column("period", String(7), nullable=False),
    Column("as_of", UTCDateTime(), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    Column("summary", Text),
    PrimaryKeyConstraint("run_id"),
)

# Which finance documents the engine linked to each claim in scope of a period's run, and by
# which pass (key|rule|group) and rule; reports take approval-to-payment cycle times from it.
match = Table(
    "match",
    metadata,
    Column("period", String(7), nullable=False),
    Column("company_code", String(40), nullable=False),
    Column("claim_id", String(200), nullable=False),
    Column("doc_id", String(200), nullable=False),
    Column("match_pass", String(10), nullable=False),
    Column("rule", String(40), nullable=False),
    PrimaryKeyConstraint("period", "company_code", "claim_id", "doc_id"),
)

# Tables whose content a re-run of the same inputs must leave identical.
STATE_TABLES: tuple[Table, ...] = (
    raw_record,
    raw_record_version,
    quarantine,
    exception,
    match,
    *STANDARD_TABLES.values(),
)

# Tables defined in other modules on the same metadata (so create_all sees them).
import oafin.warehouse.approvals  # noqa: E402, F401  (approval_batch: issue 17)
import oafin.warehouse.ledger  # noqa: E402, F401  (correction_ledger and audit_log: issue 6)
import oafin.warehouse.review_table  # noqa: E402, F401  (exception_review: issue 4)
import oafin.warehouse.watermarks  # noqa: E402, F401  (extract_watermark: issue 5)
