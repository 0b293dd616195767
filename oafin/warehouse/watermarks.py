"""Extraction watermarks: how far each (system, kind, company) has been landed, contiguously.

A watermark is the window ``[covered_from, covered_to)`` of source time (DingTalk creation time,
Kingdee document date) whose records are all in ``raw_record``. It is written only after the
records of a window are landed and committed (``advance``), so a crash before that leaves the old
watermark and the next run re-reads the window: landing is an upsert, nothing doubles.

``plan_window`` turns a requested window into what must actually be read: only the part past the
watermark, reaching back ``overlap`` so that late edits at the tail are caught.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Column, Connection, PrimaryKeyConstraint, String, Table, select

from oafin.warehouse.meta import metadata
from oafin.warehouse.rows import upsert
from oafin.warehouse.types import UTCDateTime

extract_watermark = Table(
    "extract_watermark",
    metadata,
    Column("system", String(40), nullable=False),
    Column("kind", String(100), nullable=False),  # DingTalk process code, Kingdee FormId
    Column("company_code", String(40), nullable=False),
    Column("covered_from", UTCDateTime(), nullable=False),
    Column("covered_to", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("system", "kind", "company_code"),
)


@dataclass(frozen=True)
class Watermark:
    covered_from: datetime
    covered_to: datetime


@dataclass(frozen=True)
class WindowPlan:
    """What one (system, kind) extraction reads: ``[read_from, read_to)``; ``mode`` says why."""

    read_from: datetime
    read_to: datetime
    mode: str  # "full" (no usable watermark or --full), "incremental", "nothing-new"


def read_watermark(conn: Connection, system: str, kind: str, company_code: str) -> Watermark | None:
    row = conn.execute(
        select(extract_watermark.c.covered_from, extract_watermark.c.covered_to).where(
            extract_watermark.c.system == system,
            extract_watermark.c.kind == kind,
            extract_watermark.c.company_code == company_code,
        )
    ).first()
    return Watermark(row[0], row[1]) if row else None


def other_companies(conn: Connection, system: str, company_code: str) -> list[str]:
    """The companies other than ``company_code`` that have landed ``system`` records in this schema."""
    rows = conn.execute(
        select(extract_watermark.c.company_code)
        .where(extract_watermark.c.system == system, extract_watermark.c.company_code != company_code)
        .distinct()
    ).scalars()
    return sorted(str(c) for c in rows)


def plan_window(
    start: datetime,
    end: datetime,
    watermark: Watermark | None,
    overlap: timedelta,
    *,
    full: bool = False,
) -> WindowPlan:
    """The part of ``[start, end)`` to read, given what is already landed.

    Incremental only when the watermark covers ``start`` (the landed range and the new one are
    contiguous); otherwise the whole window is read, as on a first run or with ``full``.
    """
    if full or watermark is None or not watermark.covered_from <= start <= watermark.covered_to:
        return WindowPlan(start, end, "full")
    read_from = max(start, watermark.covered_to - overlap)
    if read_from >= end:
        # Everything asked for is landed and older than the overlap: re-read just the tail.
        read_from = max(start, end - overlap)
    return WindowPlan(read_from, end, "incremental" if read_from < end else "nothing-new")


def advance(
    conn: Connection,
    system: str,
    kind: str,
    company_code: str,
    read_from: datetime,
    read_to: datetime,
    now: datetime,
) -> Watermark:
    """Record that ``[read_from, read_to)`` is landed; call it after the landing has committed.

    ``covered_to`` never passes ``now``: a window reaching into the future (the current period's
    end) is only landed up to the moment it was read.
    """

    read_to = min(read_to, now)
    old = read_watermark(conn, system, kind, company_code)
    if old is not None and old.covered_from <= read_from <= old.covered_to:
        new = Watermark(old.covered_from, max(old.covered_to, read_to))
    elif old is not None and read_from <= old.covered_from <= read_to:
        new = Watermark(read_from, max(old.covered_to, read_to))
    else:
        new = Watermark(read_from, read_to)
    upsert(
        conn,
        extract_watermark,
        [
            {
                "system": system,
                "kind": kind,
                "company_code": company_code,
                "covered_from": new.covered_from,
                "covered_to": new.covered_to,
            }
        ],
    )
    return new
