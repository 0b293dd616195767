"""The reviewers' comments on exceptions, read back from the workbook by ``oafin review import``.

The exception's status lives in ``exception.status`` (its lifecycle); this table holds what the
lifecycle has no column for: the reviewer's comment, which file it came from, and when it was
imported (wall-clock time, like ``run_log``: a re-run of a flow never writes here).
"""

from __future__ import annotations

from sqlalchemy import Column, PrimaryKeyConstraint, String, Table, Text

from oafin.warehouse.meta import metadata
from oafin.warehouse.types import UTCDateTime

exception_review = Table(
    "exception_review",
    metadata,
    Column("exception_id", String(40), nullable=False),
    Column("status", String(20), nullable=False),  # the status the reviewer set
    Column("comment", Text),
    Column("reviewed_file", Text),  # file name only, never a full path
    Column("imported_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("exception_id"),
)
