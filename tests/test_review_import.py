"""``oafin review import``: reviewers' edits in the workbook go back into the exception lifecycle.

Runs on SQLite and on the real PostgreSQL (``warehouse_url``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
from openpyxl import load_workbook
from sqlalchemy import select

from oafin.cli import main
from oafin.config import OaFinDefaults
from oafin.reporting.context import build_report_data
from oafin.reporting.workbook import COMMENT_HEADER, ID_HEADER, STATUS_HEADER, write_workbook
from oafin.review import import_review
from oafin.warehouse.lifecycle import record_exceptions
from oafin.warehouse.review_table import exception_review
from oafin.warehouse.schema import exception
from oafin.warehouse.store import read_table

AS_OF = datetime(2026, 10, 31, 16, 0, tzinfo=UTC)
FOUND = pd.DataFrame(
    [
        {
            "exception_type": "MISSING_IN_FINANCE",
            "claim_no": f"BX00{i}",
            "person_id": "P0001",
            "amount_fen": 100 * i,
        }
        for i in range(1, 6)
    ]
    + [{"exception_type": "MISSING_IN_OA", "doc_no": "FK0001", "amount_fen": 500}]
)


def seed(engine) -> pd.DataFrame:
    with engine.begin() as conn:
        recorded = record_exceptions(conn, FOUND, period="2026-10", as_of=AS_OF, company_code="C01")
    return recorded


def workbook_for(engine, recorded: pd.DataFrame, path):
    data = build_report_data(
        engine, period="2026-10", company_code="C01", as_of=AS_OF, exceptions=recorded, stats={}
    )
    return write_workbook(data, path)


def edit(path, changes: dict[str, tuple[str | None, str | None]], sheet="MISSING_IN_FINANCE") -> None:
    """Set (status, comment) of the rows whose claim number is a key of ``changes``."""
    wb = load_workbook(path)
    ws = wb[sheet]
    header = [c.value for c in ws[1]]
    key_col = header.index("OA no. 审批单号") if "OA no. 审批单号" in header else header.index(ID_HEADER)
    s_col, c_col = header.index(STATUS_HEADER), header.index(COMMENT_HEADER)
    for row in ws.iter_rows(min_row=2):
        key = row[key_col].value
        if key in changes:
            status, comment = changes[key]
            row[s_col].value = status
            row[c_col].value = comment
    wb.save(path)


def statuses(engine) -> dict[str, str]:
    with engine.connect() as conn:
        frame = read_table(conn, exception)
    return dict(zip(frame["claim_no"].fillna(frame["doc_no"]), frame["status"], strict=True))


def test_edits_are_applied_reported_and_idempotent(warehouse_engine, tmp_path):
    recorded = seed(warehouse_engine)
    path = workbook_for(warehouse_engine, recorded, tmp_path / "reconciliation.xlsx")
    edit(
        path,
        {
            "BX001": ("acknowledged", "已联系申请人 asked the applicant"),
            "BX002": ("已忽略", None),  # the Chinese word works too
            "BX003": ("maybe", "typo in the status"),  # refused, reported with its row
            "BX004": (None, "comment only"),  # status left blank: unchanged
        },
    )
    result = import_review(warehouse_engine, path, now=AS_OF + timedelta(days=1))
    assert result.read == 5 + 1 - 1  # every row with an id, less the refused one
    assert result.status_changed == 2
    assert result.comments_saved == 2
    assert len(result.errors) == 1 and "MISSING_IN_FINANCE row" in result.errors[0]
    assert "maybe" in result.errors[0]

    now = statuses(warehouse_engine)
    assert now == {
        "BX001": "acknowledged",
        "BX002": "ignored",
        "BX003": "open",
        "BX004": "open",
        "BX005": "open",
        "FK0001": "open",
    }
    with warehouse_engine.connect() as conn:
        reviews = {r.exception_id: r for r in conn.execute(select(exception_review))}
    bx001 = recorded.set_index("claim_no").at["BX001", "exception_id"]
    assert reviews[bx001].comment == "已联系申请人 asked the applicant"
    assert reviews[bx001].status == "acknowledged" and reviews[bx001].reviewed_file == "reconciliation.xlsx"
    assert len(reviews) == 3  # BX001, BX002, BX004

    again = import_review(warehouse_engine, path, now=AS_OF + timedelta(days=2))
    assert (again.status_changed, again.comments_saved) == (0, 0)
    with warehouse_engine.connect() as conn:
        assert read_table(conn, exception_review)["imported_at"].max() == AS_OF + timedelta(days=1)


def test_review_status_survives_the_next_run_and_comments_reach_the_next_workbook(warehouse_engine, tmp_path):
    recorded = seed(warehouse_engine)
    path = workbook_for(warehouse_engine, recorded, tmp_path / "first.xlsx")
    edit(path, {"BX001": ("acknowledged", "checked"), "BX002": ("resolved", None)})
    import_review(warehouse_engine, path)

    later = AS_OF + timedelta(days=1)
    with warehouse_engine.begin() as conn:
        rerun = record_exceptions(conn, FOUND, period="2026-10", as_of=later, company_code="C01")
    by_claim = dict(zip(rerun["claim_no"], rerun["status"], strict=True))
    assert by_claim["BX001"] == "acknowledged"  # a reviewer's acknowledgement stays
    assert by_claim["BX002"] == "open"  # found again: a resolved exception reopens (lifecycle)

    second = workbook_for(warehouse_engine, rerun, tmp_path / "second.xlsx")
    wb = load_workbook(second, read_only=True)
    rows = list(wb["MISSING_IN_FINANCE"].iter_rows(values_only=True))
    wb.close()
    header = rows[0]
    bx001 = next(r for r in rows[1:] if r[header.index("OA no. 审批单号")] == "BX001")
    assert bx001[header.index(COMMENT_HEADER)] == "checked"
    assert bx001[header.index(STATUS_HEADER)] == "acknowledged"


def test_unknown_ids_are_reported_not_applied(warehouse_engine, tmp_path):
    recorded = seed(warehouse_engine)
    path = workbook_for(warehouse_engine, recorded, tmp_path / "reconciliation.xlsx")
    wb = load_workbook(path)
    ws = wb["MISSING_IN_OA"]
    header = [c.value for c in ws[1]]
    ws.cell(2, header.index(ID_HEADER) + 1).value = "0000deadbeef0000"
    ws.cell(2, header.index(STATUS_HEADER) + 1).value = "ignored"
    wb.save(path)
    result = import_review(warehouse_engine, path)
    assert result.errors == ["MISSING_IN_OA row 2: exception id 0000deadbeef0000 is not in the warehouse"]
    assert statuses(warehouse_engine)["FK0001"] == "open"


def test_cli_review_import(tmp_path, capsys):
    from oafin.warehouse.store import connect

    db = tmp_path / "oafin.db"
    config = tmp_path / "oafin.toml"
    text = OaFinDefaults.demo_toml("http://127.0.0.1:1", "http://127.0.0.1:2/k3cloud/")
    config.write_text(text.replace('url = "sqlite:///oafin.db"', f'url = "sqlite:///{db}"'), encoding="utf-8")
    engine = connect(f"sqlite:///{db}")
    recorded = seed(engine)
    path = workbook_for(engine, recorded, tmp_path / "reconciliation.xlsx")
    edit(path, {"BX005": ("ignored", "duplicate of BX004")})
    assert main(["review", "import", str(path), "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "1 status changes, 1 comments saved" in out
    assert statuses(engine)["BX005"] == "ignored"
    assert main(["review", "import", str(tmp_path / "missing.xlsx"), "--config", str(config)]) == 2
    engine.dispose()
