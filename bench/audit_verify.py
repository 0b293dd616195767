"""Time ``oafin audit verify`` on a hash-chained audit log of 1M rows (SQLite).

    .venv/bin/python bench/audit_verify.py [--rows 1000000] [--db /tmp/oafin-audit-bench.db]

Builds the chain with ``oafin.warehouse.audit.chain_rows`` (the hashes ``append`` would write),
bulk-inserts it with SQLAlchemy executemany into a fresh SQLite file, then times
``oafin.warehouse.audit.verify`` over it, and once more after editing one row in the middle.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from oafin.warehouse import audit  # noqa: E402
from oafin.warehouse.audit import audit_log, canonical_json  # noqa: E402
from oafin.warehouse.store import connect  # noqa: E402

EVENTS = ("proposed", "approved", "push", "response")


def events(n: int):
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for i in range(n):
        payload = canonical_json(
            {"status": EVENTS[i % 4], "target": f"kingdee AP_PAYBILL FKD{i:08d}", "amount_fen": i}
        )
        yield start + timedelta(milliseconds=i), EVENTS[i % 4], "审批人 (P0002)", f"{i // 4:064x}", payload


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=Path("/tmp/oafin-audit-bench.db"))
    args = parser.parse_args()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{args.db}{suffix}").unlink(missing_ok=True)
    engine = connect(f"sqlite:///{args.db}")

    t0 = time.perf_counter()
    batch: list[dict] = []
    with engine.begin() as conn:
        for row in audit.chain_rows(events(args.rows)):
            batch.append(row)
            if len(batch) == 50_000:
                conn.execute(audit_log.insert(), batch)
                batch.clear()
        if batch:
            conn.execute(audit_log.insert(), batch)
    build = time.perf_counter() - t0

    t0 = time.perf_counter()
    with engine.connect() as conn:
        report = audit.verify(conn)
    verify_s = time.perf_counter() - t0
    assert report.ok and report.rows == args.rows, report.problems

    middle = args.rows // 2
    with engine.begin() as conn:
        conn.execute(audit_log.update().where(audit_log.c.seq == middle).values(actor="someone else"))
    t0 = time.perf_counter()
    with engine.connect() as conn:
        tampered = audit.verify(conn)
    tampered_s = time.perf_counter() - t0
    assert tampered.problems[0] == f"seq {middle}: content does not match its hash (the row was edited)"

    size_mb = args.db.stat().st_size / 1e6
    print(f"rows                 {args.rows:,}")
    print(f"build + bulk insert  {build:.1f} s  ({size_mb:.0f} MB SQLite)")
    print(f"verify (intact)      {verify_s:.2f} s  = {args.rows / verify_s:,.0f} rows/s")
    print(f"verify (1 edit)      {tampered_s:.2f} s  -> {tampered.problems[0]}")
    engine.dispose()


if __name__ == "__main__":
    main()
