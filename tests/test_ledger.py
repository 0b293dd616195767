"""The correction ledger on SQLite and PostgreSQL: proposals once, transitions audited."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine

from oafin.warehouse import audit, ledger


def _proposal(key: str, claim_no: str = "BX1") -> dict:
    return {
        "idempotency_key": key,
        "exception_id": "e-" + key,
        "exception_type": "MISSING_IN_FINANCE",
        "action": "finance_create_bill",
        "system": "kingdee",
        "target": f"kingdee ER_ExpReimbursement for OA {claim_no}",
        "content_hash": "a" * 64,
        "content": json.dumps({"claim_no": claim_no}),
        "preview": "Save then Submit",
        "claim_no": claim_no,
        "applicant_id": "P0007",
        "amount_fen": 12_345,
    }


def test_proposals_are_recorded_once(warehouse_engine: Engine) -> None:
    with warehouse_engine.begin() as conn:
        first = ledger.record_proposals(conn, [_proposal("k1"), _proposal("k2", "BX2")])
    with warehouse_engine.begin() as conn:
        second = ledger.record_proposals(conn, [_proposal("k2", "BX2"), _proposal("k3", "BX3")])
    with warehouse_engine.connect() as conn:
        rows = {r["idempotency_key"]: r for r in ledger.rows(conn)}
        events = [(e.event, e.subject) for e in audit.entries(conn)]
    assert (first, second) == (["k1", "k2"], ["k3"])
    assert {k: r["status"] for k, r in rows.items()} == {"k1": "proposed", "k2": "proposed", "k3": "proposed"}
    assert events == [("proposed", "k1"), ("proposed", "k2"), ("proposed", "k3")]
    assert rows["k3"]["audit_seq"] == 3


def test_transitions_carry_their_audit_row(warehouse_engine: Engine) -> None:
    with warehouse_engine.begin() as conn:
        ledger.record_proposals(conn, [_proposal("k1")])
        ledger.transition(
            conn, "k1", "approved", event="approved", actor="王芳 (P0002)", approved_by="王芳 (P0002)"
        )
        ledger.transition(conn, "k1", "pending", event="push", actor="王芳 (P0002)", attempts=1)
        ledger.note(conn, "k1", "error", "王芳 (P0002)", {"error": "timed out"})
        ledger.transition(
            conn,
            "k1",
            "done",
            event="response",
            actor="王芳 (P0002)",
            response={"Number": "FYBX1", "amount": 1},
        )
    with warehouse_engine.connect() as conn:
        row = ledger.get(conn, "k1")
        trail = audit.entries(conn, "k1")
        report = audit.verify(conn)
    assert [e.event for e in trail] == ["proposed", "approved", "push", "error", "response"]
    assert row["status"] == "done" and row["attempts"] == 1 and row["last_error"] == "timed out"
    assert json.loads(row["response"]) == {"Number": "FYBX1", "amount": 1}
    assert (row["audit_seq"], row["audit_hash"]) == (trail[-1].seq, trail[-1].row_hash)
    assert report.ok


def test_unknown_status_or_key_is_refused(warehouse_engine: Engine) -> None:
    with warehouse_engine.begin() as conn, pytest.raises(ValueError, match="unknown ledger status"):
        ledger.transition(conn, "k1", "sent", event="push", actor="x")
    with pytest.raises(KeyError, match="no correction k9"), warehouse_engine.begin() as conn:
        ledger.transition(conn, "k9", "pending", event="push", actor="x")
