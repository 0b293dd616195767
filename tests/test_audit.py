"""The hash-chained audit log, on SQLite and PostgreSQL: appends chain, tampering is found."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, update

from oafin.audit import check_ledger_anchors, parse_head, verify_url
from oafin.warehouse import audit, ledger
from oafin.warehouse.audit import GENESIS, audit_log


def _fill(engine: Engine, n: int = 6) -> list[audit.AuditEntry]:
    start = datetime(2026, 11, 1, 8, 30, 15, 123456, tzinfo=UTC)
    with engine.begin() as conn:
        return [
            audit.append(
                conn,
                "push",
                "P0002",
                f"key-{i}",
                {"amount_fen": 1000 + i, "text": "付款 ¥10.00"},
                start + timedelta(seconds=i),
            )
            for i in range(n)
        ]


def test_appends_form_a_chain_that_verifies(warehouse_engine: Engine) -> None:
    entries = _fill(warehouse_engine)
    assert [e.seq for e in entries] == list(range(1, 7))
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.row_hash for a, b in zip(entries, entries[1:], strict=False))
    with warehouse_engine.connect() as conn:
        report = audit.verify(conn, expect_head=(6, entries[-1].row_hash))
        assert audit.head(conn) == (6, entries[-1].row_hash)
        stored = audit.entries(conn, "key-3")[0]
    assert report.ok, report.problems
    assert (report.rows, report.head_seq, report.head_hash) == (6, 6, entries[-1].row_hash)
    assert stored == entries[3]  # the timestamp comes back exactly, so the hash recomputes


def test_an_edited_row_is_named(warehouse_engine: Engine) -> None:
    _fill(warehouse_engine)
    with warehouse_engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 3).values(actor="P0001"))
    with warehouse_engine.connect() as conn:
        report = audit.verify(conn)
    assert not report.ok
    assert report.problems == ["seq 3: content does not match its hash (the row was edited)"]


def test_a_rehashed_edit_still_breaks_the_next_link(warehouse_engine: Engine) -> None:
    entries = _fill(warehouse_engine)
    e = entries[2]
    forged = audit.row_hash(e.seq, e.at, e.event, "P0001", e.subject, e.payload, e.prev_hash)
    with warehouse_engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 3).values(actor="P0001", row_hash=forged))
    with warehouse_engine.connect() as conn:
        report = audit.verify(conn)
    assert any(p.startswith("seq 4: prev_hash") for p in report.problems), report.problems


def test_a_deleted_row_is_found(warehouse_engine: Engine) -> None:
    _fill(warehouse_engine)
    with warehouse_engine.begin() as conn:
        conn.execute(audit_log.delete().where(audit_log.c.seq == 4))
    with warehouse_engine.connect() as conn:
        report = audit.verify(conn)
    assert report.problems[:2] == [
        "seq 4..4 missing: rows were deleted before seq 5",
        "seq 5: prev_hash does not match the row before it (a row was deleted or edited)",
    ]


def test_a_deleted_tail_is_found_by_the_recorded_head_and_the_ledger(warehouse_engine: Engine) -> None:
    entries = _fill(warehouse_engine, 3)
    with warehouse_engine.begin() as conn:
        ledger.record_proposals(conn, [_proposal("k1")])  # audit seq 4, referenced by the ledger row
        conn.execute(audit_log.delete().where(audit_log.c.seq == 4))
    with warehouse_engine.connect() as conn:
        alone = audit.verify(conn)
        assert alone.ok  # the chain itself cannot see a missing last row...
        with_head = audit.verify(conn, expect_head=(4, "f" * 64))
        check_ledger_anchors(conn, alone)
    assert with_head.problems == ["the log ends at seq 3, but seq 4 was recorded: rows were deleted"]
    assert alone.problems == ["ledger k1 refers to audit seq 4, which is missing (rows were deleted)"]
    assert entries[-1].seq == 3


def test_verify_url_and_head_parsing(warehouse_url: str, warehouse_engine: Engine) -> None:
    entries = _fill(warehouse_engine, 2)
    report = verify_url(warehouse_url, parse_head(f"2:{entries[-1].row_hash}"))
    assert report.ok and report.rows == 2


def _proposal(key: str) -> dict:
    return {
        "idempotency_key": key,
        "exception_id": "e1",
        "exception_type": "STATUS_MISMATCH",
        "action": "oa_status_comment",
        "system": "dingtalk",
        "target": "dingtalk instance x",
        "content_hash": "0" * 64,
        "content": "{}",
        "preview": "comment",
        "claim_no": "BX1",
        "applicant_id": "P0001",
        "amount_fen": 100,
    }
