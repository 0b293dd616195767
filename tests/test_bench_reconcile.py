"""``bench/reconcile.py`` at a small size, so the benchmark cannot rot silently: its generator makes
the frames the pipeline would hand the engine, the engine takes them, and the engine's counts agree
with DuckDB's keyed join (the benchmark's own cross-check). No timing is asserted here."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pytest

from bench.reconcile import cross_check, engine_counts, fields, growth, main, run_duckdb, run_engine
from bench.reconcile_frames import constant, make_frames, numbered, people_for
from data_contracts.frames import dtypes


@pytest.fixture(scope="module")
def frames() -> dict:
    return make_frames(20_000, seed=3)


def test_frames_have_the_pipelines_dtypes(frames: dict) -> None:
    for name, entity in (("claims", "expense_claim"), ("docs", "finance_doc"), ("invoices", "claim_invoice")):
        standard = dtypes(entity)
        got = frames[name].dtypes.to_dict()
        assert set(got) <= set(standard), name
        assert {col: standard[col] for col in got} == got, name
    # about one document per claim, with every kind of document the fates make
    assert 1.1 < len(frames["docs"]) / len(frames["claims"]) < 1.3
    prefixes = set(frames["docs"]["doc_no"].str.extract(r"^([A-Z]+)", expand=False))
    assert prefixes == {"FKD", "FKX", "FYBX", "FKB", "FKR", "FKSA", "FKSB", "FYO"}


def test_engine_agrees_with_duckdb_on_the_bench_frames(frames: dict) -> None:
    _, result = run_engine(frames)
    counts = engine_counts(frames, result)
    _, duck = run_duckdb(frames)
    ok, checks, extra = cross_check(frames, counts, duck)
    assert ok, checks
    # every pass and the noisy keys are exercised, not just the plain keyed join
    assert set(result.stats["matches_by_pass"]) == {"key", "rule", "group"}
    assert extra > 0
    for kind in (
        "MISSING_IN_FINANCE",
        "AMOUNT_MISMATCH",
        "DUPLICATE_PAYMENT",
        "PAYEE_MISMATCH",
        "LATE_PAYMENT",
    ):
        assert counts.get(kind, 0) > 0, kind
    for kind in ("SELF_APPROVAL", "APPROVAL_LIMIT", "DUPLICATE_INVOICE", "MISSING_IN_OA"):
        assert counts.get(kind, 0) > 0, kind
    refs = frames["docs"]["claim_no_ref"]
    assert refs.str.endswith(" ").any() and refs.str.startswith("bx").any()


def test_text_columns_are_built_without_python_strings() -> None:
    ids = numbered("BX", np.array([0, 42, 999_999_999]), 9)
    assert ids.type == pa.large_string()
    assert ids.to_pylist() == ["BX000000000", "BX000000042", "BX999999999"]
    assert constant("C01", 2).to_pylist() == ["C01", "C01"]
    assert constant("", 3).to_pylist() == ["", "", ""]


def test_people_grow_with_the_claims() -> None:
    assert people_for(20_000) == 2000
    assert people_for(10_000_000) == 20_000
    assert people_for(3_333_333) % 10 == 0


def test_single_size_run_keeps_its_last_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--n", "2000", "--skip-datacompy", "--repeat", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(
        r"n=2000 engine_s=\S+ duckdb_s=\S+ datacompy_s=nan engine_over_duckdb=\S+ peak_rss_mib=\d+", lines[-1]
    )
    memory = fields(lines[-2])
    assert memory["check"] == "OK" and float(memory["engine_cpu_s"]) > 0
    assert float(memory["frames_mib"]) > 0 and float(memory["engine_extra_mib"]) >= 0


def test_growth_is_the_log_log_slope() -> None:
    slope, steps = growth([(100_000, 1.0), (1_000_000, 10.0), (10_000_000, 200.0)])
    assert steps == "100k-1M:1.00,1M-10M:1.30"
    assert 1.0 < slope < 1.3
    assert growth([(1_000_000, 2.0)])[1] == ""
