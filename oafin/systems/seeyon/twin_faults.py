"""The Seeyon twin's data faults (what ``oafin.sandbox.faults`` applies), in Seeyon's envelopes.

Seeyon documents no "too many calls" answer (source-systems.md §5), so there is no
``rate_limit_code`` fault: a throttled Seeyon is an HTTP 429 or 503 from its proxy, which every
twin gets. The data faults:

``duplicate_record``: an export page carries its first record twice (a page boundary that moved);
``edited_record``: an ended flow read just before it ended (its state still running);
``schema_drift``: a field the mapping does not know appears in every record of a page;
``invalid_utf8``: bytes that are not UTF-8 inside the claim's purpose (报销事由, field0006);
``deep_json``: a value nested 100,000 levels deep inside one flow state.
"""

from __future__ import annotations

from typing import Any, Final

from oafin.sandbox.faults import FaultProfile, hostile_value

EXPORT_PATH: Final = "/cap4/form/soap/export"
STATE_PATH: Final = "/flow/state/"
DRIFT_FIELD: Final = "field0999"
UTF8_FIELD: Final = "field0006"


def _records(answer: Any) -> list[Any] | None:
    inner = answer.get("data") if isinstance(answer, dict) else None
    inner = inner.get("data") if isinstance(inner, dict) else None
    rows = inner.get("data") if isinstance(inner, dict) else None
    return rows if isinstance(rows, list) else None


def change(kind: str, request: Any, answer: Any) -> Any:
    """The data fault applied to a decoded export or flow-state answer."""
    rows = _records(answer)
    if rows is not None and rows:
        if kind == "duplicate_record":
            rows.insert(1, rows[0])
        elif kind == "schema_drift":
            for row in rows:
                if isinstance(row, dict):
                    row["oafin_drift_v2"] = {"source": "sandbox schema drift"}
                    master = row.get("masterData")
                    if isinstance(master, dict):
                        master[DRIFT_FIELD] = {"value": "drift", "showValue": "drift"}
        elif kind == "invalid_utf8":
            master = rows[0].get("masterData") if isinstance(rows[0], dict) else None
            cell = master.get(UTF8_FIELD) if isinstance(master, dict) else None
            if isinstance(cell, dict):
                hostile_value(kind, cell, "showValue")
        return answer
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, dict) or "state" not in data:
        return answer
    if kind == "edited_record" and data.get("state") == 1:
        data.update(state=0, stateName="运行中")
        data.pop("finishDate", None)
    elif kind == "deep_json":
        hostile_value(kind, data, "")
    return answer


FAULTS: Final = FaultProfile(
    rate_limit_body=None,
    data_paths={
        "duplicate_record": EXPORT_PATH,
        "schema_drift": EXPORT_PATH,
        "invalid_utf8": EXPORT_PATH,
        "edited_record": STATE_PATH,
        "deep_json": STATE_PATH,
    },
    change=change,
)
