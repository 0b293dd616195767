"""The Hesine twin's data faults (what ``oafin.sandbox.faults`` applies). Hesine documents per-API
QPS but no rate-limit code (source-systems.md §6, §0), so it has no ``rate_limit_code`` fault; an
overloaded gateway answers HTTP 429, which every twin gets.

``schema_drift``: a field the mapping does not know appears on every document of a page (top
level and in ``form``); ``deep_json``: a value nested 100,000 levels deep inside one document (a
list page's first, so the page cannot be read, or ``flowDetails``'s); ``invalid_utf8``: bytes that
are not UTF-8 in a page's first document number (``form.code``); ``empty_pages``: list pages that
come back empty while ``count`` still counts the documents.
(``change`` also knows ``edited_record``, a paid document read while still ``paying``; it is not
armed for Hesine, so the fault's tests keep their systems.)
"""

from __future__ import annotations

from typing import Any, Final

from oafin.sandbox.faults import FaultProfile, hostile_value

DRIFT_FIELD: Final = "u_新增字段"


def _documents(answer: Any) -> list[dict[str, Any]]:
    if isinstance(answer, dict) and isinstance(answer.get("items"), list):
        return [d for d in answer["items"] if isinstance(d, dict)]
    if isinstance(answer, dict) and isinstance(answer.get("value"), dict):
        return [answer["value"]]
    return []


def change(kind: str, request: Any, answer: Any) -> Any:
    """The data fault applied to a decoded ``getApplyList`` or ``flowDetails`` answer."""
    docs = _documents(answer)
    if kind == "schema_drift":
        for doc in docs:
            doc["flowVersion"] = {"source": "sandbox schema drift", "version": 2}
            if isinstance(doc.get("form"), dict):
                doc["form"][DRIFT_FIELD] = "drift"
    elif kind == "edited_record":
        for doc in docs:
            if doc.get("state") == "paid":
                doc["state"] = "paying"
                break
    elif kind == "deep_json" and docs:
        hostile_value(kind, docs[0], "")
    elif kind == "invalid_utf8" and docs and isinstance(docs[0].get("form"), dict):
        hostile_value(kind, docs[0]["form"], "code")
    elif kind == "empty_pages" and isinstance(answer, dict) and isinstance(answer.get("items"), list):
        answer["items"] = []  # count left as it was
    return answer


FAULTS: Final = FaultProfile(
    data_paths={
        "schema_drift": "/docs/getApplyList",
        "deep_json": ("/flowDetails", "/docs/getApplyList"),
        "invalid_utf8": "/docs/getApplyList",
        "empty_pages": "/docs/getApplyList",
    },
    change=change,
)
