"""Benchmark: landing and storing N claims and N finance documents in the warehouse (issue #16).

    .venv/bin/python -m bench.warehouse_write --n 100000 [--impl both|new|old]
        [--backends sqlite,postgresql] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]
        [--land-batch 500] [--sqlite-synchronous NORMAL] [--profile sqlite:store_claims]

The records go through the functions the pipeline calls, as it calls them:

- ``land``: ``land_raw`` on raw records (a DingTalk-like approval payload per claim, a Kingdee-like
  bill per document), in committed batches of 500 as ``oafin.pipeline.extract.extract_kind`` does;
  each writes ``raw_record`` and ``raw_record_version``;
- ``store``: ``sync_rows`` of the standard rows (``expense_claim``, ``finance_doc``; what
  ``oafin.pipeline.standardize._records_to_rows`` yields) scoped to the system, in one transaction,
  as ``store_standard`` does.

Each backend (a new SQLite file; a new PostgreSQL schema, dropped after) gets the whole input twice:
once into an empty warehouse and once again (a re-run of the same input), and the second pass must
leave the same row counts and the same content fingerprint. ``--impl old`` forces the chunked
SQLAlchemy upserts (``oafin.warehouse.rows.BULK = False``), ``new`` the bulk path (PostgreSQL:
COPY into a staging table and one merge per table), ``both`` runs old then new on fresh warehouses.

Rows per second count the records given to a step (one raw record lands in two tables; it counts
once). Times are wall clock on a shared machine: the load (``os.getloadavg``) is printed with them.
Peak RSS is the process's high-water mark. The last line is
``n= impl= sqlite_rows_per_s= postgres_rows_per_s= ... peak_rss_mib=`` (per impl when ``both``).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine, create_engine, event, func, select, text  # noqa: E402

from oafin.records import RawRecord  # noqa: E402
from oafin.warehouse import rows as warehouse_rows  # noqa: E402
from oafin.warehouse.schema import STANDARD_TABLES, raw_record, raw_record_version  # noqa: E402
from oafin.warehouse.store import connect, land_raw, sync_rows  # noqa: E402

BATCH = 500  # oafin.pipeline.extract.BATCH: one committed transaction per batch
START = datetime(2026, 10, 1, tzinfo=UTC) - timedelta(hours=8)
PEOPLE = [f"P{i:05d}" for i in range(2000)]
TITLES = ["差旅报销\t北京", '客户招待 "午餐"', "办公用品\\耗材", "培训费\n第二期", "市内交通", None]
CLAIM = STANDARD_TABLES["expense_claim"]
DOC = STANDARD_TABLES["finance_doc"]


def claim_rows(n: int) -> list[dict[str, Any]]:
    """N standard claim rows: every column kind, texts with tabs, quotes, backslashes and Chinese."""
    out = []
    for i in range(n):
        submitted = START + timedelta(seconds=(i * 7919) % (28 * 86_400))
        approved = submitted + timedelta(seconds=600 + i % 86_400) if i % 33 else None
        out.append(
            {
                "claim_id": f"dingtalk:PI{i:09d}",
                "claim_no": f"BX{i:09d}",
                "company_code": "C01",
                "applicant_id": PEOPLE[i % 2000],
                "department_code": f"D{i % 40:02d}",
                "expense_type_code": ("TRAVEL", "MEAL", "OFFICE", "TRAINING")[i % 4],
                "amount_fen": 2000 + (i * 104_729) % 400_000,
                "currency": "CNY",
                "status": "approved" if approved else "pending",
                "submitted_at": submitted,
                "approved_at": approved,
                "approver_ids": f"{PEOPLE[(i * 7) % 2000]},{PEOPLE[(i * 13) % 2000]}",
                "budget_code": f"B-D{i % 40:02d}-OPS",
                "project_code": None if i % 3 else f"PRJ{i % 97:03d}",
                "title": TITLES[i % len(TITLES)],
            }
        )
    return out


def doc_rows(n: int) -> list[dict[str, Any]]:
    """N standard finance documents, one paying each claim."""
    out = []
    for i in range(n):
        posted = START + timedelta(seconds=(i * 7919) % (28 * 86_400) + 86_400)
        out.append(
            {
                "doc_id": f"kingdee:payment:FKD{i:09d}",
                "doc_no": f"FKD{i:09d}",
                "doc_type": "payment",
                "company_code": "C01",
                "claim_no_ref": f"BX{i:09d}" if i % 50 else None,
                "source_doc_nos": "",
                "payee_id": PEOPLE[i % 2000],
                "department_code": f"D{i % 40:02d}",
                "amount_fen": 2000 + (i * 104_729) % 400_000,
                "currency": "CNY",
                "status": "paid",
                "posted_at": posted,
                "paid_at": posted,
                "account_code": "2241.01",
                "period": "2026-10",
                "voucher_no": None,
                "credit_fen": None,
            }
        )
    return out


def _payload(row: dict[str, Any]) -> dict[str, Any]:
    """A source-like payload: the row's values as text, amounts as decimal strings."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, datetime):
            out[k] = v.isoformat()
        elif k.endswith("_fen") and v is not None:
            out[k.removesuffix("_fen")] = f"{v // 100}.{v % 100:02d}"
        else:
            out[k] = v
    out["form"] = [{"name": "事由", "value": row.get("title") or row.get("doc_no")}]
    return out


def raw_batches(
    system: str, kind: str, make: Callable[[int], list[dict[str, Any]]], n: int
) -> Iterator[list[RawRecord]]:
    """Raw records in batches of BATCH, made lazily (a 1M input never sits in memory as records)."""
    key = "claim_id" if system == "dingtalk" else "doc_id"
    rows = make(n)
    for start in range(0, n, BATCH):
        yield [
            RawRecord(system, kind, r[key].rsplit(":", 1)[1], _payload(r))
            for r in rows[start : start + BATCH]
        ]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _counts(engine: Engine) -> dict[str, tuple[int, int]]:
    """Per table: rows and a content fingerprint that does not depend on row order."""
    with engine.connect() as conn:
        out = {}
        for table, col in (
            (raw_record, "payload"),
            (raw_record_version, "payload"),
            (CLAIM, "title"),
            (DOC, "doc_no"),
        ):
            n = conn.execute(select(func.count()).select_from(table)).scalar_one()
            length = conn.execute(select(func.sum(func.length(table.c[col])))).scalar_one() or 0
            out[table.name] = (int(n), int(length))
        amount = conn.execute(select(func.sum(CLAIM.c.amount_fen))).scalar_one()
        out["claim_amount"] = (int(amount or 0), 0)
    return out


class Steps:
    def __init__(self, engine: Engine, n: int, profile: str | None, label: str) -> None:
        self.engine, self.n, self.profile, self.label = engine, n, profile, label
        self.times: dict[str, float] = {}

    def timed(
        self, name: str, rows: int, step: Callable[[Callable[[Callable[[], None]], None]], None]
    ) -> None:
        """Run ``step(clock)``; only what ``step`` passes to ``clock`` is timed (and profiled)."""
        gc.collect()
        prof = cProfile.Profile() if self.profile == f"{self.label}:{name}" else None
        spent = 0.0

        def clock(work: Callable[[], None]) -> None:
            nonlocal spent
            started = time.perf_counter()
            if prof:
                prof.enable()
            work()
            if prof:
                prof.disable()
            spent += time.perf_counter() - started

        step(clock)
        self.times[name] = self.times.get(name, 0.0) + spent
        print(
            f"  {self.label:10} {name:14} {rows:>9} rows {spent:7.2f} s {rows / spent:9.0f} rows/s"
            f"  (load {os.getloadavg()[0]:.1f}, rss {peak_rss_mib():.0f} MiB)",
            flush=True,
        )
        if prof:
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)

    def land(self, system: str, kind: str, make: Callable[[int], list[dict[str, Any]]]) -> None:
        def run(clock: Callable[[Callable[[], None]], None]) -> None:
            for batch in raw_batches(system, kind, make, self.n):

                def one(batch: list[RawRecord] = batch) -> None:
                    with self.engine.begin() as conn:
                        land_raw(conn, batch)

                clock(one)

        self.timed(f"land_{system}", self.n, run)

    def store(self, name: str, rows: list[dict[str, Any]], table: Any, prefix: str) -> None:
        key = table.primary_key.columns.values()[0]

        def one() -> None:
            with self.engine.begin() as conn:
                sync_rows(conn, table, rows, key.startswith(prefix, autoescape=True))

        self.timed(name, len(rows), lambda clock: clock(one))


def one_backend(
    url: str, label: str, n: int, profile: str | None, synchronous: str | None = None
) -> dict[str, Any]:
    engine = connect(url)
    if synchronous and label == "sqlite":  # what a durability setting costs (not the store's own)
        engine.dispose()

        @event.listens_for(engine, "connect")
        def _sync(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.execute(f"PRAGMA synchronous={synchronous}")

    try:
        steps = Steps(engine, n, profile, label)
        counts = []
        for rerun in (False, True):
            tag = "again" if rerun else "new"
            print(f"  {label} pass: {tag}", flush=True)
            steps.land("dingtalk", "PROC-EXPENSE", claim_rows)
            steps.land("kingdee", "ER_ExpReimbursement", doc_rows)
            claims = claim_rows(n)
            steps.store("store_claims", claims, CLAIM, "dingtalk:")
            del claims
            docs = doc_rows(n)
            steps.store("store_docs", docs, DOC, "kingdee:")
            del docs
            counts.append(_counts(engine))
        if counts[0] != counts[1]:
            raise SystemExit(f"{label}: the re-run changed the warehouse: {counts[0]} != {counts[1]}")
        if counts[0]["expense_claim"][0] != n or counts[0]["raw_record"][0] != 2 * n:
            raise SystemExit(f"{label}: wrong row counts {counts[0]}")
        total = 2 * 4 * n  # two passes x (land claims, land docs, store claims, store docs)
        seconds = sum(steps.times.values())
        per_step = {k: 2 * n / v for k, v in steps.times.items()}
        return {"rows_per_s": total / seconds, "seconds": seconds, "steps": per_step}
    finally:
        engine.dispose()


def main() -> None:
    global BATCH
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--impl", choices=["both", "new", "old"], default="both")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--land-batch", type=int, default=BATCH, help="records per landing transaction")
    parser.add_argument(
        "--sqlite-synchronous", default=None, help="e.g. NORMAL (the store leaves SQLite's FULL)"
    )
    parser.add_argument("--profile", default=None, help="cProfile one step, e.g. postgresql:store_claims")
    args = parser.parse_args()
    BATCH = args.land_batch
    tmp = Path(tempfile.mkdtemp(prefix="oafin-bench-"))
    admin = create_engine(args.pg)
    impls = ["old", "new"] if args.impl == "both" else [args.impl]
    results: dict[str, dict[str, Any]] = {}
    print(f"n={args.n} load at start {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    for impl in impls:
        warehouse_rows.BULK = impl == "new"
        for backend in args.backends.split(","):
            print(f"{impl} {backend}", flush=True)
            if backend == "sqlite":
                path = tmp / f"{impl}-{uuid.uuid4().hex[:8]}.db"
                try:
                    results[f"{impl}_{backend}"] = one_backend(
                        f"sqlite:///{path}", backend, args.n, args.profile, args.sqlite_synchronous
                    )
                finally:
                    for p in tmp.glob(f"{path.name}*"):
                        p.unlink()
            else:
                schema = f"oafin_bench_{uuid.uuid4().hex[:10]}"
                with admin.begin() as conn:
                    conn.execute(text(f'create schema "{schema}"'))
                sep = "&" if "?" in args.pg else "?"
                try:
                    url = f"{args.pg}{sep}options=-csearch_path%3D{schema}"
                    results[f"{impl}_{backend}"] = one_backend(url, backend, args.n, args.profile)
                finally:
                    with admin.begin() as conn:
                        conn.execute(text(f'drop schema "{schema}" cascade'))
    admin.dispose()
    tmp.rmdir()
    parts = [f"n={args.n}"]
    for key, res in results.items():
        impl, backend = key.split("_", 1)
        name = "postgres" if backend == "postgresql" else backend
        parts.append(f"{impl}_{name}_rows_per_s={res['rows_per_s']:.0f}")
        parts += [f"{impl}_{name}_{step}_rows_per_s={v:.0f}" for step, v in res["steps"].items()]
    parts += [f"load1={os.getloadavg()[0]:.2f}", f"peak_rss_mib={peak_rss_mib():.0f}"]
    print(" ".join(parts))


if __name__ == "__main__":
    main()
