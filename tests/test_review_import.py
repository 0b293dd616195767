"""``oafin review import``: reviewers' edits in the workbook go back into the exception lifecycle.

Runs on SQLite and on the real PostgreSQL (``warehouse_url``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
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


def edit(path, changes: dict[str, tuple[str | None, str | None]]) -> None:
    """Set (status, comment) of the rows whose claim number (or id) is a key of ``changes``."""
    wb = load_workbook(path)
    for ws in wb.worksheets:
        header = [c.value for c in ws[1]]
        if ID_HEADER not in header:
            continue
        key_col = header.index("OA no. 审批单号") if "OA no. 审批单号" in header else header.index(ID_HEADER)
        s_col, c_col = header.index(STATUS_HEADER), header.index(COMMENT_HEADER)
        for row in ws.iter_rows(min_row=2):
            key = row[key_col].value
            if key in changes:
                status, comment = changes[key]
                row[s_col].value = status
                row[c_col].value = comment
    wb.save(path)


def sheet_of(wb, key: str):
    """The exception sheet holding ``key`` (a claim number or a document number)."""
    for ws in wb.worksheets:
        cells = (c for row in ws.iter_rows(values_only=True) for c in row)
        if ID_HEADER in [c.value for c in ws[1]] and key in cells:
            return ws
    raise KeyError(key)


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
    assert len(result.errors) == 1 and "row" in result.errors[0]
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
    assert by_claim["BX002"] == "reopened"  # found again: a resolved exception reopens (lifecycle)

    second = workbook_for(warehouse_engine, rerun, tmp_path / "second.xlsx")
    wb = load_workbook(second, read_only=True)
    rows = list(sheet_of(wb, "BX001").iter_rows(values_only=True))
    wb.close()
    header = rows[0]
    bx001 = next(r for r in rows[1:] if r[header.index("OA no. 审批单号")] == "BX001")
    assert bx001[header.index(COMMENT_HEADER)] == "checked"
    assert "acknowledged" in bx001[header.index(STATUS_HEADER)]


def test_unknown_ids_are_reported_not_applied(warehouse_engine, tmp_path):
    recorded = seed(warehouse_engine)
    path = workbook_for(warehouse_engine, recorded, tmp_path / "reconciliation.xlsx")
    wb = load_workbook(path)
    ws = sheet_of(wb, "FK0001")
    header = [c.value for c in ws[1]]
    ws.cell(2, header.index(ID_HEADER) + 1).value = "0000deadbeef0000"
    ws.cell(2, header.index(STATUS_HEADER) + 1).value = "ignored"
    wb.save(path)
    result = import_review(warehouse_engine, path)
    assert len(result.errors) == 1
    assert "row 2: exception id 0000deadbeef0000 is not" in result.errors[0]
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


# --- issue 10 item 13: an import never loses reviewer work -----------------------------------------


def reviews_of(engine) -> dict[str, tuple[str, str | None]]:
    with engine.connect() as conn:
        frame = read_table(conn, exception)
        review = {r.exception_id: r.comment for r in conn.execute(select(exception_review))}
    key = frame["claim_no"].fillna(frame["doc_no"])
    return {
        k: (s, review.get(i)) for k, s, i in zip(key, frame["status"], frame["exception_id"], strict=True)
    }


def current(engine) -> pd.DataFrame:
    """The exceptions as the warehouse holds them now (what the next run's workbook is written from)."""
    with engine.connect() as conn:
        return read_table(conn, exception)


def test_an_untouched_workbook_changes_nothing(warehouse_engine, tmp_path):
    recorded = seed(warehouse_engine)
    untouched = workbook_for(warehouse_engine, recorded, tmp_path / "untouched.xlsx")
    edited = workbook_for(warehouse_engine, recorded, tmp_path / "edited.xlsx")
    edit(edited, {"BX001": ("acknowledged", "已联系申请人")})
    import_review(warehouse_engine, edited)
    result = import_review(warehouse_engine, untouched)  # written before the decision, never edited
    assert result.status_changed == 0 and result.comments_saved == 0
    assert reviews_of(warehouse_engine)["BX001"] == ("acknowledged", "已联系申请人")


def test_an_older_workbook_never_reverts_a_later_decision(warehouse_engine, tmp_path):
    recorded = seed(warehouse_engine)
    older = workbook_for(warehouse_engine, recorded, tmp_path / "older.xlsx")
    edit(older, {"BX001": ("acknowledged", "checking")})
    import_review(warehouse_engine, older)
    newer = workbook_for(warehouse_engine, current(warehouse_engine), tmp_path / "newer.xlsx")
    edit(newer, {"BX001": ("resolved", "已追回多付款项")})
    import_review(warehouse_engine, newer)

    again = import_review(warehouse_engine, older)  # the older file, imported once more
    assert reviews_of(warehouse_engine)["BX001"] == ("resolved", "已追回多付款项")
    assert again.status_changed == 0
    # a new edit in the older file, against a value the warehouse no longer holds: refused, named
    edit(older, {"BX001": ("ignored", "from the old file")})
    refused = import_review(warehouse_engine, older)
    assert refused.stale == 1
    assert any("changed after this workbook" in e and "已解决 resolved" in e for e in refused.errors)
    assert reviews_of(warehouse_engine)["BX001"] == ("resolved", "已追回多付款项")


def test_one_id_on_two_rows_is_refused_on_both(warehouse_engine, tmp_path):
    recorded = seed(warehouse_engine)
    path = workbook_for(warehouse_engine, recorded, tmp_path / "reconciliation.xlsx")
    wb = load_workbook(path)
    ws = sheet_of(wb, "BX001")
    header = [c.value for c in ws[1]]
    i_id, i_status = header.index(ID_HEADER) + 1, header.index(STATUS_HEADER) + 1
    ids = [ws.cell(r, i_id).value for r in range(2, ws.max_row + 1)]
    ws.cell(2, i_status).value = "acknowledged"
    ws.cell(3, i_id).value = ids[0]  # a pasted row: the same id twice, two different decisions
    ws.cell(3, i_status).value = "ignored"
    wb.save(path)
    result = import_review(warehouse_engine, path)
    assert any(
        f"exception id {ids[0]} is on 2 rows" in e and "row 2" in e and "row 3" in e for e in result.errors
    )
    assert set(statuses(warehouse_engine).values()) == {"open"}


def test_a_huge_comment_or_file_is_refused(warehouse_engine, tmp_path):
    from oafin.review import ReviewFileError

    recorded = seed(warehouse_engine)
    path = workbook_for(warehouse_engine, recorded, tmp_path / "reconciliation.xlsx")
    edit(path, {"BX001": ("acknowledged", "很长" * 5000), "BX002": ("ignored", "ok")})
    result = import_review(warehouse_engine, path)
    assert any("10,000 characters, over the limit" in e for e in result.errors)
    assert reviews_of(warehouse_engine)["BX001"] == ("open", None)  # nothing of that row applied
    assert reviews_of(warehouse_engine)["BX002"] == ("ignored", "ok")
    with pytest.raises(ReviewFileError, match="unpacks to .* over the 1,000-byte limit"):
        import_review(warehouse_engine, path, max_unpacked_bytes=1000)
    with pytest.raises(ReviewFileError, match="over the 1,000-byte limit"):
        import_review(warehouse_engine, path, max_file_bytes=1000)


def _cli_setup(tmp_path):
    from oafin.warehouse.store import connect

    db = tmp_path / "oafin.db"
    config = tmp_path / "oafin.toml"
    text = OaFinDefaults.demo_toml("http://127.0.0.1:1", "http://127.0.0.1:2/k3cloud/")
    config.write_text(text.replace('url = "sqlite:///oafin.db"', f'url = "sqlite:///{db}"'), encoding="utf-8")
    engine = connect(f"sqlite:///{db}")
    return config, engine


def test_a_foreign_or_corrupt_workbook_is_refused_in_one_line(tmp_path, capsys):
    from openpyxl import Workbook

    config, engine = _cli_setup(tmp_path)
    recorded = seed(engine)
    foreign = tmp_path / "budget.xlsx"
    wb = Workbook()
    wb.active.append([ID_HEADER, STATUS_HEADER])
    wb.active.append([recorded["exception_id"].iloc[0], "ignored"])
    wb.save(foreign)
    garbage = tmp_path / "garbage.xlsx"
    garbage.write_bytes(b"PK\x03\x04 this is not a zip file at all")
    real = workbook_for(engine, recorded, tmp_path / "real.xlsx")
    truncated = tmp_path / "truncated.xlsx"
    truncated.write_bytes(real.read_bytes()[: real.stat().st_size // 2])
    for path, said in (
        (foreign, "not a review workbook written by oafin"),
        (garbage, "not a readable .xlsx workbook"),
        (truncated, "not a readable .xlsx workbook"),
    ):
        assert main(["review", "import", str(path), "--config", str(config)]) == 2
        err = capsys.readouterr().err
        assert said in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert statuses(engine)[recorded["claim_no"].iloc[0]] == "open"
    engine.dispose()
