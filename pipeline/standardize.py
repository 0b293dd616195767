"""Map landed records onto the standard, hold them to their contracts, store rows and quarantine.

Reads what extraction landed (all of it: the counterparts of a period reach back a lookback
window), writes the standard tables and the quarantine. The standard rows of a system are made
exactly the valid records, so a record fixed in the source leaves quarantine on the next run and
a record that turns bad leaves the standard table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import Engine, literal

from data_contracts.validate import validate_records
from mappings.apply import map_records
from mappings.code_tables import CodeTables
from oafin.config import Settings, SourceConfig
from oafin.records import MappedRecord
from oafin.standard import ENTITIES, PRIMARY_KEYS
from pipeline.sources import source_mapping
from warehouse.schema import STANDARD_TABLES, quarantine
from warehouse.store import canonical_json, payload_hash, read_raw, sync_rows

SCOPE_FIELDS = ("approved_at", "submitted_at", "paid_at", "posted_at")


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
    return map_records(mapping, raw, tables, {"company_code": source.company_code})


def _records_to_rows(entity: str, frame: pd.DataFrame) -> list[dict[str, Any]]:
    cols = list(ENTITIES[entity])
    rows = []
    for rec in frame[cols].to_dict("records"):
        rows.append({k: (None if _missing(v) else _plain(v)) for k, v in rec.items()})
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
    reasons = [i.as_dict() for i in rec.issues]
    kind = "UNMAPPED_CODE" if any(i.code == "UNMAPPED_CODE" for i in rec.issues) else "CONTRACT_VIOLATION"
    text = canonical_json(rec.raw)
    amount = values.get("amount_fen")
    return {
        "system": rec.system,
        "kind": rec.kind,
        "source_id": rec.source_id,
        "entity": rec.entity,
        "business_key": key or f"{rec.system}:{rec.source_id}",
        "company_code": values.get("company_code"),
        "person_id": values.get("applicant_id") or values.get("payee_id"),
        "amount_fen": amount if isinstance(amount, int) else None,
        "scope_at": scope_at,
        "claim_no_ref": values.get("claim_no_ref"),
        "exception_type": kind,
        "reasons": json.dumps(reasons, ensure_ascii=False, sort_keys=True),
        "payload_hash": payload_hash(text),
        "payload": text,
    }


def store_standard(engine: Engine, source: SourceConfig, records: list[MappedRecord]) -> StandardizeSummary:
    """Validate ``records`` and make the warehouse hold exactly their valid rows and quarantine."""
    entity = (
        records[0].entity if records else ("expense_claim" if source.system == "dingtalk" else "finance_doc")
    )
    result = validate_records(entity, records)
    table = STANDARD_TABLES[entity]
    id_col = table.c[PRIMARY_KEYS[entity][0]]
    prefix = f"{source.system}:"
    rows = _records_to_rows(entity, result.valid)
    valid_ids = {r[PRIMARY_KEYS[entity][0]] for r in rows}

    invoice_rows: list[dict[str, Any]] = []
    for rec in records:
        cid = rec.values.get("claim_id")
        if cid in valid_ids:
            for child in rec.children.get("claim_invoice", []):
                invoice_rows.append({c: child.get(c) for c in ENTITIES["claim_invoice"]} | {"claim_id": cid})
    invoice_rows = _dedupe(invoice_rows, PRIMARY_KEYS["claim_invoice"])
    q_rows = [_quarantine_row(r) for r in result.quarantined]

    with engine.begin() as conn:
        sync_rows(conn, table, rows, id_col.startswith(prefix, autoescape=True))
        if entity == "expense_claim":
            inv = STANDARD_TABLES["claim_invoice"]
            sync_rows(conn, inv, invoice_rows, inv.c.claim_id.startswith(prefix, autoescape=True))
        sync_rows(conn, quarantine, q_rows, (quarantine.c.system == literal(source.system)))
    return StandardizeSummary(
        system=source.system,
        entity=entity,
        mapped=len(records),
        valid=len(rows),
        quarantined=len(q_rows),
        invoices=len(invoice_rows),
    )


def _dedupe(rows: list[dict[str, Any]], key: tuple[str, ...]) -> list[dict[str, Any]]:
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        r.update({k: r.get(k) or "" for k in key})  # key columns are never NULL
        seen.setdefault(tuple(r[k] for k in key), r)
    return list(seen.values())


def store_reference_tables(engine: Engine, tables: CodeTables) -> None:
    """People and budgets come from the code tables; the warehouse holds them for reports and checks."""
    people = tables.people.reindex(columns=list(ENTITIES["person"])).astype(object)
    budgets = tables.budgets.reindex(columns=list(ENTITIES["budget"]))
    with engine.begin() as conn:
        person = STANDARD_TABLES["person"]
        budget = STANDARD_TABLES["budget"]
        sync_rows(conn, person, _records_to_rows("person", people), literal(True))
        sync_rows(conn, budget, _records_to_rows("budget", budgets), literal(True))
