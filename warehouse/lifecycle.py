"""The exception lifecycle: stable ids, first/last seen, reviewer status that survives re-runs.

- A newly found exception is ``open`` with ``first_seen = last_seen = as_of``.
- Found again: ``last_seen`` moves to the later ``as_of``; a reviewer's ``acknowledged`` or
  ``ignored`` stays; a ``resolved`` one that comes back is ``open`` again.
- Not found by a run of its period and company: ``resolved`` (unless ``ignored``).

Times are the runs' ``as_of``, never the wall clock, so re-running a period changes nothing.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, and_, select

from oafin.standard import EXCEPTION_KEY_COLUMNS
from warehouse.schema import exception
from warehouse.store import upsert

ID_FIELDS = ("exception_type", "company_code", *EXCEPTION_KEY_COLUMNS)
CARRIED = ("person_id", "amount_fen", "detail")


def exception_id(row: dict[str, Any]) -> str:
    """Stable id from the type and the business keys: the same discrepancy, the same id, every run."""
    key = "|".join(str(row.get(f) or "") for f in ID_FIELDS)
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def record_exceptions(
    conn: Connection, found: pd.DataFrame, *, period: str, as_of: datetime, company_code: str
) -> pd.DataFrame:
    """Merge this run's findings into the exception table; return this run's exceptions with lifecycle."""
    rows = []
    for rec in found.to_dict("records"):
        rec = {k: (None if pd.isna(v) else v) for k, v in rec.items()}
        rec["company_code"] = rec.get("company_code") or company_code
        rec["exception_id"] = exception_id(rec)
        rows.append(rec)
    ids = [r["exception_id"] for r in rows]
    existing: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for r in conn.execute(select(exception).where(exception.c.exception_id.in_(chunk))).mappings():
            existing[r["exception_id"]] = dict(r)

    out = []
    for rec in rows:
        old = existing.get(rec["exception_id"])
        status = "open"
        first_seen, last_seen, first_period = as_of, as_of, period
        if old is not None:
            status = "open" if old["status"] == "resolved" else old["status"]
            first_seen = min(old["first_seen"], as_of)
            last_seen = max(old["last_seen"], as_of)
            first_period = min(old["period"], period)
        out.append(
            {
                "exception_id": rec["exception_id"],
                "exception_type": rec["exception_type"],
                "company_code": rec["company_code"],
                "period": first_period,
                **{k: rec.get(k) or None for k in EXCEPTION_KEY_COLUMNS},
                **{k: rec.get(k) for k in CARRIED},
                "status": status,
                "first_seen": first_seen,
                "last_seen": last_seen,
            }
        )
    upsert(conn, exception, out)

    # Open ones of this period and company that this run no longer finds are resolved.
    gone = and_(
        exception.c.period == period,
        exception.c.company_code == company_code,
        exception.c.status.in_(("open", "acknowledged")),
    )
    if ids:
        gone = and_(gone, exception.c.exception_id.not_in(ids))
    conn.execute(exception.update().where(gone).values(status="resolved"))

    columns = [c.name for c in exception.columns]
    return pd.DataFrame(out, columns=columns)
