"""Benchmark: the full reconciliation engine against a plain DuckDB keyed join and datacompy.

    .venv/bin/python -m bench.reconcile --n 1000000

Generates N claims and about N finance documents directly as standard frames (vectorised numpy,
no sandbox, no HTTP) with a realistic share of exceptions and noise, then times, in one process:

- ``engine``: ``oafin.engine.reconcile.reconcile`` — all passes (key, rule, group) and every type,
  including the controls (approvers, approval matrix, budgets) and duplicate invoices;
- ``duckdb``: a full outer join of approved claims and the documents carrying an OA number, on
  the normalised key, counting missing-on-either-side and amount mismatches (the reference for
  what the hardware can do);
- ``datacompy``: ``datacompy.PandasCompare`` of the same two keyed frames.

The counts are cross-checked: the engine's MISSING_IN_OA equals DuckDB's, its AMOUNT_MISMATCH +
DUPLICATE_PAYMENT equals DuckDB's amount mismatches, and its MISSING_IN_FINANCE plus the claims
the rule and group passes matched equals DuckDB's missing-in-finance (DuckDB has no such passes).
Peak RSS is the process's high-water mark (``resource.getrusage``). The last line is
``n=<N> engine_s=<s> duckdb_s=<s> datacompy_s=<s> engine_over_duckdb=<x> peak_rss_mib=<MiB>``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np
import pandas as pd

from oafin.engine.reconcile import ReconcileParams, References, reconcile
from oafin.periods import Period

PERIOD = Period.parse("2026-10")
N_PEOPLE = 2000
DAY = np.timedelta64(1, "D")


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pd.Series:
    return prefix + pd.Series(numbers).astype("str").str.zfill(width)


def _ts(ns: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(ns, utc=True))


def make_frames(n: int, seed: int = 7) -> dict[str, pd.DataFrame]:
    """Claims, documents, invoices and references for one company-month of ``n`` claims."""
    rng = np.random.default_rng(seed)
    start = np.datetime64(PERIOD.start.replace(tzinfo=None), "ns")
    person = rng.integers(0, N_PEOPLE, n)
    # approvers are managers and directors (people 0-3 of every ten); now and then an employee
    approver = rng.integers(0, N_PEOPLE // 10, n) * 10 + rng.integers(0, 4, n)
    approver = np.where(approver == person, (approver + 1) % N_PEOPLE, approver)
    approver = np.where(rng.random(n) < 0.002, (approver // 10) * 10 + 5, approver)
    amount = rng.integers(20_00, 4_000_00, n)
    approved_at = start + (rng.integers(0, 20 * 86_400, n) * 10**9).astype("timedelta64[ns]")
    submitted_at = approved_at - (rng.integers(600, 3 * 86_400, n) * 10**9).astype("timedelta64[ns]")
    status = np.where(rng.random(n) < 0.97, "approved", np.where(rng.random(n) < 0.5, "rejected", "pending"))
    approved = status == "approved"
    claim_no = _ids("BX", np.arange(n), 9)
    people = _ids("P", np.arange(N_PEOPLE), 5)
    claims = pd.DataFrame(
        {
            "claim_id": "dingtalk:" + claim_no,
            "claim_no": claim_no,
            "company_code": "C01",
            "applicant_id": people.to_numpy()[person],
            "amount_fen": amount,
            "status": status,
            "submitted_at": _ts(submitted_at),
            "approved_at": _ts(np.where(approved, approved_at, np.datetime64("NaT"))),
            "approver_ids": people.to_numpy()[approver],
            "budget_code": "B-" + pd.Series(person % 10).astype("str") + "-OPS",
        }
    )
    claims.loc[rng.random(n) < 0.002, "approver_ids"] = claims["applicant_id"]  # self-approval

    # What finance did with each approved claim.
    r = rng.random(n)
    fate = np.select(
        [~approved, r < 0.010, r < 0.018, r < 0.022, r < 0.026, r < 0.030, r < 0.034, r < 0.037, r < 0.25],
        ["none", "missing", "amount", "duplicate", "payee", "late", "rule", "split", "bill"],
        "direct",
    )
    lag = (rng.integers(600, 3 * 86_400, n) * 10**9).astype("timedelta64[ns]")
    paid_at = approved_at + lag + np.where(fate == "late", 7 * DAY, 0 * DAY)
    pay_amount = np.where(fate == "amount", amount + rng.integers(100, 5000, n), amount)
    payee = np.where(fate == "payee", (person + 7) % N_PEOPLE, person)
    ref = claim_no.to_numpy(dtype=object).copy()
    noisy = rng.random(n)
    ref[noisy < 0.03] = np.char.add(ref[noisy < 0.03].astype(str), " ")  # trailing space
    low = (noisy >= 0.03) & (noisy < 0.05)
    ref[low] = np.char.lower(ref[low].astype(str))

    docs = []

    def add(mask: np.ndarray, kind: str, no: pd.Series, **cols: object) -> None:
        k = int(mask.sum())
        frame = {"doc_id": f"kingdee:{kind}:" + no, "doc_no": no, "doc_type": kind, "company_code": "C01"}
        frame.update({c: (v[mask] if isinstance(v, np.ndarray) else v) for c, v in cols.items()})
        docs.append(pd.DataFrame(frame, index=range(k)))

    idx = np.arange(n)
    direct = np.isin(fate, ["direct", "amount", "payee", "late", "duplicate"])
    add(
        direct,
        "payment",
        _ids("FKD", idx[direct], 9),
        claim_no_ref=ref,
        source_doc_nos="",
        payee_id=people.to_numpy()[payee],
        amount_fen=pay_amount,
        status="paid",
        posted_at=paid_at,
        paid_at=paid_at,
    )
    dup = fate == "duplicate"
    add(
        dup,
        "payment",
        _ids("FKX", idx[dup], 9),
        claim_no_ref=ref,
        source_doc_nos="",
        payee_id=people.to_numpy()[payee],
        amount_fen=pay_amount,
        status="paid",
        posted_at=paid_at + DAY,
        paid_at=paid_at + DAY,
    )
    bill = fate == "bill"
    bill_no = _ids("FYBX", idx, 9)
    bill_at = approved_at + lag // 2
    add(
        bill,
        "reimbursement",
        bill_no[bill].reset_index(drop=True),
        claim_no_ref=ref,
        source_doc_nos="",
        payee_id=people.to_numpy()[person],
        amount_fen=amount,
        status="audited",
        posted_at=bill_at,
        paid_at=pd.NaT,
    )
    add(
        bill,
        "payment",
        _ids("FKB", idx[bill], 9),
        claim_no_ref="",
        source_doc_nos=bill_no.to_numpy(dtype=object),
        payee_id=people.to_numpy()[person],
        amount_fen=amount,
        status="paid",
        posted_at=paid_at,
        paid_at=paid_at,
    )
    rule = fate == "rule"  # a payment whose OA number was left empty: the rule pass pairs it
    add(
        rule,
        "payment",
        _ids("FKR", idx[rule], 9),
        claim_no_ref="",
        source_doc_nos="",
        payee_id=people.to_numpy()[person],
        amount_fen=amount,
        status="paid",
        posted_at=paid_at,
        paid_at=paid_at,
    )
    split = fate == "split"  # two payments without an OA number summing to the claim: the group pass
    first_part = amount // 3
    for suffix, part, shift in (("A", first_part, 0 * DAY), ("B", amount - first_part, DAY)):
        add(
            split,
            "payment",
            _ids("FKS" + suffix, idx[split], 9),
            claim_no_ref="",
            source_doc_nos="",
            payee_id=people.to_numpy()[person],
            amount_fen=part,
            status="paid",
            posted_at=paid_at + shift,
            paid_at=paid_at + shift,
        )
    n_orphan = max(1, n // 200)  # bills with no OA claim, proposed by people outside the claimants
    orphan_at = start + (rng.integers(0, 28 * 86_400, n_orphan) * 10**9).astype("timedelta64[ns]")
    orphans = np.ones(n_orphan, dtype=bool)
    add(
        orphans,
        "reimbursement",
        _ids("FYO", np.arange(n_orphan), 9),
        claim_no_ref=_ids("BXO", np.arange(n_orphan), 9).to_numpy(dtype=object),
        source_doc_nos="",
        payee_id=_ids("X", np.arange(n_orphan) % 50, 5).to_numpy(dtype=object),
        amount_fen=rng.integers(20_00, 4_000_00, n_orphan),
        status="audited",
        posted_at=orphan_at,
        paid_at=pd.NaT,
    )
    docs_frame = pd.concat(docs, ignore_index=True)
    for col in ("posted_at", "paid_at"):
        docs_frame[col] = pd.to_datetime(docs_frame[col], utc=True)
    docs_frame = docs_frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)

    inv_no = "2644" + pd.Series(rng.permutation(n)).astype("str").str.zfill(16)
    reuse = rng.random(n) < 0.002
    inv_no[reuse] = inv_no.shift(1).fillna(inv_no)[reuse]  # an invoice already on the previous claim
    invoices = pd.DataFrame({"claim_id": claims["claim_id"], "invoice_code": "", "invoice_no": inv_no})
    roles = np.where(
        np.arange(N_PEOPLE) % 10 == 0,
        "director",
        np.where(np.arange(N_PEOPLE) % 10 < 4, "manager", "employee"),
    )
    references = References(
        people=pd.DataFrame({"person_id": people, "role": roles}),
        approval_matrix={"employee": 0, "manager": 2_000_000, "director": 10_000_000},
        budgets=pd.DataFrame(
            {
                "budget_code": [f"B-{i}-OPS" for i in range(10)],
                "period": PERIOD.name,
                "amount_fen": [int(n * 2_000_00 / 10 * (0.9 if i < 3 else 1.2)) for i in range(10)],
            }
        ),
    )
    return {"claims": claims, "docs": docs_frame, "invoices": invoices, "references": references}


def run_engine(frames: dict) -> tuple[float, dict[str, int], dict]:
    empty_invalid = pd.DataFrame({"claim_id": [], "invoice_key": [], "reasons": []}, dtype="str")
    params = ReconcileParams(period=PERIOD, as_of=PERIOD.end)
    t = time.perf_counter()
    result = reconcile(
        frames["claims"],
        frames["docs"],
        params,
        invoices=frames["invoices"],
        invalid_invoices=empty_invalid,
        references=frames["references"],
    )
    elapsed = time.perf_counter() - t
    counts = {k: int(v) for k, v in result.exceptions["exception_type"].value_counts().items()}
    # documents without an OA number the rule/group passes found tied (reported, not guessed):
    # a keyed join never sees them
    docs = frames["docs"]
    no_ref = set(docs.loc[docs["claim_no_ref"].fillna("").str.strip() == "", "doc_no"])
    missing_oa = result.exceptions.loc[result.exceptions["exception_type"] == "MISSING_IN_OA", "doc_no"]
    counts["MISSING_IN_OA_keyed"] = int((~missing_oa.isin(no_ref)).sum())
    return elapsed, counts, result.stats


DUCKDB_SQL = """
WITH c AS (
    SELECT upper(trim(claim_no)) AS k, amount_fen AS amt FROM claims WHERE status = 'approved'
), d AS (
    SELECT upper(trim(claim_no_ref)) AS k, sum(amount_fen) AS amt
    FROM docs WHERE trim(coalesce(claim_no_ref, '')) <> '' GROUP BY 1
)
SELECT
    count(*) FILTER (WHERE d.k IS NULL) AS missing_in_finance,
    count(*) FILTER (WHERE c.k IS NULL) AS missing_in_oa,
    count(*) FILTER (WHERE c.k IS NOT NULL AND d.k IS NOT NULL AND abs(c.amt - d.amt) > 1) AS amount_mismatch
FROM c FULL OUTER JOIN d ON c.k = d.k
"""


def run_duckdb(frames: dict) -> tuple[float, dict[str, int]]:
    import duckdb

    claims = frames["claims"][["claim_no", "amount_fen", "status"]]
    docs = frames["docs"][["claim_no_ref", "amount_fen"]]
    con = duckdb.connect()
    t = time.perf_counter()
    con.register("claims", claims)
    con.register("docs", docs)
    row = con.execute(DUCKDB_SQL).fetchone()
    elapsed = time.perf_counter() - t
    con.close()
    return elapsed, {"missing_in_finance": row[0], "missing_in_oa": row[1], "amount_mismatch": row[2]}


def run_datacompy(frames: dict) -> tuple[float, dict[str, int]]:
    import datacompy

    claims = frames["claims"]
    docs = frames["docs"]
    t = time.perf_counter()
    left = pd.DataFrame(
        {
            "k": claims["claim_no"].str.strip().str.upper(),
            "amount_fen": claims["amount_fen"].astype("int64"),
        }
    ).loc[(claims["status"] == "approved").to_numpy()]
    ref = docs["claim_no_ref"].fillna("").str.strip().str.upper()
    right = (
        pd.DataFrame({"k": ref, "amount_fen": docs["amount_fen"].astype("int64")})
        .loc[(ref != "").to_numpy()]
        .groupby("k", as_index=False)["amount_fen"]
        .sum()
    )
    cmp = datacompy.PandasCompare(left, right, join_columns="k", abs_tol=1)
    counts = {
        "missing_in_finance": len(cmp.df1_unq_rows),
        "missing_in_oa": len(cmp.df2_unq_rows),
        "amount_mismatch": int(cmp.intersect_rows.shape[0] - cmp.count_matching_rows()),
    }
    return time.perf_counter() - t, counts


def peak_rss_mib() -> float:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return kib / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time the engine against DuckDB and datacompy.")
    parser.add_argument("--n", type=int, default=100_000, help="claims (documents: about as many)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-datacompy", action="store_true", help="datacompy is slow at 1M; skip it")
    args = parser.parse_args(argv)

    t = time.perf_counter()
    frames = make_frames(args.n, args.seed)
    print(
        f"generated {len(frames['claims'])} claims, {len(frames['docs'])} documents, "
        f"{len(frames['invoices'])} invoices in {time.perf_counter() - t:.1f} s"
    )
    print(f"peak RSS after generating: {peak_rss_mib():.0f} MiB")
    engine_s, counts, stats = run_engine(frames)
    print(f"engine:    {engine_s:8.3f} s  {dict(sorted(counts.items()))}")
    print(f"           matches by pass {stats['matches_by_pass']}, ambiguous {stats['ambiguous_candidates']}")
    print(f"peak RSS after the engine: {peak_rss_mib():.0f} MiB")
    duck_s, duck = run_duckdb(frames)
    print(f"duckdb:    {duck_s:8.3f} s  {duck}")
    if args.skip_datacompy:
        dc_s, dc = float("nan"), {}
    else:
        dc_s, dc = run_datacompy(frames)
    print(f"datacompy: {dc_s:8.3f} s  {dc}")

    claims = frames["claims"]
    approved = claims.loc[claims["status"] == "approved", "claim_id"]
    by_pass = stats["matches_by_pass"]
    # claims the rule and group passes matched, which a keyed join cannot see
    extra = _claims_matched_beyond_key(frames, approved)
    checks = {
        "missing_in_oa": (counts.get("MISSING_IN_OA_keyed", 0), duck["missing_in_oa"]),
        "amount_mismatch": (
            counts.get("AMOUNT_MISMATCH", 0) + counts.get("DUPLICATE_PAYMENT", 0),
            duck["amount_mismatch"],
        ),
        "missing_in_finance": (counts.get("MISSING_IN_FINANCE", 0) + extra, duck["missing_in_finance"]),
    }
    ok = all(a == b for a, b in checks.values())
    print(
        f"cross-check engine vs duckdb {'OK' if ok else 'DIFFERS'}: {checks} (rule+group claims {extra}, {by_pass})"
    )
    ratio = engine_s / duck_s
    print(f"engine/duckdb = {ratio:.1f}x, engine/datacompy = {engine_s / dc_s:.2f}x")
    print(
        f"n={args.n} engine_s={engine_s:.3f} duckdb_s={duck_s:.3f} datacompy_s={dc_s:.3f} "
        f"engine_over_duckdb={ratio:.1f} peak_rss_mib={peak_rss_mib():.0f}"
    )
    return 0 if ok else 1


def _claims_matched_beyond_key(frames: dict, approved: pd.Series) -> int:
    """Approved claims with no keyed document whose documents the rule or group pass found."""
    docs = frames["docs"]
    keyed = set(docs["claim_no_ref"].fillna("").str.strip().str.upper())
    claims = frames["claims"]
    no_key = claims.loc[claims["claim_id"].isin(approved) & ~claims["claim_no"].isin(keyed)]
    params = ReconcileParams(period=PERIOD, as_of=PERIOD.end)
    sub_docs = docs.loc[docs["doc_no"].str.startswith(("FKR", "FKSA", "FKSB", "FYO"))]
    result = reconcile(no_key, sub_docs, params)
    return int(result.matches["claim_id"].nunique())


if __name__ == "__main__":
    sys.exit(main())
