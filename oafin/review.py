"""``oafin review import FILE.xlsx``: read reviewers' status and comment edits back into the lifecycle.

The workbook's exception sheets carry "Exception id 异常编号", "Status 状态" and "Comment 备注"
columns (found by header text, so a reviewer may reorder or add columns). For each row:

- a status (English, or the Chinese word shown in the drop-down help) different from the
  warehouse's becomes the exception's status: ``acknowledged`` and ``ignored`` survive later runs;
  ``resolved`` holds until a run finds the discrepancy again (oafin.warehouse.lifecycle);
- a comment is stored in ``exception_review`` with the status the reviewer set;
- a blank status leaves the status alone; an unknown status or exception id is reported with its
  sheet and row, and nothing of that row is applied.

Importing the same file twice changes nothing the second time.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from oafin.standard import EXCEPTION_STATUSES

STATUS_ALIASES = {
    "未处理": "open",
    "待处理": "open",
    "已确认": "acknowledged",
    "确认": "acknowledged",
    "已解决": "resolved",
    "已处理": "resolved",
    "解决": "resolved",
    "忽略": "ignored",
    "已忽略": "ignored",
}


@dataclass
class ReviewEdit:
    sheet: str
    row: int
    exception_id: str
    status: str | None  # None: left blank
    comment: str | None


@dataclass
class ReviewImport:
    read: int = 0
    status_changed: int = 0
    comments_saved: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)


def _cell_text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def normalise_status(text: str | None) -> str | None:
    """``"Acknowledged "`` → ``acknowledged``; ``已确认`` → ``acknowledged``; blank → None; else ValueError."""
    if text is None:
        return None
    value = STATUS_ALIASES.get(text.strip(), text.strip().lower())
    if value not in EXCEPTION_STATUSES:
        raise ValueError(f"unknown status {text!r} (use one of {', '.join(EXCEPTION_STATUSES)})")
    return value


def read_edits(path: Path) -> tuple[list[ReviewEdit], list[str]]:
    """Every exception row of the workbook's sheets, and the problems found reading them."""
    from openpyxl import load_workbook

    from oafin.reporting.workbook import COMMENT_HEADER, ID_HEADER, STATUS_HEADER

    wb = load_workbook(path, read_only=True, data_only=True)
    edits: list[ReviewEdit] = []
    errors: list[str] = []
    try:
        for ws in wb.worksheets:
            rows = ws.iter_rows(values_only=True)
            header = next(rows, None)
            if not header or ID_HEADER not in header:
                continue  # the summary sheet, or one a reviewer added
            names = [_cell_text(h) for h in header]
            if STATUS_HEADER not in names:
                errors.append(f"{ws.title}: no '{STATUS_HEADER}' column")
                continue
            i_id, i_status = names.index(ID_HEADER), names.index(STATUS_HEADER)
            i_comment = names.index(COMMENT_HEADER) if COMMENT_HEADER in names else None
            for n, row in enumerate(rows, start=2):
                cells = list(row) + [None] * len(names)
                exception_id = _cell_text(cells[i_id])
                if exception_id is None:
                    continue
                try:
                    status = normalise_status(_cell_text(cells[i_status]))
                except ValueError as exc:
                    errors.append(f"{ws.title} row {n}: {exc}")
                    continue
                comment = _cell_text(cells[i_comment]) if i_comment is not None else None
                edits.append(ReviewEdit(ws.title, n, exception_id, status, comment))
    finally:
        wb.close()
    return edits, errors


def import_review(engine: Engine, path: Path, *, now: datetime | None = None) -> ReviewImport:
    """Apply the workbook's edits in one transaction; see the module docstring."""
    from oafin.warehouse.review_table import exception_review
    from oafin.warehouse.schema import exception
    from oafin.warehouse.store import upsert

    edits, errors = read_edits(path)
    result = ReviewImport(read=len(edits), errors=errors)
    now = now or datetime.now(UTC)
    ids = [e.exception_id for e in edits]
    with engine.begin() as conn:
        current: dict[str, str] = {}
        reviews: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            stmt = select(exception.c.exception_id, exception.c.status).where(
                exception.c.exception_id.in_(chunk)
            )
            current.update({r.exception_id: r.status for r in conn.execute(stmt)})
            rstmt = select(exception_review).where(exception_review.c.exception_id.in_(chunk))
            reviews.update({r["exception_id"]: dict(r) for r in conn.execute(rstmt).mappings()})
        review_rows = []
        for e in edits:
            if e.exception_id not in current:
                result.errors.append(
                    f"{e.sheet} row {e.row}: exception id {e.exception_id} is not in the warehouse"
                )
                continue
            status = e.status or current[e.exception_id]
            changed = False
            if status != current[e.exception_id]:
                conn.execute(
                    exception.update().where(exception.c.exception_id == e.exception_id).values(status=status)
                )
                result.status_changed += 1
                changed = True
            old = reviews.get(e.exception_id)
            if old is None:  # a first review: a changed status or a comment
                reviewed = changed or e.comment is not None
            else:  # a later one: anything different from what was imported before
                reviewed = (old["status"], old["comment"]) != (status, e.comment)
            if reviewed:
                review_rows.append(
                    {
                        "exception_id": e.exception_id,
                        "status": status,
                        "comment": e.comment,
                        "reviewed_file": path.name,
                        "imported_at": now,
                    }
                )
                result.comments_saved += e.comment is not None
                changed = True
            result.unchanged += not changed
        upsert(conn, exception_review, review_rows)
    return result


def run_review_import(config_path: Path, workbook: Path) -> int:
    """The CLI: import ``workbook`` into the warehouse named by ``config_path``; print what happened."""
    from oafin.config import load_settings
    from oafin.warehouse.store import connect

    if not workbook.exists():
        print(f"oafin review import: no such file: {workbook}", file=sys.stderr)
        return 2
    settings = load_settings(config_path)
    engine = connect(settings.warehouse_url)
    try:
        result = import_review(engine, workbook)
    finally:
        engine.dispose()
    print(
        f"{workbook.name}: {result.read} exception rows read, {result.status_changed} status changes, "
        f"{result.comments_saved} comments saved, {result.unchanged} unchanged"
    )
    for error in result.errors:
        print(f"  skipped: {error}", file=sys.stderr)
    return 1 if result.errors else 0
