"""Reports of successive runs of a period: every count is one number, and no review is lost.

The daily flow's data steps as plain functions (``oafin.run.run_plain``) against a sandbox of 60
claims over real HTTP, then ``oafin.pipeline.report.write_reports`` (no Prefect, no GX), on SQLite.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from oafin.pipeline.report import write_reports
from oafin.review import import_review
from oafin.run import run_plain
from oafin.sandbox.generator import generate
from oafin.sandbox_server import SandboxHandle, running_sandbox
from oafin.warehouse.store import connect
from tests.test_orchestration_support import write_config
from tests.test_review_import import ID_HEADER, STATUS_HEADER


@pytest.fixture(scope="module")
def small_sandbox() -> Iterator[SandboxHandle]:
    with running_sandbox(generate(seed=11, n_claims=60)) as handle:
        yield handle


def workbook_rows(path: Path) -> list[tuple]:
    wb = load_workbook(path, read_only=True)
    rows = []
    for ws in wb.worksheets:
        it = ws.iter_rows(values_only=True)
        header = next(it, None)
        if header and ID_HEADER in header:
            rows.extend(r for r in it if r[header.index(ID_HEADER)])
    wb.close()
    return rows


def ignore_first_rows(path: Path, n: int) -> list[str]:
    """Set the first ``n`` rows of the workbook's exception sheets to 已忽略; return their ids."""
    wb = load_workbook(path)
    ids = []
    for ws in wb.worksheets:
        header = [c.value for c in ws[1]]
        if ID_HEADER not in header:
            continue
        for row in ws.iter_rows(min_row=2):
            if len(ids) == n:
                break
            row[header.index(STATUS_HEADER)].value = "已忽略"
            ids.append(row[header.index(ID_HEADER)].value)
    wb.save(path)
    return ids


def test_runs_keep_their_workbooks_and_every_count_agrees(small_sandbox, tmp_path):
    config = write_config(tmp_path, small_sandbox, f"sqlite:///{tmp_path / 'oafin.db'}")
    period = small_sandbox.dataset.period
    engine = connect(f"sqlite:///{tmp_path / 'oafin.db'}")
    reports = tmp_path / "reports"

    first = run_plain(config, period, full=True)["result"]
    paths, _ = write_reports(
        first, reports, engine, run_quality=False, now=datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    )
    book = paths["xlsx"]
    assert book.name == "reconciliation-20261101-143000.xlsx"  # China time of writing
    ignored = ignore_first_rows(book, 4)
    import_review(engine, book)
    edited = book.read_bytes()

    # the 06:30 schedule runs again (same second, even): the reviewer's file is not touched
    second = run_plain(config, period)["result"]
    paths2, data2 = write_reports(
        second, reports, engine, run_quality=False, now=datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    )
    assert paths2["xlsx"] != book and book.read_bytes() == edited
    summary = json.loads(paths2["summary"].read_text(encoding="utf-8"))
    assert summary["workbook"] == paths2["xlsx"].name  # which workbook is current
    assert paths2["xlsx"].name in paths2["html"].read_text(encoding="utf-8")

    # one count, one definition: found by the run, less those ignored
    shown = len(workbook_rows(paths2["xlsx"]))
    assert second.stats["exceptions"] == shown == data2.kpis["exceptions"] == summary["exceptions"]
    assert summary["kpis"]["exceptions"] == shown
    assert second.stats["exceptions_ignored"] == len(ignored) == 4
    assert sum(summary["exceptions_by_type"].values()) == shown
    assert len(second.exceptions) == shown + 4
    engine.dispose()
