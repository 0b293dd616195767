"""Time opening a brand-new warehouse: the old ``metadata.create_all`` against today's ``connect``
(create at the newest revision + stamp), and opening an existing one (the run-start check).

    .venv/bin/python bench/warehouse_create.py [--n 20] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]

Each round uses a fresh SQLite file and a fresh PostgreSQL schema; medians are printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text  # noqa: E402

from oafin.warehouse.migrate import head  # noqa: E402
from oafin.warehouse.schema import metadata  # noqa: E402
from oafin.warehouse.store import connect, open_engine  # noqa: E402


def _old_create_all(url: str) -> None:
    engine = open_engine(url)
    metadata.create_all(engine)
    engine.dispose()


def _connect(url: str) -> None:
    connect(url).dispose()


def _time_ms(fresh_url: Callable[[], str], step: Callable[[str], None], reopen: bool = False) -> float:
    url = fresh_url()
    if reopen:
        _connect(url)
    started = time.perf_counter()
    step(url)
    return (time.perf_counter() - started) * 1000


def _medians(n: int, fresh_url: Callable[[], str]) -> tuple[float, float, float]:
    """Rounds interleaved, so a busy machine slows every variant alike."""
    old, new, check = [], [], []
    for _ in range(n):
        old.append(_time_ms(fresh_url, _old_create_all))
        new.append(_time_ms(fresh_url, _connect))
        check.append(_time_ms(fresh_url, _connect, reopen=True))
    return statistics.median(old), statistics.median(new), statistics.median(check)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    head()  # load the revision scripts once, as a process does on its first connect
    tmp = Path(tempfile.mkdtemp(prefix="oafin-bench-"))

    def sqlite_url() -> str:
        return f"sqlite:///{tmp / uuid.uuid4().hex}.db"

    admin = create_engine(args.pg)
    schemas: list[str] = []

    def pg_url() -> str:
        schema = f"oafin_bench_{uuid.uuid4().hex[:10]}"
        with admin.begin() as conn:
            conn.execute(text(f'create schema "{schema}"'))
        schemas.append(schema)
        sep = "&" if "?" in args.pg else "?"
        return f"{args.pg}{sep}options=-csearch_path%3D{schema}"

    try:
        for name, fresh in (("sqlite", sqlite_url), ("postgresql", pg_url)):
            old, new, check = _medians(args.n, fresh)
            print(
                f"{name:10} new warehouse: create_all {old:6.1f} ms, connect at head {new:6.1f} ms "
                f"({new / old:4.2f}x); existing warehouse check {check:5.1f} ms (median of {args.n})"
            )
    finally:
        with admin.begin() as conn:
            for schema in schemas:
                conn.execute(text(f'drop schema "{schema}" cascade'))
        admin.dispose()


if __name__ == "__main__":
    main()
