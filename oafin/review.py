"""``oafin review import FILE.xlsx``: read reviewers' status and comment edits back into the lifecycle.

The workbook's exception sheets carry "Exception id 异常编号", "Status 状态" and "Comment 备注"
columns (found by header text, so a reviewer may reorder or add columns). Its very hidden
``oafin_stamp`` sheet holds what each row was written with (``oafin.reporting.workbook``).

Only what a reviewer changed is imported, and never over a later decision:

- a cell equal to what the workbook was written with is not an edit: an untouched workbook, or
  an untouched row, changes nothing (it does not reset statuses or erase comments);
- an edited status (Chinese, English, or the drop-down's ``已确认 acknowledged``) or comment is
  applied when the warehouse still holds what the workbook was written with; when the warehouse
  has changed since (a later import, or a run that resolved or reopened it), the row is refused
  as stale, naming the current value: an older workbook never reverts a later decision;
- an edit the warehouse already holds (the same file imported twice) is unchanged;
- every applied decision is appended to the exception's history (``exception_event``);
- refused, with the sheet and row, nothing of that row applied: an unknown status, an id not in
  the stamp or the warehouse, an id on two rows (both refused), a comment over
  ``MAX_COMMENT_CHARS``;
- refused as a whole (``ReviewFileError``, exit 2): a file that is not an xlsx, is corrupt, has no
  oafin stamp (not a workbook oafin wrote) or a stamp that does not verify, or exceeds
  ``MAX_FILE_BYTES`` on disk or ``MAX_UNPACKED_BYTES`` unpacked (checked before it is parsed).
"""

from __future__ import annotations

import sys
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from oafin.reporting.labels_zh import STATUS_ALIASES, STATUSES
from oafin.standard import EXCEPTION_STATUSES

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_UNPACKED_BYTES = 512 * 1024 * 1024
MAX_COMMENT_CHARS = 2000
MAX_ROWS = 1_000_000


class ReviewFileError(ValueError):
    """The file as a whole cannot be imported; the message says why and what to do."""


@dataclass
class ReviewEdit:
    sheet: str
    row: int
    exception_id: str
    status: str | None  # None: left blank
    comment: str | None


@dataclass
class Stamp:
    company_code: str
    period: str
    as_of: str
    generation: str
    rows: dict[str, tuple[str, str | None]]  # exception id -> (status, comment) as written


@dataclass
class ReviewImport:
    read: int = 0
    status_changed: int = 0
    comments_saved: int = 0
    unchanged: int = 0
    stale: int = 0
    generation: str = ""
    errors: list[str] = field(default_factory=list)


def _cell_text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def normalise_status(text: str | None) -> str | None:
    """``"Acknowledged "``, ``已确认`` or ``已确认 acknowledged`` → ``acknowledged``; blank → None;
    anything else → ValueError."""
    if text is None:
        return None
    found: set[str] = set()
    for word in text.split():
        value = STATUS_ALIASES.get(word, word.lower())
        if value not in EXCEPTION_STATUSES:
            found = set()
            break
        found.add(value)
    if len(found) != 1:
        choices = ", ".join(f"{STATUSES.get(s, s)} {s}" for s in EXCEPTION_STATUSES)
        raise ValueError(f"unknown status {text!r} (use one of: {choices})")
    return found.pop()


def _check_file(path: Path, max_file_bytes: int, max_unpacked_bytes: int) -> None:
    """Size limits and a readable zip, before anything parses the file."""
    size = path.stat().st_size
    if size > max_file_bytes:
        raise ReviewFileError(
            f"{path.name}: {size:,} bytes is over the {max_file_bytes:,}-byte limit for a review workbook"
        )
    try:
        with zipfile.ZipFile(path) as z:
            unpacked = sum(i.file_size for i in z.infolist())
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ReviewFileError(
            f"{path.name}: not a readable .xlsx workbook ({exc}); export it again from Excel as .xlsx"
        ) from None
    if bad is not None:
        raise ReviewFileError(f"{path.name}: the workbook is corrupt ({bad} fails its checksum)")
    if unpacked > max_unpacked_bytes:
        raise ReviewFileError(
            f"{path.name}: unpacks to {unpacked:,} bytes, over the {max_unpacked_bytes:,}-byte limit "
            "(a comment or sheet far larger than a review needs)"
        )


def read_stamp(wb: Any, name: str) -> Stamp:
    from oafin.reporting.workbook import STAMP_MARK, STAMP_SHEET, STAMP_VERSION, stamp_digest

    if STAMP_SHEET not in wb.sheetnames:
        raise ReviewFileError(
            f"{name}: not a review workbook written by oafin (no {STAMP_SHEET} sheet); import the "
            "reconciliation-<run>.xlsx a run wrote, edited in place"
        )
    rows = wb[STAMP_SHEET].iter_rows(values_only=True)
    head = list(next(rows, ()) or ())
    if len(head) < 7 or head[0] != STAMP_MARK:
        raise ReviewFileError(f"{name}: the {STAMP_SHEET} sheet is not an oafin stamp")
    if head[1] != STAMP_VERSION:
        raise ReviewFileError(f"{name}: stamp version {head[1]!r}, this oafin reads {STAMP_VERSION}")
    body: list[list[Any]] = []
    for n, r in enumerate(rows):
        if n >= MAX_ROWS:
            raise ReviewFileError(f"{name}: more than {MAX_ROWS:,} exception rows")
        cells = [*(r or ()), None, None, None][:3]
        if cells[0] is None:
            continue
        body.append([str(cells[0]), str(cells[1]), None if cells[2] is None else str(cells[2])])
    if stamp_digest(head[:6], body) != head[6]:
        raise ReviewFileError(
            f"{name}: the {STAMP_SHEET} sheet was altered, so the workbook's edits cannot be told "
            "from what oafin wrote; edit only the Status and Comment columns"
        )
    return Stamp(
        company_code=str(head[2]),
        period=str(head[3]),
        as_of=str(head[4]),
        generation=str(head[5]),
        rows={eid: (status, comment) for eid, status, comment in body},
    )


def read_edits(
    path: Path,
    *,
    max_file_bytes: int = MAX_FILE_BYTES,
    max_unpacked_bytes: int = MAX_UNPACKED_BYTES,
    max_comment_chars: int = MAX_COMMENT_CHARS,
) -> tuple[Stamp, list[ReviewEdit], list[str]]:
    """The stamp, every exception row of the workbook's sheets, and the problems found reading them.

    Raises ``ReviewFileError`` when the file as a whole cannot be used.
    """
    from openpyxl import load_workbook

    from oafin.reporting.workbook import COMMENT_HEADER, ID_HEADER, STAMP_SHEET, STATUS_HEADER

    if not path.is_file():
        raise ReviewFileError(f"no such file: {path}")
    _check_file(path, max_file_bytes, max_unpacked_bytes)
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds on a damaged package
        raise ReviewFileError(
            f"{path.name}: the workbook cannot be read ({type(exc).__name__}: {exc})"
        ) from None
    edits: list[ReviewEdit] = []
    errors: list[str] = []
    try:
        stamp = read_stamp(wb, path.name)
        for ws in wb.worksheets:
            if ws.title == STAMP_SHEET:
                continue
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
                if comment is not None and len(comment) > max_comment_chars:
                    errors.append(
                        f"{ws.title} row {n}: the comment has {len(comment):,} characters, over the "
                        f"limit of {max_comment_chars:,}; shorten it"
                    )
                    continue
                edits.append(ReviewEdit(ws.title, n, exception_id, status, comment))
    except ReviewFileError:
        raise
    except Exception as exc:  # a damaged sheet inside a readable package
        raise ReviewFileError(
            f"{path.name}: the workbook cannot be read ({type(exc).__name__}: {exc})"
        ) from None
    finally:
        wb.close()
    return stamp, _without_duplicates(edits, errors), errors


def _without_duplicates(edits: list[ReviewEdit], errors: list[str]) -> list[ReviewEdit]:
    """An id on two or more rows: every such row refused (which one is meant cannot be known)."""
    seen: dict[str, list[ReviewEdit]] = {}
    for e in edits:
        seen.setdefault(e.exception_id, []).append(e)
    for eid, group in seen.items():
        if len(group) > 1:
            where = ", ".join(f"{e.sheet} row {e.row}" for e in group)
            errors.append(f"exception id {eid} is on {len(group)} rows ({where}): none applied; keep one")
    return [e for e in edits if len(seen[e.exception_id]) == 1]


def import_review(
    engine: Engine,
    path: Path,
    *,
    now: datetime | None = None,
    max_file_bytes: int = MAX_FILE_BYTES,
    max_unpacked_bytes: int = MAX_UNPACKED_BYTES,
    max_comment_chars: int = MAX_COMMENT_CHARS,
) -> ReviewImport:
    """Apply the workbook's edits in one transaction; see the module docstring."""
    from oafin.reporting.labels_zh import status_label
    from oafin.warehouse.lifecycle import exception_event
    from oafin.warehouse.review_table import exception_review
    from oafin.warehouse.schema import exception
    from oafin.warehouse.store import upsert

    stamp, edits, errors = read_edits(
        path,
        max_file_bytes=max_file_bytes,
        max_unpacked_bytes=max_unpacked_bytes,
        max_comment_chars=max_comment_chars,
    )
    result = ReviewImport(read=len(edits), errors=errors, generation=stamp.generation)
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
        review_rows, events = [], []
        for e in edits:
            where = f"{e.sheet} row {e.row}"
            if e.exception_id not in stamp.rows:
                result.errors.append(
                    f"{where}: exception id {e.exception_id} is not one this workbook was written with"
                )
                continue
            if e.exception_id not in current:
                result.errors.append(f"{where}: exception id {e.exception_id} is not in the warehouse")
                continue
            base_status, base_comment = stamp.rows[e.exception_id]
            now_status = current[e.exception_id]
            now_comment = (reviews.get(e.exception_id) or {}).get("comment")
            status_edit = e.status is not None and e.status != base_status
            comment_edit = e.comment != base_comment
            if not status_edit and not comment_edit:
                result.unchanged += 1  # as written: not an edit
                continue
            stale = []
            if status_edit and now_status not in (base_status, e.status):
                stale.append(f"status is now {status_label(now_status)}")
            if comment_edit and now_comment not in (base_comment, e.comment):
                stale.append(f"comment is now {now_comment!r}")
            if stale:
                result.stale += 1
                result.errors.append(
                    f"{where}: exception {e.exception_id} changed after this workbook "
                    f"({stamp.generation}) was written ({'; '.join(stale)}): not applied; "
                    "make the change in the current workbook"
                )
                continue
            status = e.status if status_edit else now_status
            comment = e.comment if comment_edit else now_comment
            if (status, comment) == (now_status, now_comment):
                result.unchanged += 1  # already imported
                continue
            if status != now_status:
                conn.execute(
                    exception.update().where(exception.c.exception_id == e.exception_id).values(status=status)
                )
                result.status_changed += 1
            result.comments_saved += comment != now_comment and comment is not None
            review_rows.append(
                {
                    "exception_id": e.exception_id,
                    "status": status,
                    "comment": comment,
                    "reviewed_file": path.name,
                    "imported_at": now,
                }
            )
            events.append(
                {
                    "exception_id": e.exception_id,
                    "at": now,
                    "event": "review",
                    "status": status,
                    "comment": comment,
                    "note": f"复核：{STATUSES.get(status or '', status)}"
                    + (f"，备注“{comment}”" if comment else "")
                    + f"（{path.name}）",
                }
            )
        upsert(conn, exception_review, review_rows)
        upsert(conn, exception_event, events)
    return result


def run_review_import(config_path: Path, workbook: Path) -> int:
    """The CLI: import ``workbook`` into the warehouse named by ``config_path``; print what happened.

    Exit 0: applied; 1: some rows refused (listed); 2: the file was refused as a whole."""
    from oafin.config import load_settings
    from oafin.warehouse.store import connect

    if not workbook.exists():
        print(f"oafin review import: no such file: {workbook}", file=sys.stderr)
        return 2
    settings = load_settings(config_path)
    engine = connect(settings.warehouse_url)
    try:
        result = import_review(engine, workbook)
    except ReviewFileError as exc:
        print(f"oafin review import: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(
        f"{workbook.name} ({result.generation}): {result.read} exception rows read, "
        f"{result.status_changed} status changes, {result.comments_saved} comments saved, "
        f"{result.unchanged} unchanged, {result.stale} refused as stale"
    )
    for error in result.errors:
        print(f"  skipped: {error}", file=sys.stderr)
    return 1 if result.errors else 0
