"""The exception lifecycle: stable ids, first/last seen, reviewer status that survives re-runs.

- An exception's id is derived from its type, company, period and business keys: the same
  discrepancy gets the same id on every run of its period. The period is part of it because a
  budget line or an invoice can be found again in another month as a different finding.
- A newly found exception is ``open`` with ``first_seen = last_seen = as_of``.
- Found again: ``last_seen`` moves to the later ``as_of``; a reviewer's ``acknowledged`` or
  ``ignored`` stays (an ignored one is never shown again: reports drop it); a ``resolved`` one
  that comes back is ``reopened`` (not ``open``: finance sees it had been settled once, and the
  corrections flow proposes nothing for it until a reviewer looks at it again), with an event
  saying when it was resolved, by whom and why, and when it came back.
- Not found by a run of its period and company: ``resolved`` (unless ``ignored``), with an event.
  Runs of other periods or companies never touch it.
- ``exception_event`` is the row's history: lifecycle changes (at the run's ``as_of``) and the
  reviewer's imported decisions and comments (at the import's time), never rewritten.

Times are the runs' ``as_of``, never the wall clock, so re-running a period changes nothing.
Every statement is bounded (no ``IN`` list longer than ``CHUNK``), so 100k exceptions stay
inside SQLite's variable limit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, and_, select

from oafin.masking import redact_text
from oafin.standard import EXCEPTION_KEY_COLUMNS
from oafin.warehouse.schema import exception, exception_event
from oafin.warehouse.store import upsert

ID_FIELDS = ("exception_type", "company_code", "period", *EXCEPTION_KEY_COLUMNS)
CARRIED = ("person_id", "amount_fen", "detail", "left_system", "right_system")
CHUNK = 500
OPEN_STATUSES = ("open", "reopened", "acknowledged")


def exception_id(row: Mapping[Any, Any]) -> str:
    """Stable id from the type, company, period and business keys."""
    key = "|".join(str(row.get(f) or "") for f in ID_FIELDS)
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def _value(v: Any) -> Any:
    if v is None:
        return None
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        return v
    return v.item() if hasattr(v, "item") and not isinstance(v, str | bytes) else v


def record_exceptions(
    conn: Connection, found: pd.DataFrame, *, period: str, as_of: datetime, company_code: str
) -> pd.DataFrame:
    """Merge this run's findings into the exception table; return this run's exceptions with lifecycle.

    ``found`` holds the engine's exception columns for one company and period; rows without a
    ``company_code`` are the run's company.
    """
    scope = and_(exception.c.period == period, exception.c.company_code == company_code)
    existing = {r["exception_id"]: dict(r) for r in conn.execute(select(exception).where(scope)).mappings()}
    out: dict[str, dict[str, Any]] = {}
    reopened: list[str] = []
    for rec in found.to_dict("records"):
        rec = {k: _value(v) for k, v in rec.items()}
        rec["company_code"] = rec.get("company_code") or company_code
        if isinstance(rec.get("detail"), str):  # free text may quote a source value: stored masked
            rec["detail"] = redact_text(rec["detail"])
        rec["period"] = period
        eid = exception_id(rec)
        old = existing.get(eid)
        status, first_seen, last_seen = "open", as_of, as_of
        if old is not None:
            status = "reopened" if old["status"] == "resolved" else old["status"]
            if old["status"] == "resolved" and eid not in out:
                reopened.append(eid)
            first_seen = min(old["first_seen"], as_of)
            last_seen = max(old["last_seen"], as_of)
        out.setdefault(
            eid,
            {
                "exception_id": eid,
                "exception_type": rec["exception_type"],
                "company_code": rec["company_code"],
                "period": period,
                **{k: rec.get(k) or None for k in EXCEPTION_KEY_COLUMNS},
                **{k: rec.get(k) for k in CARRIED},
                "status": status,
                "first_seen": first_seen,
                "last_seen": last_seen,
            },
        )
    rows = list(out.values())
    upsert(conn, exception, rows)

    # Open ones of this period and company that this run no longer finds are resolved.
    gone = sorted(eid for eid, r in existing.items() if r["status"] in OPEN_STATUSES and eid not in out)
    for start in range(0, len(gone), CHUNK):
        chunk = gone[start : start + CHUNK]
        conn.execute(
            exception.update()
            .where(and_(scope, exception.c.exception_id.in_(chunk)))
            .values(status="resolved")
        )

    events = _reopen_events(conn, reopened, existing, as_of)
    events += [
        {
            "exception_id": eid,
            "at": as_of,
            "event": "resolved",
            "status": "resolved",
            "comment": None,
            "note": f"已解决：截至 {_day(as_of)} 的运行未再发现此异常",
        }
        for eid in gone
    ]
    upsert(conn, exception_event, events)

    columns = [c.name for c in exception.columns]
    return pd.DataFrame(rows, columns=columns)


def _day(at: datetime) -> str:
    return pd.Timestamp(at).tz_convert("Asia/Shanghai").strftime("%Y-%m-%d")


def _reopen_events(
    conn: Connection, ids: list[str], existing: dict[str, dict[str, Any]], as_of: datetime
) -> list[dict[str, Any]]:
    """A ``reopened`` event per id: when and how it had been resolved, and that it came back."""
    last = read_events(conn, ids)
    if len(last):
        last = last.sort_values(["exception_id", "at"]).groupby("exception_id").tail(1)
    by_id = {r["exception_id"]: r for r in last.to_dict("records")} if len(last) else {}
    out = []
    for eid in ids:
        prior = by_id.get(eid)
        if prior is None:
            how = "此前已标记为已解决"
        elif prior["event"] == "review":
            comment = f"，备注“{prior['comment']}”" if prior.get("comment") else ""
            how = f"{_day(prior['at'])} 复核人标记为已解决{comment}"
        else:
            how = f"{_day(prior['at'])} 自动标记为已解决（运行未再发现）"
        # after the decision it reverses, even when a re-run carries an earlier as_of
        at = max(as_of, prior["at"]) if prior is not None else as_of
        out.append(
            {
                "exception_id": eid,
                "at": at,
                "event": "reopened",
                "status": "reopened",
                "comment": None,
                "note": f"重新打开：{how}；截至 {_day(as_of)} 的运行再次发现"
                f"（上次发现 {_day(existing[eid]['last_seen'])}）",
            }
        )
    return out


def read_events(conn: Connection, ids: list[str]) -> pd.DataFrame:
    """The events of ``ids`` (chunked), columns as ``exception_event``."""
    columns = [c.name for c in exception_event.columns]
    rows: list[dict[str, Any]] = []
    unique = sorted(set(ids))
    for start in range(0, len(unique), CHUNK):
        chunk = unique[start : start + CHUNK]
        stmt = select(exception_event).where(exception_event.c.exception_id.in_(chunk))
        rows.extend(dict(r) for r in conn.execute(stmt).mappings())
    return pd.DataFrame(rows, columns=columns)
