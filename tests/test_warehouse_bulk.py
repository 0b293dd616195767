"""Bulk warehouse writes (issue #16): PostgreSQL COPY / arrays and SQLite executemany store exactly
what the chunked SQLAlchemy upserts store, and writing the same input again rewrites nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, Engine, Table

from oafin.records import RawRecord
from oafin.warehouse import rows as warehouse_rows
from oafin.warehouse.schema import STANDARD_TABLES, raw_record, raw_record_version
from oafin.warehouse.store import land_raw, read_table, sync_rows

CLAIM = STANDARD_TABLES["expense_claim"]
INVOICE = STANDARD_TABLES["claim_invoice"]
SHANGHAI = ZoneInfo("Asia/Shanghai")
N = 300  # more than BULK_MIN_ROWS: the bulk way is taken

# Text COPY and array literals escape these; each must come back as it went in.
NASTY = [
    "tab\there",
    "new\nline",
    "carriage\rreturn",
    "back\\slash \\N \\t \\\\",
    "\\N",
    'quote \' and " and ""',
    "{braces,comma} (paren) [bracket]",
    "NULL",
    "",
    " leading and trailing ",
    "差旅报销：北京—上海，住宿费",
    "emoji 🧾 and ¥",
    "x" * 2000,
]
BIG_FEN = [0, 1, -1, 2**31, -(2**31) - 1, 10**11, 2**63 - 1, -(2**63)]
ZONES = [UTC, SHANGHAI, ZoneInfo("America/New_York"), timezone(timedelta(hours=5, minutes=45))]


def claims(n: int = N, amount_shift: int = 0) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        amount = BIG_FEN[i % len(BIG_FEN)]
        if amount_shift and i % 7 == 0 and abs(amount) < 2**62:
            amount += amount_shift
        at = datetime(2026, 10, 1, 8, 0, 0, i % 1_000_000, tzinfo=ZONES[i % len(ZONES)])
        out.append(
            {
                "claim_id": f"dingtalk:{i:05d}",
                "claim_no": f"BX{i:05d}",
                "company_code": "C01",
                "applicant_id": NASTY[i % len(NASTY)][:200],
                "department_code": None if i % 5 == 0 else "D01",
                "expense_type_code": "TRAVEL",
                "amount_fen": amount,
                "currency": "CNY",
                "status": "approved",
                "submitted_at": at + timedelta(days=i % 40),
                "approved_at": None if i % 4 == 0 else at + timedelta(hours=i),
                "approver_ids": ",".join(NASTY[(i + k) % len(NASTY)][:50] for k in range(2)),
                "budget_code": None,
                "project_code": NASTY[(i * 3) % len(NASTY)][:200],
                "title": NASTY[(i * 7) % len(NASTY)],
            }
        )
    return out


def invoices(n: int = N) -> list[dict[str, Any]]:
    return [
        {
            "claim_id": f"dingtalk:{i:05d}",
            "invoice_code": "" if i % 2 else f"{i:012d}",
            "invoice_no": f"{i:08d}",
            "issue_date": date(2026, 9, 1) + timedelta(days=i % 60),
            "amount_ex_tax_fen": BIG_FEN[i % len(BIG_FEN)],
            "tax_fen": None if i % 3 else 600,
            "total_fen": 10_600,
            "tax_rate_bp": 600,
            "seller_tax_id": NASTY[i % len(NASTY)][:200],
        }
        for i in range(n)
    ]


def raw(n: int = N, version: int = 0) -> list[RawRecord]:
    return [
        RawRecord(
            "dingtalk",
            "PROC-1",
            f"PI{i:05d}",
            {
                "title": NASTY[i % len(NASTY)],
                "amount": f"{i}.{version:02d}",
                "form": [{"名称": "事由", "v": None}],
            },
        )
        for i in range(n)
    ]


def _write(engine: Engine, *, raw_version: int = 0, amount_shift: int = 0) -> None:
    with engine.begin() as conn:
        land_raw(conn, raw(version=raw_version))
        sync_rows(conn, CLAIM, claims(amount_shift=amount_shift), CLAIM.c.claim_id.startswith("dingtalk:"))
        sync_rows(conn, INVOICE, invoices(), INVOICE.c.claim_id.startswith("dingtalk:"))


TABLES = (raw_record, raw_record_version, CLAIM, INVOICE)


def _stored(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row as the driver returns it (SQLite: the stored text of timestamps and dates)."""
    with engine.connect() as conn:
        return {t.name: _driver_rows(conn, t) for t in TABLES}


def _driver_rows(conn: Connection, table: Table) -> list[tuple[Any, ...]]:
    q = conn.dialect.identifier_preparer.quote
    order = ", ".join(q(c.name) for c in table.primary_key.columns)
    return [tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {q(table.name)} ORDER BY {order}")]  # noqa: S608


def _empty(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in TABLES:
            conn.execute(table.delete())


@pytest.fixture(params=["arrays", "copy"])
def bulk_way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """PostgreSQL writes up to UNNEST_MAX_ROWS rows as arrays and more by COPY: both, at N rows."""
    if request.param == "copy":
        monkeypatch.setattr(warehouse_rows, "UNNEST_MAX_ROWS", 0)
    yield request.param


def test_bulk_and_chunked_writes_store_the_same_rows(warehouse_engine, bulk_way, monkeypatch):
    monkeypatch.setattr(warehouse_rows, "BULK", False)
    _write(warehouse_engine)
    _write(warehouse_engine, raw_version=1, amount_shift=5)  # replaced rows, new versions
    chunked = _stored(warehouse_engine)
    _empty(warehouse_engine)
    monkeypatch.setattr(warehouse_rows, "BULK", True)
    _write(warehouse_engine)
    _write(warehouse_engine, raw_version=1, amount_shift=5)
    bulk = _stored(warehouse_engine)
    assert {k: len(v) for k, v in bulk.items()} == {
        "raw_record": N,
        "raw_record_version": 2 * N,
        "expense_claim": N,
        "claim_invoice": N,
    }
    for name in chunked:
        assert bulk[name] == chunked[name], name


def test_values_come_back_exactly(warehouse_engine, bulk_way):
    _write(warehouse_engine)
    with warehouse_engine.connect() as conn:
        got = read_table(conn, CLAIM).set_index("claim_id")
        inv = read_table(conn, INVOICE).set_index(["claim_id", "invoice_code", "invoice_no"])
        landed = {r.source_id: r.payload for r in map(_raw_of, conn.execute(raw_record.select()))}
    for row in claims():
        back = got.loc[row["claim_id"]]
        for name in ("applicant_id", "project_code", "title", "approver_ids", "department_code"):
            assert _none(back[name]) == row[name], (row["claim_id"], name)
        assert int(back["amount_fen"]) == row["amount_fen"]  # up to +-2**63: no float on the way
        for name in ("submitted_at", "approved_at"):
            if row[name] is None:
                assert _none(back[name]) is None
            else:
                assert back[name] == row[name] and back[name].tzinfo is not None
                assert back[name].utcoffset() == timedelta(0)  # stored as the same instant, in UTC
    for row in invoices():
        back = inv.loc[(row["claim_id"], row["invoice_code"], row["invoice_no"])]
        assert back["issue_date"] == row["issue_date"]
        assert _none(back["tax_fen"]) == row["tax_fen"]
        assert back["seller_tax_id"] == row["seller_tax_id"]
    assert landed == {r.source_id: r.payload for r in raw()}


def _raw_of(row: Any) -> RawRecord:
    import json

    return RawRecord(row.system, row.kind, row.source_id, json.loads(row.payload))


def _none(value: Any) -> Any:
    return None if value is None or value != value else value  # NaN/NaT from the frame: NULL


def _rewrites(conn: Connection) -> Any:
    """What changes when any row is written: PostgreSQL's xmin of every row, SQLite's change count."""
    if conn.dialect.name != "postgresql":
        return conn.exec_driver_sql("SELECT total_changes()").scalar_one()
    q = conn.dialect.identifier_preparer.quote
    marks = {}
    for table in TABLES:
        order = ", ".join(q(c.name) for c in table.primary_key.columns)
        sql = f"SELECT xmin::text FROM {q(table.name)} ORDER BY {order}"  # noqa: S608
        marks[table.name] = [r[0] for r in conn.exec_driver_sql(sql)]
    return marks


def test_writing_the_same_input_again_rewrites_nothing(warehouse_engine, bulk_way):
    _write(warehouse_engine)
    before = _stored(warehouse_engine)
    with warehouse_engine.begin() as conn:  # one connection: SQLite counts changes per connection
        marks = _rewrites(conn)
        land_raw(conn, raw())
        sync_rows(conn, CLAIM, claims(), CLAIM.c.claim_id.startswith("dingtalk:"))
        sync_rows(conn, INVOICE, invoices(), INVOICE.c.claim_id.startswith("dingtalk:"))
        assert _rewrites(conn) == marks  # no row inserted, updated or deleted
    assert _stored(warehouse_engine) == before


def test_a_changed_row_is_rewritten_and_only_it(warehouse_engine, bulk_way):
    _write(warehouse_engine)
    changed = claims()
    changed[10] = changed[10] | {"title": "改了", "approved_at": None}
    with warehouse_engine.begin() as conn:
        sync_rows(conn, CLAIM, changed, CLAIM.c.claim_id.startswith("dingtalk:"))
    with warehouse_engine.connect() as conn:
        got = read_table(conn, CLAIM).set_index("claim_id")
    assert got.loc["dingtalk:00010", "title"] == "改了"
    assert _none(got.loc["dingtalk:00010", "approved_at"]) is None
    assert got.loc["dingtalk:00011", "title"] == claims()[11]["title"]


def test_a_key_given_twice_is_written_once_last_row_wins_and_every_version_kept(warehouse_engine, bulk_way):
    records = raw() + [RawRecord("dingtalk", "PROC-1", "PI00001", {"amount": "later"})]
    with warehouse_engine.begin() as conn:
        land_raw(conn, records)
    with warehouse_engine.connect() as conn:
        latest = {r.source_id: r.payload for r in map(_raw_of, conn.execute(raw_record.select()))}
        versions = conn.execute(raw_record_version.select()).all()
    assert len(latest) == N and latest["PI00001"] == {"amount": "later"}
    assert len(versions) == N + 1


def test_a_naive_timestamp_is_refused_in_bulk_too(warehouse_engine, bulk_way):
    rows = claims()
    rows[-1] = rows[-1] | {"submitted_at": datetime(2026, 10, 1)}
    with pytest.raises(ValueError, match="naive"), warehouse_engine.begin() as conn:
        sync_rows(conn, CLAIM, rows, CLAIM.c.claim_id.startswith("dingtalk:"))
