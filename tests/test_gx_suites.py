"""Great Expectations suites (GX 1.24 on pandas 3): they pass on good batches, catch broken tie-outs,
and build their Data Docs where they are told to, nowhere else."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pandas as pd

from data_contracts.frames import to_frame
from data_contracts.gx_suites import TOTALS_CHECKS, result_checks, run_suites, standard_checks, totals_frame
from tests.test_report_context import AS_OF, CLAIMS, report_data


def test_suites_pass_fail_and_build_data_docs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # GX must not leave a gx/ folder in the working directory
    claims = to_frame("expense_claim", CLAIMS)
    data = report_data()
    shown = data.exceptions[["exception_id", "exception_type", "status"]].assign(
        abs_fen=data.exceptions["amount_fen"].fillna(0).astype("int64").abs()
    )
    good_totals = totals_frame(
        data.kpis, {"approved_in_scope": 4, "approved_matched": 4, "claims_in_scope": 5}
    )
    bad_totals = totals_frame(
        data.kpis, {"approved_in_scope": 4, "approved_matched": 3, "claims_in_scope": 5}
    )
    fresh = claims.copy()
    fresh.loc[0, "submitted_at"] = pd.Timestamp(AS_OF) - timedelta(days=1)
    stale = claims  # newest submission 30 days before as_of
    batches = {
        "standard-expense_claim": (
            fresh,
            standard_checks("expense_claim", landed=8, quarantined=2, as_of=AS_OF),
        ),
        "stale-expense_claim": (
            stale,
            standard_checks("expense_claim", landed=9, quarantined=2, as_of=AS_OF),
        ),
        "reconciliation-exceptions": (shown, result_checks(5, 136_406)),
        "reconciliation-exceptions-off": (shown, result_checks(6, 136_405)),
        "reconciliation-totals": (good_totals, TOTALS_CHECKS),
        "reconciliation-totals-off": (bad_totals, TOTALS_CHECKS),
    }
    docs = tmp_path / "reports" / "2026-10" / "data_docs"
    result = run_suites(batches, docs, run_name="2026-10", run_time=AS_OF)

    failures = "\n".join(result["failures"])
    assert result["suites"] == {
        "standard-expense_claim": True,
        "stale-expense_claim": False,
        "reconciliation-exceptions": True,
        "reconciliation-exceptions-off": False,
        "reconciliation-totals": True,
        "reconciliation-totals-off": False,
    }, failures
    assert "stale-expense_claim: expect_table_row_count_to_equal" in failures
    assert "stale-expense_claim: expect_column_max_to_be_between submitted_at" in failures
    assert "reconciliation-exceptions-off: expect_table_row_count_to_equal" in failures
    assert (
        "reconciliation-exceptions-off: expect_column_sum_to_be_between abs_fen observed 136406" in failures
    )
    assert "reconciliation-totals-off: expect_column_pair_values_to_be_equal" in failures
    assert result["passed"] + len(result["failures"]) == result["evaluated"]

    index = Path(result["data_docs"])
    assert index == docs / "index.html" and index.exists()
    pages = list((docs / "validations").rglob("*.html"))
    assert len(pages) == len(batches)
    assert "reconciliation-totals-off" in index.read_text(encoding="utf-8")
    assert not (tmp_path / "gx").exists() and not os.path.exists("great_expectations.yml")

    # a second run replaces the site: only this run's pages remain
    again = run_suites(
        {"reconciliation-totals": batches["reconciliation-totals"]}, docs, run_name="2026-10", run_time=AS_OF
    )
    assert again["success"] and again["evaluated"] == len(TOTALS_CHECKS)
    assert len(list((docs / "validations").rglob("*.html"))) == 1


ASSET = re.compile(
    r"""(?:\bsrc\s*=\s*["']?|<link\b[^>]*?\bhref\s*=\s*["']?|url\(\s*["']?)(?:https?:)?//""", re.I
)


def test_data_docs_render_offline(tmp_path, monkeypatch):
    """Issue 11: no page loads anything from a CDN; the index's table is drawn with no network."""
    from tests.test_report_html import render

    monkeypatch.chdir(tmp_path)
    claims = to_frame("expense_claim", CLAIMS)
    batches = {"standard-expense_claim": (claims, standard_checks("expense_claim", 6, 0, as_of=AS_OF))}
    docs = tmp_path / "data_docs"
    result = run_suites(batches, docs, run_name="2026-10", run_time=AS_OF)
    pages = sorted(docs.rglob("*.html"))
    assert len(pages) >= 3
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert not ASSET.search(text), f"{page}: {ASSET.search(text).group(0)}"
        assert 'integrity="' not in text
    index = docs / "index.html"
    linked = re.findall(
        r"""(?:src|href)=["']?(\./static/vendor/[^"' >]+)""", index.read_text(encoding="utf-8")
    )
    assert any(link.endswith("bootstrap.min.css") for link in linked)
    for link in linked:
        assert (docs / link).is_file(), link
    # --host-resolver-rules: nothing could be fetched even if a URL were left
    dom, console = render(index, tmp_path, "--host-resolver-rules=MAP * ~NOTFOUND")
    assert 'class="bootstrap-table' in dom  # bootstrap-table's script ran and drew the index
    assert "standard-expense_claim" in dom
    assert not [line for line in console if "Failed to load" in line or "ERR_" in line], console
    assert result["data_docs"] == str(index)
