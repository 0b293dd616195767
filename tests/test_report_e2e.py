"""The daily flow's reports end to end: sandbox over HTTP, SQLite warehouse, the session's Prefect harness.

One flow run serves every test here. Before it, three OA claims get a bank card, a resident ID and
a phone number as their expense type, so those values travel (as UNMAPPED_CODE reasons) into
every report; the tests then check they arrive masked, never whole.
"""

from __future__ import annotations

import json
import logging
import re
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook
from sqlalchemy import create_engine, text

from oafin.reporting.details_zh import risk_of
from oafin.reporting.labels_zh import sheet_name
from oafin.systems.dingtalk.twin_render import instances as dingtalk_instances
from tests.test_masking_redact import id_complete, luhn_complete
from tests.test_report_html import elements, render

PLANTED = {
    "card": luhn_complete("622202020011223344"),  # 19 digits
    "resident_id": id_complete("11010519800101123"),
    "phone": "13912345678",
}


@dataclass
class DemoRun:
    workdir: Path
    summary: dict[str, Any]
    period: str
    db_url: str
    cards: set[str]  # every 收款账号 the sandbox served

    @property
    def out(self) -> Path:
        return Path(self.summary["reports"]["html"]).parent

    @property
    def workbook(self) -> Path:
        """The run's own workbook, as summary.json names it."""
        summary = json.loads((self.out / "summary.json").read_text(encoding="utf-8"))
        return self.out / summary["workbook"]


def _plant(dataset) -> set[str]:
    """Put the planted numbers into three in-period approved claims; return every card served."""
    compact = dataset.period.replace("-", "")
    targets = [
        i
        for i in dingtalk_instances(dataset)
        if i["business_id"].startswith(f"BX{compact}")
        and i["status"] == "COMPLETED"
        and i["result"] == "agree"
    ]
    for instance, value in zip(targets[:3], PLANTED.values(), strict=True):
        for field in instance["form_component_values"]:
            if field["name"] == "费用类型":
                field["value"] = value
    return {
        f["value"]
        for i in dingtalk_instances(dataset)
        for f in i["form_component_values"]
        if f["name"] == "收款账号" and f["value"]
    }


@pytest.fixture(scope="module")
def demo(prefect_harness, tmp_path_factory) -> DemoRun:
    """``oafin demo``'s own code path (``oafin.demo.serve_and_run``) on a dataset with planted numbers."""
    from prefect.logging.handlers import APILogHandler

    import flows.daily  # noqa: F401  (first: importing the flow sets Prefect's logging up, resetting levels)
    from oafin.demo import serve_and_run
    from oafin.sandbox.generator import generate

    workdir = tmp_path_factory.mktemp("report-e2e")
    dataset = generate(seed=11, n_claims=200)
    cards = _plant(dataset)
    # conftest keeps Prefect at WARNING; the run loggers go to INFO here so that the logs the
    # masking test reads from the API are the ones an operator would see.
    loggers = [logging.getLogger(n) for n in ("prefect.flow_runs", "prefect.task_runs")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.INFO)
    try:
        run = serve_and_run(dataset, workdir, seed=11, ports=(0, 0))
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
    APILogHandler().flush()  # drain the log worker so the API holds every line
    # the demo's config keeps the warehouse next to itself: sqlite:///oafin.db in the work folder
    assert run.config_path == workdir.resolve() / "oafin.toml"
    assert set(run.scores["exception_type"]) >= {"MISSING_IN_FINANCE", "UNMAPPED_CODE"}
    return DemoRun(workdir, run.summary, dataset.period, f"sqlite:///{workdir / 'oafin.db'}", cards)


# --- masking -----------------------------------------------------------------------------------------

CARD_RE = re.compile(r"(?<![\d.])62\d{14,17}(?!\d)")
ID_RE = re.compile(r"(?<![0-9A-Za-z.])\d{17}[\dXx](?![0-9A-Za-z])")
PHONE_RE = re.compile(r"(?<![\d.])1[3-9]\d{9}(?!\d)")  # not the decimals of a float cell


def unmasked(text: str, known: set[str]) -> list[str]:
    found = [m for m in CARD_RE.findall(text) if luhn_complete(m[:-1]) == m]
    found += [m for m in ID_RE.findall(text) if id_complete(m[:17]) == m.upper()]
    found += PHONE_RE.findall(text)
    found += [k for k in known if k in text]
    return found


def texts_of(path: Path) -> list[tuple[str, str]]:
    """A written file as text; an xlsx (a zip of XML parts) part by part."""
    if path.suffix == ".xlsx":
        with zipfile.ZipFile(path) as z:
            return [(f"{path}!{n}", z.read(n).decode("utf-8", "replace")) for n in z.namelist()]
    return [(str(path), path.read_bytes().decode("utf-8", "replace"))]


def test_every_written_file_artifact_and_log_is_masked(demo):
    known = demo.cards | set(PLANTED.values())
    # Written by the run: everything in the work folder except the sandbox's own source data and the
    # warehouse database, whose raw landing keeps payloads as the API returned them (by design).
    written = [
        p
        for p in demo.workdir.rglob("*")
        if p.is_file()
        and "sandbox" not in p.relative_to(demo.workdir).parts
        and not p.name.startswith("oafin.db")
    ]
    assert {demo.workbook.name, "report.html", "exceptions.csv", "summary.json", "index.html"} <= {
        p.name for p in written
    }
    leaks = {name: unmasked(t, known) for p in written for name, t in texts_of(p)}
    assert {k: v for k, v in leaks.items() if v} == {}

    # the planted numbers did reach the reports, masked (so the scan above is not vacuous)
    csv = (demo.out / "exceptions.csv").read_text(encoding="utf-8")
    html = (demo.out / "report.html").read_text(encoding="utf-8")
    with zipfile.ZipFile(demo.workbook) as z:  # constant-memory: inline strings
        strings = "".join(z.read(n).decode("utf-8") for n in z.namelist() if n.startswith("xl/worksheets/"))
    for value in PLANTED.values():
        masked = "*" * (len(value) - 4) + value[-4:] if value != PLANTED["phone"] else "*******" + value[-4:]
        for where in (csv, html, strings):
            assert masked in where

    # ... and the warehouse does hold them: the raw landing is where they are meant to stay
    with create_engine(demo.db_url).connect() as conn:
        raw = "\n".join(r[0] for r in conn.execute(text("select payload from raw_record")))
    assert PLANTED["card"] in raw

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        LogFilter,
        LogFilterFlowRunId,
    )

    key = f"oafin-c01-{demo.period}"
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_=key)))
        assert {a.key for a in artifacts} >= {
            f"{key}-counts",
            f"{key}-kpis",
            f"{key}-workbook",
            f"{key}-report",
        }
        run_ids = {a.flow_run_id for a in artifacts}
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=list(run_ids))))
    artifact_text = json.dumps([a.model_dump(mode="json") for a in artifacts], ensure_ascii=False)
    assert unmasked(artifact_text, known) == []
    assert logs and unmasked("\n".join(log.message for log in logs), known) == []


# --- the numbers on the page equal the warehouse's ------------------------------------------------------


def _yuan(fen: int) -> str:
    return f"{'-' if fen < 0 else ''}¥{abs(Decimal(fen)) / 100:,.2f}"


def _ts(value: Any) -> pd.Timestamp:
    return (
        pd.Timestamp(value).tz_localize("UTC") if pd.Timestamp(value).tzinfo is None else pd.Timestamp(value)
    )


def warehouse_figures(db_url: str, period: str) -> dict[str, Any]:
    """The report's figures, recomputed from the warehouse with SQL and plain Python."""
    from oafin.periods import SHANGHAI, Period

    p = Period.parse(period)
    as_of = pd.Timestamp(p.end)
    engine = create_engine(db_url)
    with engine.connect() as conn:
        q = lambda sql: conn.execute(text(sql)).mappings().all()  # noqa: E731
        exc = [
            r
            for r in q(
                "select exception_type, amount_fen, detail, person_id, budget_code, status, last_seen "
                "from exception"
            )
            if _ts(r["last_seen"]) == as_of and r["status"] != "ignored"
        ]
        people = {r["person_id"]: r["department"] for r in q("select person_id, department from person")}
        # a budget line's department: its code, named as most of that code's applicants name it
        code_name: dict[str, str] = {}
        for r in q(
            "select c.department_code as code, p.department as name, count(*) as n from expense_claim c "
            "join person p on p.person_id = c.applicant_id group by 1, 2 order by 1, 3 desc, 2"
        ):
            code_name.setdefault(r["code"], r["name"])
        budget_dep = {
            r["budget_code"]: code_name.get(r["department_code"])
            for r in q("select budget_code, department_code from budget")
        }
        claims = q(
            "select claim_id, claim_no, status, approved_at, submitted_at, amount_fen from expense_claim"
        )
        docs = q("select doc_no, doc_type, claim_no_ref, source_doc_nos, status, paid_at from finance_doc")
        n_quarantine = q("select count(*) as n from quarantine")[0]["n"]
        # the chain as the engine stored it: every document linked to a claim, by any pass
        linked = q(
            "select m.claim_id, d.doc_type, d.status, d.paid_at from match m "
            "join finance_doc d on d.doc_id = m.doc_id"
        )
    engine.dispose()

    by_type: dict[str, list[int]] = {}
    by_dep: dict[str, int] = {}
    for r in exc:
        fen = risk_of(r["exception_type"], r["amount_fen"], r["detail"])[0]  # money at risk
        by_type.setdefault(r["exception_type"], [0, 0])
        by_type[r["exception_type"]][0] += 1
        by_type[r["exception_type"]][1] += fen
        dep = people.get(r["person_id"]) or budget_dep.get(r["budget_code"]) or "(unknown 未知)"
        by_dep[dep] = by_dep.get(dep, 0) + fen

    first_paid: dict[str, pd.Timestamp] = {}
    for d in linked:
        paid = d["doc_type"] == "payment" and d["status"] == "paid" and d["paid_at"] is not None
        if paid and _ts(d["paid_at"]) <= as_of:
            at = _ts(d["paid_at"])
            first_paid[d["claim_id"]] = min(first_paid.get(d["claim_id"], at), at)
    live_linked = {d["claim_id"] for d in linked if d["status"] not in ("reversed", "rejected")}

    cycle, approved, matched = [], 0, 0
    for c in claims:
        when = c["approved_at"] or (c["submitted_at"] if c["approved_at"] is None else None)
        if c["approved_at"] is not None and c["status"] == "approved":
            approved_at = _ts(c["approved_at"])
            if approved_at.tz_convert(SHANGHAI).strftime("%Y-%m") == period and c["claim_id"] in first_paid:
                cycle.append((first_paid[c["claim_id"]] - approved_at).total_seconds() / 86400)
        if when is not None and p.start <= _ts(when) < p.end and c["status"] == "approved":
            approved += 1
            matched += c["claim_id"] in live_linked
    return {
        "exceptions": len(exc),
        "by_type": by_type,
        "by_department": by_dep,
        "cycle_median": round(float(np.percentile(cycle, 50)), 1),
        "cycle_p90": round(float(np.percentile(cycle, 90)), 1),
        "data_accuracy": (len(claims) + len(docs)) / (len(claims) + len(docs) + n_quarantine),
        "approved": approved,
        "matched": matched,
    }


def test_report_renders_cleanly_and_shows_the_warehouses_numbers(demo, tmp_path):
    dom, console = render(demo.out / "report.html", tmp_path)
    assert console == []
    found = elements(dom)
    kpi = {a["data-kpi"]: t.strip() for _, a, t in found if "data-kpi" in a}
    rows = {a["data-type"]: (a, t) for tag, a, t in found if tag == "tr" and "data-type" in a}
    deps = {a["data-department"]: a for tag, a, t in found if tag == "tr" and "data-department" in a}
    want = warehouse_figures(demo.db_url, demo.period)

    assert kpi["exceptions"].startswith(f"{want['exceptions']:,}")
    assert set(rows) == set(want["by_type"])
    for kind, (count, fen) in want["by_type"].items():
        attrs, row_text = rows[kind]
        assert int(attrs["data-count"]) == count and int(attrs["data-amount-fen"]) == fen
        assert str(count) in row_text and (_yuan(fen) if fen else "—") in row_text  # — : no money at risk
    total_fen = sum(fen for _, fen in want["by_type"].values())
    assert kpi["risk_fen"].startswith(_yuan(total_fen))
    top = sorted(want["by_department"].items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    assert [(d, int(deps[d]["data-amount-fen"])) for d, _ in top] == top
    assert kpi["cycle_median_days"].startswith(f"{want['cycle_median']:.1f} d")
    assert kpi["cycle_p90_days"].startswith(f"{want['cycle_p90']:.1f} d")
    assert kpi["data_accuracy"].startswith(f"{want['data_accuracy']:.1%}")
    value = {a["data-kpi"]: a["data-value"] for _, a, _ in found if "data-kpi" in a}
    assert kpi["approved_in_scope"] == f"Approved 已审批{want['approved']:,}"  # label cell, then value cell
    assert value["approved_in_scope"] == str(want["approved"])
    assert kpi["matched_claims"] == f"Matched claims 已匹配{want['matched']:,}"
    assert kpi["auto_match_rate"].startswith(f"{want['matched'] / want['approved']:.1%}")
    assert "rows" in dom and "page 1 of" in dom  # the exception list was drawn by the script


def test_data_docs_are_built_linked_and_green(demo):
    html = (demo.out / "report.html").read_text(encoding="utf-8")
    links = {a.get("href") for t, a, _ in elements(html) if t == "a"}
    assert "data_docs/index.html" in links
    assert (demo.out / "data_docs" / "index.html").exists()
    summary = json.loads((demo.out / "summary.json").read_text(encoding="utf-8"))
    quality = summary["quality"]
    assert quality["success"], quality["failures"]
    assert set(quality["suites"]) == {
        "standard-expense_claim",
        "standard-finance_doc",
        "reconciliation-exceptions",
        "reconciliation-totals",
    }
    pages = list((demo.out / "data_docs" / "validations").rglob("*.html"))
    assert len(pages) == 4
    linked = {h for h in links if h and h.startswith("data_docs/validations/")}
    assert {(demo.out / h).resolve() for h in linked} == {p.resolve() for p in pages}


def test_workbook_sheets_hold_the_warehouses_exceptions(demo):
    want = warehouse_figures(demo.db_url, demo.period)["by_type"]
    wb = load_workbook(demo.workbook, read_only=True)
    try:
        counts = {ws.title: ws.max_row - 1 for ws in wb.worksheets if ws.sheet_state == "visible"}
    finally:
        wb.close()
    counts.pop("汇总 Summary")
    assert counts == {sheet_name(kind): n for kind, (n, _fen) in want.items()}


def test_review_import_on_the_real_workbook(demo, tmp_path):
    """A reviewer's edit in the run's own workbook reaches the warehouse (on a copy of it)."""
    import shutil
    import sqlite3

    from oafin.review import import_review
    from oafin.warehouse.store import connect

    db = tmp_path / "copy.db"
    with sqlite3.connect(demo.workdir / "oafin.db") as src, sqlite3.connect(db) as dst:
        src.backup(dst)  # the WAL's pages too
    book = tmp_path / "reconciliation.xlsx"
    shutil.copy(demo.workbook, book)
    wb = load_workbook(book)
    ws = wb[sheet_name("MISSING_IN_FINANCE")]
    header = [c.value for c in ws[1]]
    ws.cell(2, header.index("Status 状态") + 1).value = "acknowledged"
    ws.cell(2, header.index("Comment 备注") + 1).value = "paid by cash, voucher follows"
    target = ws.cell(2, 1).value
    wb.save(book)
    engine = connect(f"sqlite:///{db}")
    result = import_review(engine, book, now=datetime(2026, 11, 2, tzinfo=UTC))
    with engine.connect() as conn:
        status = conn.execute(
            text("select status from exception where exception_id = :i"), {"i": target}
        ).scalar_one()
    engine.dispose()
    assert (result.status_changed, result.comments_saved, result.errors) == (1, 1, [])
    assert status == "acknowledged"
