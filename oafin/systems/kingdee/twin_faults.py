"""The Kingdee twin's data faults (what ``oafin.sandbox.faults`` applies). Kingdee documents no
rate-limit code (source-systems.md §7.5), so it has no ``rate_limit_code`` fault.

``duplicate_record``: a page repeats a row (one row per entry line does that for real);
``edited_record``: an audited bill read just before its audit landed (still in review);
``ignored_start_row``: a server that ignores ``StartRow``, so every page is the first (issue #10 item 11);
``invalid_utf8``: bytes that are not UTF-8 in a page's first bill number (FBillNo);
``deep_json``: a cell nested 100,000 levels deep in a page's first row, so the page cannot be read.
(No ``empty_pages``: ExecuteBillQuery has no total, so an empty page is the end, §7.3.)
"""

from __future__ import annotations

import json
from typing import Any, Final

from oafin.sandbox.faults import FaultProfile, hostile_value


def _field_keys(request: Any) -> list[str]:
    data = request.get("data") if isinstance(request, dict) else None
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            data = None
    keys = data.get("FieldKeys", "") if isinstance(data, dict) else ""
    return [k.strip().lower() for k in str(keys).split(",")]


def shift_request(kind: str, request: Any) -> Any:
    """``ignored_start_row``: the query answered as if it asked for the first page."""
    if kind == "ignored_start_row" and isinstance(request, dict) and isinstance(request.get("data"), dict):
        return {**request, "data": {**request["data"], "StartRow": 0}}
    return request


def change(kind: str, request: Any, answer: Any) -> Any:
    """The data fault applied to a decoded ``ExecuteBillQuery`` answer (a 2-D array)."""
    rows = answer if isinstance(answer, list) and all(isinstance(r, list) for r in answer) else None
    if not rows:
        return answer
    data = request.get("data") if isinstance(request, dict) else None
    limit = data.get("Limit") if isinstance(data, dict) else None
    if kind == "duplicate_record" and isinstance(limit, int) and len(rows) < limit:
        return [*rows, list(rows[0])]
    if kind == "invalid_utf8":
        keys = _field_keys(request)
        if "fbillno" in keys:
            hostile_value(kind, rows[0], keys.index("fbillno"))
    elif kind == "deep_json":
        hostile_value(kind, rows[0], 0)
    if kind == "edited_record":
        keys = _field_keys(request)
        if "fdocumentstatus" in keys:
            i = keys.index("fdocumentstatus")
            for row in rows:
                if row[i] == "C":
                    row[i] = "B"  # audited → still in review when read
                    break
    return rows


FAULTS: Final = FaultProfile(
    data_paths={
        "duplicate_record": "ExecuteBillQuery",
        "edited_record": "ExecuteBillQuery",
        "ignored_start_row": "ExecuteBillQuery",
        "invalid_utf8": "ExecuteBillQuery",
        "deep_json": "ExecuteBillQuery",
    },
    change=change,
    shift_request=shift_request,
)
