"""Benchmark: the full reconciliation engine against a plain DuckDB keyed join and datacompy.

    .venv/bin/python -m bench.reconcile --n 1000000 [--repeat 3]
    .venv/bin/python -m bench.reconcile --curve 100000,1000000,3000000,10000000

Generates N claims and about N finance documents directly as standard frames
(``bench.reconcile_frames``: the pipeline's columns and dtypes, built in Arrow buffers, no sandbox,
no HTTP) with a realistic share of exceptions and noise, then times, in one process:

- ``engine``: ``oafin.engine.reconcile.reconcile`` — all passes (key, rule, group) and every type,
  including the controls (approvers, approval matrix, budgets) and duplicate invoices;
- ``duckdb``: a full outer join of approved claims and the documents carrying an OA number, on
  the normalised key, counting missing-on-either-side and amount mismatches (the reference for
  what the hardware can do);
- ``datacompy``: ``datacompy.PandasCompare`` of the same two keyed frames.

``--repeat K`` takes the fastest of K runs of the engine and of DuckDB. The counts are
cross-checked (``cross_check``): the engine's MISSING_IN_OA equals DuckDB's, its AMOUNT_MISMATCH +
DUPLICATE_PAYMENT equals DuckDB's amount mismatches, and its MISSING_IN_FINANCE plus the claims
the rule and group passes matched equals DuckDB's missing-in-finance (DuckDB has no such passes).

Memory: ``frames_mib`` is the RSS the generated frames add to the process (after generating,
before the engine); ``engine_extra_mib`` the engine's own: its peak RSS minus the RSS before it
(exact when the engine sets the process's high-water mark, else the highest RSS a thread sampling
``/proc/self/statm`` every 2 ms saw); ``peak_rss_mib`` the process's high-water mark
(``ru_maxrss``), everything included. The last two lines are

    memory: base_rss_mib=<MiB> frames_mib=<MiB> generate_peak_rss_mib=<MiB> engine_extra_mib=<MiB> ...
    n=<N> engine_s=<s> duckdb_s=<s> datacompy_s=<s> engine_over_duckdb=<x> peak_rss_mib=<MiB>

``--curve N1,N2,...`` runs each size in its own process (so each size's peak RSS is its own:
the child's ``ru_maxrss`` from ``wait4``), prints a table of them and, last, how the engine's time
grows with n: the exponent of a log-log fit over all sizes and between neighbouring sizes
(1.0 is linear).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import math
import os
import resource
import subprocess
import sys
import threading
import time
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from bench.reconcile_frames import PERIOD, make_frames, people_for
from oafin.engine.reconcile import ReconcileParams, ReconcileResult, reconcile

PAGE = os.sysconf("SC_PAGE_SIZE")
try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6")
except OSError:  # not glibc
    _LIBC = None
MIB = 1024 * 1024


# --- memory ------------------------------------------------------------------------------------


def peak_rss_mib() -> float:
    """The process's high-water mark so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def rss_mib() -> float:
    """The process's resident set now."""
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * PAGE / MIB


def release_memory() -> None:
    """Hand free pages back (the Arrow pool's and glibc's heap, where numpy's freed temporaries
    stay resident), so RSS shows what is held. The frames hold no reference cycles: they are freed
    as soon as they are dropped."""
    pa.default_memory_pool().release_unused()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


class PeakRss:
    """The highest RSS while the block runs (``peak``) and the RSS before it (``before``).

    Exact when the block raises the process's high-water mark (``ru_maxrss``); otherwise the
    highest of the samples a thread reads every ``interval`` s (a lower bound: a peak shorter than
    a sample, or held while the thread waits for the GIL, is missed).
    """

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.before = self.peak = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._hwm_before = 0.0

    def _sample(self) -> None:
        fd = os.open("/proc/self/statm", os.O_RDONLY)
        try:
            while not self._stop.is_set():
                pages = int(os.pread(fd, 128, 0).split()[1])
                self.peak = max(self.peak, pages * PAGE / MIB)
                time.sleep(self.interval)
        finally:
            os.close(fd)

    def __enter__(self) -> PeakRss:
        self.before = self.peak = rss_mib()
        self._hwm_before = peak_rss_mib()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self.peak = max(self.peak, rss_mib())
        hwm = peak_rss_mib()
        if hwm > self._hwm_before:  # the block set a new high-water mark: that is its peak
            self.peak = hwm

    @property
    def extra(self) -> float:
        return self.peak - self.before


# --- the contenders ----------------------------------------------------------------------------


def _arrow(column: pd.Series) -> pa.Array:
    return pa.array(column, type=pa.large_string(), from_pandas=True)


def run_engine(frames: dict) -> tuple[float, ReconcileResult]:
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
    return time.perf_counter() - t, result


def engine_counts(frames: dict, result: ReconcileResult) -> dict[str, int]:
    """Exceptions by type, and MISSING_IN_OA_keyed: those of documents carrying an OA number (the
    documents without one that the rule/group passes found tied are reported, not guessed: a keyed
    join never sees them)."""
    exceptions = result.exceptions
    counts = {k: int(v) for k, v in exceptions["exception_type"].value_counts().items()}
    docs = frames["docs"]
    no_ref = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(_arrow(docs["claim_no_ref"])), ""), True)
    no_ref_docs = _arrow(docs["doc_no"]).filter(no_ref)
    missing_oa = _arrow(exceptions.loc[exceptions["exception_type"] == "MISSING_IN_OA", "doc_no"])
    counts["MISSING_IN_OA_keyed"] = len(missing_oa) - int(
        pc.sum(pc.is_in(missing_oa, value_set=no_ref_docs)).as_py() or 0
    )
    return counts


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
    claims = frames["claims"][["claim_no", "amount_fen", "status"]]
    docs = frames["docs"][["claim_no_ref", "amount_fen"]]
    con = duckdb.connect()
    t = time.perf_counter()
    con.register("claims", claims)
    con.register("docs", docs)
    row = con.execute(DUCKDB_SQL).fetchone()
    elapsed = time.perf_counter() - t
    con.close()
    assert row is not None
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


def claims_matched_beyond_key(frames: dict) -> int:
    """Approved claims with no keyed document whose documents the rule or group pass found."""
    docs, claims = frames["docs"], frames["claims"]
    keyed = pc.unique(pc.utf8_upper(pc.utf8_trim_whitespace(_arrow(docs["claim_no_ref"]))))
    has_key = pc.is_in(_arrow(claims["claim_no"]), value_set=keyed).to_numpy(zero_copy_only=False)
    approved = (claims["status"] == "approved").to_numpy(dtype=bool)
    no_key = claims.loc[approved & ~has_key]
    sub_docs = docs.loc[docs["doc_no"].str.startswith(("FKR", "FKSA", "FKSB", "FYO")).to_numpy(dtype=bool)]
    result = reconcile(no_key, sub_docs, ReconcileParams(period=PERIOD, as_of=PERIOD.end))
    return int(result.matches["claim_id"].nunique())


def cross_check(
    frames: dict, counts: dict[str, int], duck: dict[str, int]
) -> tuple[bool, dict[str, tuple[int, int]], int]:
    """(whether the engine agrees with DuckDB, engine vs DuckDB per count, the claims the rule and
    group passes matched — which a keyed join cannot see)."""
    extra = claims_matched_beyond_key(frames)
    checks = {
        "missing_in_oa": (counts.get("MISSING_IN_OA_keyed", 0), duck["missing_in_oa"]),
        "amount_mismatch": (
            counts.get("AMOUNT_MISMATCH", 0) + counts.get("DUPLICATE_PAYMENT", 0),
            duck["amount_mismatch"],
        ),
        "missing_in_finance": (counts.get("MISSING_IN_FINANCE", 0) + extra, duck["missing_in_finance"]),
    }
    return all(int(a) == int(b) for a, b in checks.values()), checks, extra


# --- one size ----------------------------------------------------------------------------------


def run_size(n: int, seed: int, repeat: int, skip_datacompy: bool) -> int:
    gc.collect()
    release_memory()
    base = rss_mib()
    t = time.perf_counter()
    frames = make_frames(n, seed)
    gen_s = time.perf_counter() - t
    gen_peak = peak_rss_mib()
    release_memory()
    frames_mib = rss_mib() - base
    print(
        f"generated {len(frames['claims'])} claims, {len(frames['docs'])} documents, "
        f"{len(frames['invoices'])} invoices ({people_for(n)} people) in {gen_s:.1f} s"
    )
    print(
        f"RSS: {base:.0f} MiB before generating, frames {frames_mib:.0f} MiB, peak while generating {gen_peak:.0f} MiB"
    )

    times, cpu_times, extras, peaks = [], [], [], []
    result: ReconcileResult | None = None
    for _ in range(repeat):
        result = None
        if times:
            gc.collect()  # the previous run's garbage in reference cycles would count against this run
        release_memory()
        cpu = time.process_time()
        with PeakRss() as mem:
            elapsed, result = run_engine(frames)
        cpu_times.append(time.process_time() - cpu)
        times.append(elapsed)
        extras.append(mem.extra)
        peaks.append(mem.peak)
    assert result is not None
    engine_s, engine_cpu_s = min(times), min(cpu_times)
    engine_extra, engine_peak = max(extras), max(peaks)
    counts = engine_counts(frames, result)
    stats = result.stats
    del result
    gc.collect()  # nor should the engine's garbage count against DuckDB's and the cross-check's
    print(
        f"engine:    {engine_s:8.3f} s  (runs {', '.join(f'{x:.3f}' for x in times)}; CPU {engine_cpu_s:.3f} s)  "
        f"{dict(sorted(counts.items()))}"
    )
    print(f"           matches by pass {stats['matches_by_pass']}, ambiguous {stats['ambiguous_candidates']}")
    print(
        f"           RSS {engine_extra:+.0f} MiB over the frames (peak {engine_peak:.0f} MiB; "
        f"by run {', '.join(f'{x:+.0f}' for x in extras)})"
    )

    duck_times = []
    for _ in range(repeat):
        release_memory()
        elapsed, duck = run_duckdb(frames)
        duck_times.append(elapsed)
    duck_s = min(duck_times)
    peak_after_duckdb = peak_rss_mib()
    print(f"duckdb:    {duck_s:8.3f} s  (runs {', '.join(f'{x:.3f}' for x in duck_times)})  {duck}")
    if skip_datacompy:
        dc_s, dc = float("nan"), {}
    else:
        dc_s, dc = run_datacompy(frames)
    print(f"datacompy: {dc_s:8.3f} s  {dc}")

    ok, checks, extra = cross_check(frames, counts, duck)
    peak_after_check = peak_rss_mib()
    print(
        f"cross-check engine vs duckdb {'OK' if ok else 'DIFFERS'}: {checks} "
        f"(rule+group claims {extra}, {stats['matches_by_pass']})"
    )
    ratio = engine_s / duck_s
    print(f"engine/duckdb = {ratio:.1f}x, engine/datacompy = {engine_s / dc_s:.2f}x")
    load = os.getloadavg()
    print(
        f"memory: base_rss_mib={base:.0f} frames_mib={frames_mib:.0f} generate_peak_rss_mib={gen_peak:.0f} "
        f"engine_extra_mib={engine_extra:.0f} engine_peak_rss_mib={engine_peak:.0f} "
        f"peak_after_duckdb_mib={peak_after_duckdb:.0f} peak_after_check_mib={peak_after_check:.0f} generate_s={gen_s:.2f} "
        f"engine_cpu_s={engine_cpu_s:.3f} "
        f"docs={len(frames['docs'])} people={people_for(n)} check={'OK' if ok else 'DIFFERS'} load1={load[0]:.2f}"
    )
    print(
        f"n={n} engine_s={engine_s:.3f} duckdb_s={duck_s:.3f} datacompy_s={dc_s:.3f} "
        f"engine_over_duckdb={ratio:.1f} peak_rss_mib={peak_rss_mib():.0f}"
    )
    return 0 if ok else 1


# --- the curve ---------------------------------------------------------------------------------


def fields(line: str) -> dict[str, str]:
    """The ``key=value`` words of a line."""
    return dict(word.split("=", 1) for word in line.split() if "=" in word)


def run_child(n: int, seed: int, repeat: int) -> dict[str, Any]:
    """One size in its own process: its printed figures, its peak RSS (``wait4``), its exit code."""
    cmd = [sys.executable, "-m", "bench.reconcile", "--n", str(n), "--seed", str(seed)]
    cmd += ["--repeat", str(repeat), "--skip-datacompy"]
    load = os.getloadavg()[0]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    out: dict[str, Any] = {}
    for line in proc.stdout:
        print(f"  | {line}", end="", flush=True)
        if line.startswith(("memory:", "n=")):
            out.update(fields(line))
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    out["rc"] = proc.returncode
    out["child_peak_rss_mib"] = usage.ru_maxrss / 1024
    out["load_start"] = load
    return out


def curve(sizes: list[int], seed: int, repeat: int) -> int:
    rows = []
    for n in sizes:
        print(f"--- n={n} (load {' '.join(f'{x:.2f}' for x in os.getloadavg())})", flush=True)
        rows.append((n, run_child(n, seed, repeat)))
    print()
    head = (
        f"{'n':>10} {'docs':>10} {'people':>6} {'gen_s':>6} {'frames_MiB':>10} {'engine_s':>9} {'s_per_1M_n':>10} "
        f"{'cpu_s':>8} "
        f"{'duckdb_s':>8} {'ratio':>6} {'engine_extra_MiB':>16} {'peak_rss_MiB':>12} {'load1':>5} check"
    )
    print(head)
    done = []
    for n, r in rows:
        if "engine_s" not in r:
            print(f"{n:>10} failed (exit {r['rc']}, peak RSS {r['child_peak_rss_mib']:.0f} MiB)")
            continue
        e, d, cpu = float(r["engine_s"]), float(r["duckdb_s"]), float(r["engine_cpu_s"])
        done.append((n, e, r["child_peak_rss_mib"], cpu))
        print(
            f"{n:>10} {r['docs']:>10} {r['people']:>6} {float(r['generate_s']):>6.1f} {float(r['frames_mib']):>10.0f} "
            f"{e:>9.3f} {e / (n / 1e6):>10.3f} {cpu:>8.3f} {d:>8.3f} {e / d:>6.1f} {float(r['engine_extra_mib']):>16.0f} "
            f"{r['child_peak_rss_mib']:>12.0f} {max(r['load_start'], float(r['load1'])):>5.2f} {r['check']}"
        )
    slope, steps = growth([(x[0], x[1]) for x in done])
    cpu_slope, cpu_steps = growth([(x[0], x[3]) for x in done])
    failed = [n for n, r in rows if r["rc"] != 0]
    print(
        f"curve n={','.join(str(n) for n, _ in rows)} engine_exponent={slope:.2f} steps={steps} "
        f"engine_cpu_exponent={cpu_slope:.2f} cpu_steps={cpu_steps} "
        f"max_peak_rss_mib={max((x[2] for x in done), default=float('nan')):.0f} failed={','.join(map(str, failed)) or 'none'}"
    )
    return 1 if failed else 0


def growth(points: list[tuple[int, float]]) -> tuple[float, str]:
    """How time grows with n: the slope of log(time) on log(n) over all points (1.0 is linear),
    and between neighbouring points."""
    if len(points) < 2:
        return float("nan"), ""
    ns = np.log(np.array([p[0] for p in points], dtype=float))
    slope = float(np.polyfit(ns, np.log(np.array([p[1] for p in points])), 1)[0])
    steps = ",".join(
        f"{_short(a[0])}-{_short(b[0])}:{math.log(b[1] / a[1]) / math.log(b[0] / a[0]):.2f}"
        for a, b in zip(points, points[1:], strict=False)
    )
    return slope, steps


def _short(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n / 1e3:g}k"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time the engine against DuckDB and datacompy.")
    parser.add_argument("--n", type=int, default=100_000, help="claims (documents: about as many)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of the engine and of DuckDB; the fastest counts"
    )
    parser.add_argument("--skip-datacompy", action="store_true", help="datacompy is slow at 1M; skip it")
    parser.add_argument(
        "--curve",
        help="comma-separated sizes, each run in its own process (datacompy skipped), e.g. 100000,1000000",
    )
    args = parser.parse_args(argv)
    if args.curve:
        return curve([int(x) for x in args.curve.split(",")], args.seed, args.repeat)
    return run_size(args.n, args.seed, args.repeat, args.skip_datacompy)


if __name__ == "__main__":
    sys.exit(main())
