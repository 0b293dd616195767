"""How long the workbook and the HTML report take, and how much memory, for a big period.

    .venv/bin/python -m bench.reports [--exceptions 100000] [--claims 60000]

Builds synthetic standard frames (claims, bills, payments, people) and ``--exceptions`` exceptions
spread over every type, then times each step separately: assembling the report data, writing
reconciliation.xlsx (xlsxwriter, constant-memory) and writing report.html. Peak memory is
the process's max RSS after each step; ``--trace`` adds Python's allocation peak per step
(tracemalloc, which slows the steps several times over: its times are not the real ones).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_contracts.frames import to_frame
from oafin.reporting.context import assemble_report_data
from oafin.reporting.html_report import write_html_report
from oafin.reporting.workbook import write_workbook
from oafin.standard import EXCEPTION_TYPES

AS_OF = datetime(2026, 10, 31, 16, 0, tzinfo=UTC)


def synthetic(n_exceptions: int, n_claims: int, seed: int = 1) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    start = AS_OF - timedelta(days=90)
    approved = [start + timedelta(seconds=int(s)) for s in rng.integers(0, 90 * 86400, n_claims)]
    claims = to_frame(
        "expense_claim",
        [
            {
                "claim_id": f"dingtalk:{i}",
                "claim_no": f"BX{i:010d}",
                "applicant_id": f"P{i % 500:04d}",
                "amount_fen": int(rng.integers(100, 5_000_000)),
                "status": "approved",
                "submitted_at": a - timedelta(days=1),
                "approved_at": a,
            }
            for i, a in enumerate(approved)
        ],
    )
    docs = to_frame(
        "finance_doc",
        [
            {
                "doc_id": f"kingdee:p:{i}",
                "doc_no": f"FK{i:010d}",
                "doc_type": "payment",
                "claim_no_ref": f"BX{i:010d}",
                "amount_fen": 100,
                "status": "paid",
                "paid_at": a + timedelta(hours=float(rng.gamma(2.0, 24.0))),
            }
            for i, a in enumerate(approved)
            if i % 10
        ],
    )
    people = to_frame(
        "person",
        [{"person_id": f"P{i:04d}", "name": f"员工{i}", "department": f"部门{i % 12}"} for i in range(500)],
    )
    kinds = rng.choice(list(EXCEPTION_TYPES), n_exceptions)
    exceptions = pd.DataFrame(
        {
            "exception_id": [f"{i:016x}" for i in range(n_exceptions)],
            "exception_type": kinds,
            "company_code": "C01",
            "period": "2026-10",
            "claim_no": [f"BX{int(i) % n_claims:010d}" for i in range(n_exceptions)],
            "doc_no": None,
            "invoice_no": None,
            "budget_code": None,
            "person_id": [f"P{int(i) % 500:04d}" for i in rng.integers(0, 500, n_exceptions)],
            "amount_fen": rng.integers(-100_000, 5_000_000, n_exceptions),
            "detail": ["OA 123456 fen, finance 123400 fen; 收款账号 6222020200112233445"] * n_exceptions,
            "status": "open",
            "first_seen": AS_OF,
            "last_seen": AS_OF,
        }
    )
    return {"claims": claims, "docs": docs, "people": people, "exceptions": exceptions}


TRACE = False


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(label: str, fn: Callable[[], Any]) -> Any:
    """Time ``fn``; with ``--trace`` (slower: tracemalloc hooks every allocation) also its peak."""
    if TRACE:
        tracemalloc.start()
    t0 = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - t0
    extra = ""
    if TRACE:
        extra = f"   peak Python allocations {tracemalloc.get_traced_memory()[1] / 2**20:7.1f} MiB"
        tracemalloc.stop()
    print(f"{label:<22} {elapsed:8.2f} s   process max RSS so far {_rss_mib():6.0f} MiB{extra}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exceptions", type=int, default=100_000)
    parser.add_argument("--claims", type=int, default=60_000)
    parser.add_argument("--trace", action="store_true", help="also measure peak allocations (slow)")
    args = parser.parse_args(argv)
    global TRACE
    TRACE = args.trace

    frames = synthetic(args.exceptions, args.claims)
    print(f"after building the input frames: max RSS {_rss_mib():.0f} MiB")
    print(f"{args.exceptions:,} exceptions, {args.claims:,} claims, {len(frames['docs']):,} payments")
    data = measure(
        "assemble report data",
        lambda: assemble_report_data(
            period="2026-10",
            company_code="C01",
            as_of=AS_OF,
            exceptions=frames["exceptions"],
            stats={"auto_match_rate": 0.9, "data_accuracy": 0.99, "docs_in_scope": len(frames["docs"])},
            claims=frames["claims"],
            docs=frames["docs"],
            people=frames["people"],
            reviews=pd.DataFrame(columns=["exception_id", "comment"]),
            # the match table as the engine stores it: each payment linked to its claim by number
            matches=pd.DataFrame(
                {
                    "claim_id": "dingtalk:" + frames["docs"]["doc_id"].str.rsplit(":", n=1).str[1],
                    "doc_id": frames["docs"]["doc_id"],
                    "match_pass": "key",
                    "rule": "claim_no_ref",
                }
            ),
        ),
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        xlsx = measure("write workbook", lambda: write_workbook(data, out / "reconciliation.xlsx"))
        html = measure("write report.html", lambda: write_html_report(data, out / "report.html"))
        print(
            f"reconciliation.xlsx {xlsx.stat().st_size / 2**20:6.1f} MiB; report.html {html.stat().st_size / 2**20:6.1f} MiB"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
