"""Map landed records onto the standard, hold them to their contracts, store rows and quarantine.

Reads what extraction landed (all of it: the counterparts of a period reach back a lookback
window), writes the standard tables and the quarantine. The standard rows of a system are made
exactly the valid records, so a record fixed in the source leaves quarantine on the next run and
a record that turns bad leaves the standard table.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine, literal

from data_contracts.validate import validate_records
from mappings.apply import map_records
from mappings.code_tables import CodeTables
from oafin.config import Settings, SourceConfig
from oafin.connectors.errors import UNREADABLE_KEY
from oafin.masking import mask_json, masked_cut
from oafin.pipeline.sources import source_mapping
from oafin.records import Issue, MappedRecord, RawRecord
from oafin.standard import ENTITIES, PRIMARY_KEYS
from oafin.systems.base import ROLE_ENTITIES
from oafin.warehouse.schema import STANDARD_TABLES, quarantine
from oafin.warehouse.store import canonical_json, payload_hash, read_raw, sync_rows

SCOPE_FIELDS = ("approved_at", "submitted_at", "paid_at", "posted_at")

# What the contracts let through but no real record holds, or the warehouse cannot store
# (PostgreSQL refuses NUL in text; ids are at most 200 characters; a lone surrogate from a
# "\ud800" JSON escape cannot be written as UTF-8). Such a record is quarantined, with the reason.
MAX_KEY_CHARS = 200  # ids, numbers and codes (the warehouse's key columns are String(200))
MAX_TEXT_CHARS = 2000
MAX_AMOUNT_FEN = 10**11  # ¥1,000,000,000 on one claim or document: not an expense
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_AHEAD = timedelta(days=366)
# C0 controls but tab/newline/CR, DEL, lone surrogates, and U+FFFD (what undecodable bytes in a
# page became when the response was decoded).
_BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffd]")


def _is_key(name: str) -> bool:
    return name.endswith(("_id", "_no", "_code", "_ids", "_nos")) or name in ("currency", "status", "period")


def _text_issues(name: str, value: str) -> list[Issue]:
    issues = []
    limit = MAX_KEY_CHARS if _is_key(name) else MAX_TEXT_CHARS
    if len(value) > limit:
        issues.append(
            Issue(
                "CONTRACT_VIOLATION",
                name,
                masked_cut(value, 40),
                f"longer than {limit} characters ({len(value)})",
            )
        )
    if _BAD_CHARS.search(value):
        shown = masked_cut(_BAD_CHARS.sub("?", value), 40)
        issues.append(
            Issue("CONTRACT_VIOLATION", name, shown, "control characters or bytes that are not valid UTF-8")
        )
    return issues


def plausibility_issues(entity: str, values: dict[str, Any], now: datetime | None = None) -> list[Issue]:
    """Reasons a record that passed its contract still cannot be trusted or stored (empty: fine)."""
    latest = (now or datetime.now(UTC)) + LATEST_AHEAD
    issues: list[Issue] = []
    for name, kind in ENTITIES[entity].items():
        value = values.get(name)
        if isinstance(value, str):
            issues += _text_issues(name, value)
        elif isinstance(value, list | tuple):
            for item in value:
                if isinstance(item, str):
                    issues += _text_issues(name, item)
        elif kind == "fen" and isinstance(value, int) and abs(value) > MAX_AMOUNT_FEN:
            issues.append(
                Issue("CONTRACT_VIOLATION", name, str(value), f"absurd amount (over {MAX_AMOUNT_FEN} fen)")
            )
        elif kind == "ts" and isinstance(value, datetime) and not EARLIEST <= value <= latest:
            issues.append(
                Issue("CONTRACT_VIOLATION", name, value.isoformat(), "date outside 2000 .. one year from now")
            )
    return issues


def _plausible(records: list[MappedRecord], entity: str) -> tuple[list[MappedRecord], list[MappedRecord]]:
    """Split records into those fit to store and those to quarantine with the reasons found."""
    keep, bad = [], []
    for rec in records:
        if UNREADABLE_KEY in rec.raw:
            bad.append(rec)  # nothing to check: its one issue says why
            continue
        issues = plausibility_issues(entity, rec.values)
        for child in rec.children.get("claim_invoice", []):
            found = plausibility_issues("claim_invoice", child)
            issues += [dataclasses.replace(i, field=f"claim_invoice.{i.field}") for i in found]
        if issues:
            bad.append(dataclasses.replace(rec, issues=[*rec.issues, *issues]))
        else:
            keep.append(rec)
    return keep, bad


@dataclass
class StandardizeSummary:
    system: str
    entity: str
    mapped: int
    valid: int
    quarantined: int
    invoices: int = 0


def map_source(
    engine: Engine, settings: Settings, source: SourceConfig, tables: CodeTables
) -> list[MappedRecord]:
    """Map every landed record of ``source`` (pure apart from reading the landing table)."""
    mapping = source_mapping(settings, source)
    with engine.connect() as conn:
        raw = read_raw(conn, source.system)
    readable = [r for r in raw if UNREADABLE_KEY not in r.payload]
    mapped = map_records(mapping, readable, tables, {"company_code": source.company_code})
    return mapped + [_unreadable(source, r) for r in raw if UNREADABLE_KEY in r.payload]


def _unreadable(source: SourceConfig, raw: RawRecord) -> MappedRecord:
    """A record the source sent but the connector could not read (issue #10 item 12): quarantined."""
    entity = ROLE_ENTITIES[source.role]
    reason = str(raw.payload[UNREADABLE_KEY])
    issue = Issue("CONTRACT_VIOLATION", "payload", None, f"record not readable: {reason}")
    return MappedRecord(entity, raw.system, raw.kind, raw.source_id, {}, dict(raw.payload), [issue])


def _records_to_rows(entity: str, frame: pd.DataFrame) -> list[dict[str, Any]]:
    cols = list(ENTITIES[entity])
    rows = []
    for rec in frame[cols].to_dict("records"):
        rows.append({str(k): (None if _missing(v) else _plain(v)) for k, v in rec.items()})
    return rows


def _missing(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _plain(v: Any) -> Any:
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    if hasattr(v, "item") and not isinstance(v, str | bytes):
        return v.item()
    return v


def _quarantine_row(rec: MappedRecord) -> dict[str, Any]:
    values = rec.values
    key = values.get("claim_no") if rec.entity == "expense_claim" else values.get("doc_no")
    scope_at = next((values[f] for f in SCOPE_FIELDS if values.get(f) is not None), None)
    if rec.entity == "expense_claim" and values.get("approved_at") is None:
        scope_at = values.get("submitted_at")
    if rec.entity == "finance_doc" and values.get("doc_type") != "payment":
        scope_at = values.get("posted_at")
    reasons = mask_json([i.as_dict() for i in rec.issues])
    kind = "UNMAPPED_CODE" if any(i.code == "UNMAPPED_CODE" for i in rec.issues) else "CONTRACT_VIOLATION"
    # a masked copy: the raw landing alone keeps the payload whole (a payee account, an id number)
    text = _storable(canonical_json(mask_json(rec.raw)))
    amount = values.get("amount_fen")
    if not isinstance(amount, int) or abs(amount) > MAX_AMOUNT_FEN:
        amount = None
    if not isinstance(scope_at, datetime) or not EARLIEST <= scope_at <= datetime.now(UTC) + LATEST_AHEAD:
        scope_at = None
    return {
        "system": rec.system,
        "kind": rec.kind,
        "source_id": rec.source_id,
        "entity": rec.entity,
        "business_key": _key_text(key) or f"{rec.system}:{rec.source_id}",
        "company_code": _key_text(values.get("company_code")),
        "person_id": _key_text(values.get("applicant_id") or values.get("payee_id")),
        "amount_fen": amount,
        "scope_at": scope_at,
        "claim_no_ref": _key_text(values.get("claim_no_ref")),
        "exception_type": kind,
        "reasons": _storable(json.dumps(reasons, ensure_ascii=False, sort_keys=True)),
        "payload_hash": payload_hash(text),
        "payload": text,
    }


def _storable(text: str) -> str:
    """JSON text any database stores: NUL and lone surrogates stay escaped (``\\u0000``)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(json.loads(text), ensure_ascii=True, sort_keys=True, separators=(",", ":"))
    return text


def _key_text(value: Any) -> str | None:
    """A business key as quarantine shows it: printable, at most MAX_KEY_CHARS."""
    if value is None:
        return None
    text = _BAD_CHARS.sub("?", str(value))
    return text if len(text) <= MAX_KEY_CHARS else text[: MAX_KEY_CHARS - 3] + "..."


@dataclass
class Standardized:
    """One source's mapped records held to their contracts: the rows to store (nothing stored)."""

    entity: str
    rows: list[dict[str, Any]]  # the valid records as standard rows
    invoice_rows: list[dict[str, Any]]  # the valid claims' invoices
    quarantine_rows: list[dict[str, Any]]  # ``quarantine`` rows, with every reason
    mapped: int


def standardize_records(entity: str, records: list[MappedRecord]) -> Standardized:
    """Validate ``records`` (plausibility, then the contracts): pure, the step's transform."""
    records, implausible = _plausible(list(records), entity)
    result = validate_records(entity, records)
    rows = _records_to_rows(entity, result.valid)
    valid_ids = {r[PRIMARY_KEYS[entity][0]] for r in rows}

    invoice_rows: list[dict[str, Any]] = []
    for rec in records:
        cid = rec.values.get("claim_id")
        if cid in valid_ids:
            for child in rec.children.get("claim_invoice", []):
                invoice_rows.append({c: child.get(c) for c in ENTITIES["claim_invoice"]} | {"claim_id": cid})
    invoice_rows = _dedupe(invoice_rows, PRIMARY_KEYS["claim_invoice"])
    q_rows = [_quarantine_row(r) for r in [*result.quarantined, *implausible]]
    return Standardized(entity, rows, invoice_rows, q_rows, mapped=len(records) + len(implausible))


def store_standard(
    engine: Engine, source: SourceConfig, records: list[MappedRecord], entity: str | None = None
) -> StandardizeSummary:
    """Validate ``records`` and make the warehouse hold exactly their valid rows and quarantine.

    ``entity``: the standard entity the source maps to (default: the records', else its role's).
    """
    entity = entity or (records[0].entity if records else ROLE_ENTITIES[source.role])
    std = standardize_records(entity, records)
    table = STANDARD_TABLES[entity]
    id_col = table.c[PRIMARY_KEYS[entity][0]]
    prefix = f"{source.system}:"
    with engine.begin() as conn:
        sync_rows(conn, table, std.rows, id_col.startswith(prefix, autoescape=True))
        if entity == "expense_claim":
            inv = STANDARD_TABLES["claim_invoice"]
            sync_rows(conn, inv, std.invoice_rows, inv.c.claim_id.startswith(prefix, autoescape=True))
        sync_rows(conn, quarantine, std.quarantine_rows, (quarantine.c.system == literal(source.system)))
    return StandardizeSummary(
        system=source.system,
        entity=entity,
        mapped=std.mapped,
        valid=len(std.rows),
        quarantined=len(std.quarantine_rows),
        invoices=len(std.invoice_rows),
    )


def _dedupe(rows: list[dict[str, Any]], key: tuple[str, ...]) -> list[dict[str, Any]]:
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        r.update({k: r.get(k) or "" for k in key})  # key columns are never NULL
        seen.setdefault(tuple(r[k] for k in key), r)
    return list(seen.values())


def store_reference_tables(engine: Engine, tables: CodeTables) -> None:
    """People, their identities and budgets come from the code tables; the warehouse holds them
    for reports and checks."""
    people = tables.people.reindex(columns=list(ENTITIES["person"])).astype(object)
    identities = tables.identities.reindex(columns=list(ENTITIES["person_identity"])).astype(object)
    # a blank id is no account in that system; a row listed twice is one identity
    identities = identities.loc[identities["external_id"] != ""].drop_duplicates(["system", "external_id"])
    budgets = tables.budgets.reindex(columns=list(ENTITIES["budget"]))
    with engine.begin() as conn:
        person = STANDARD_TABLES["person"]
        person_identity = STANDARD_TABLES["person_identity"]
        budget = STANDARD_TABLES["budget"]
        sync_rows(conn, person, _records_to_rows("person", people), literal(True))
        sync_rows(conn, person_identity, _records_to_rows("person_identity", identities), literal(True))
        sync_rows(conn, budget, _records_to_rows("budget", budgets), literal(True))
