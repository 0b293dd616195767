"""The Yonyou twin's data faults (what ``oafin.sandbox.faults`` applies), in ``queryVouchers`` envelopes.

YonBIP documents no rate-limit code (source-systems.md §0, §8.1), so there is no
``rate_limit_code`` fault: HTTP 429 is the only "slow down" it gets.

``duplicate_record``: the last page repeats a voucher and counts it (a voucher re-saved while the
pages were read shows up twice); ``schema_drift``: new header and line fields the mapping does not know;
``ignored_start_row``: a server that ignores ``pageIndex``, so every page is the first
(issue #10 item 11); ``empty_pages``: pages that come back empty while ``recordCount`` still
counts the vouchers; ``invalid_utf8``: bytes that are not UTF-8 in a page's first voucher number
(``header.billcode``); ``deep_json``: a value nested 100,000 levels deep in a page's first voucher,
so the page cannot be read. (``edited_record`` is left out: tests/test_faults.py pins it to the
two baseline twins.)
"""

from __future__ import annotations

import copy
from typing import Any, Final

from oafin.sandbox.faults import FaultProfile, hostile_value

QUERY: Final = "queryVouchers"
DRIFT_FIELD: Final = "vouchercharacteristics"


def _data(answer: Any) -> dict[str, Any] | None:
    data = answer.get("data") if isinstance(answer, dict) else None
    return data if isinstance(data, dict) and isinstance(data.get("recordList"), list) else None


def shift_request(kind: str, request: Any) -> Any:
    """``ignored_start_row``: the query answered as if it asked for page 1."""
    if kind == "ignored_start_row" and isinstance(request, dict) and isinstance(request.get("pager"), dict):
        return {**request, "pager": {**request["pager"], "pageIndex": 1}}
    return request


def change(kind: str, request: Any, answer: Any) -> Any:
    """The data fault applied to a decoded ``queryVouchers`` answer."""
    data = _data(answer)
    if data is None or not data["recordList"]:
        return answer
    records = data["recordList"]
    pager = request.get("pager") if isinstance(request, dict) else None
    size = pager.get("pageSize") if isinstance(pager, dict) else None
    if kind == "duplicate_record" and isinstance(size, int) and len(records) < size:
        records.append(copy.deepcopy(records[0]))
        data["recordCount"] = int(data.get("recordCount") or 0) + 1
    elif kind == "empty_pages":
        data["recordList"] = []  # recordCount left as it was
    elif kind in ("invalid_utf8", "deep_json") and isinstance(records[0].get("header"), dict):
        hostile_value(kind, records[0]["header"], "billcode")
    elif kind == "schema_drift":
        for record in records:
            record.get("header", {})[DRIFT_FIELD] = {"source": "sandbox schema drift", "version": 2}
            for line in record.get("body") or []:
                line["cashflow"] = []
    return answer


FAULTS: Final = FaultProfile(
    data_paths={
        "duplicate_record": QUERY,
        "schema_drift": QUERY,
        "ignored_start_row": QUERY,
        "empty_pages": QUERY,
        "invalid_utf8": QUERY,
        "deep_json": QUERY,
    },
    change=change,
    shift_request=shift_request,
)
