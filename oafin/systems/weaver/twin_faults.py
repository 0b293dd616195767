"""The Weaver twin's data faults (what ``oafin.sandbox.faults`` applies to its answers).

Weaver's list calls are form-encoded (source-systems.md §4.1), so a fault sees only the answer:

``duplicate_record``: a list page repeats its first request at its end (the lists are the
OA's live view: a request that moved while paging shows twice);
``edited_record``: an archived (approved) request read just before it was archived;
``schema_drift``: a key the mapping does not know appears at the top and as a main-table field;
``renamed_field``: the amount field's ``fieldName`` ``bxje`` renamed ``bxje1`` (a form edited in
the designer), so the record cannot be mapped;
``invalid_utf8``: bytes that are not UTF-8 inside 报销事由;
``deep_json``: a value nested 100,000 levels deep inside one request.

e-cology documents no rate-limit answer (§4.2: "No rate limits ... documented"), so there is no
``rate_limit_code`` fault; HTTP 429 from a gateway still applies.
"""

from __future__ import annotations

from typing import Any, Final

from oafin.sandbox.faults import FaultProfile, hostile_value

RENAMED_FIELD: Final = ("bxje", "bxje1")
DRIFT_FIELD: Final = "workflowRequestExt"
UTF8_FIELD: Final = "bxsy"
LIST_PATH: Final = "WorkflowRequestList"
DETAIL_PATH: Final = "/paService/getWorkflowRequest"


def _main_fields(data: dict[str, Any]) -> list[dict[str, Any]]:
    main = data.get("workflowMainTableInfo") or {}
    records = main.get("requestRecords") or [] if isinstance(main, dict) else []
    if not records or not isinstance(records[0], dict):
        return []
    fields = records[0].get("workflowRequestTableFields")
    return fields if isinstance(fields, list) else []


def change(kind: str, request: Any, answer: Any) -> Any:
    """The data fault applied to a decoded list page or ``getWorkflowRequest`` answer."""
    if kind == "duplicate_record" and isinstance(answer, list):
        return [*answer, answer[0]] if answer else answer
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, dict):
        return answer
    fields = _main_fields(data)
    if kind == "edited_record" and data.get("status") == "归档":
        data.update(status="财务审批", currentNodeId="60003", currentNodeName="财务审批")
    elif kind == "schema_drift":
        data[DRIFT_FIELD] = {"source": "sandbox schema drift", "version": 2}
        fields.append(
            {
                "fieldName": "xzzd",
                "fieldShowName": "新增字段",
                "fieldValue": "drift",
                "fieldShowValue": "drift",
            }
        )
    elif kind == "deep_json":
        hostile_value(kind, data, "")
    elif kind == "invalid_utf8":
        for field in fields:
            if isinstance(field, dict) and field.get("fieldName") == UTF8_FIELD:
                # the value mappings read (the mark becomes bytes once per answer)
                hostile_value(kind, field, "fieldShowValue")
                break
    elif kind == "renamed_field":
        old, new = RENAMED_FIELD
        for field in fields:
            if isinstance(field, dict) and field.get("fieldName") == old:
                field["fieldName"] = new
    return answer


FAULTS: Final = FaultProfile(
    rate_limit_body=None,
    data_paths={
        "duplicate_record": LIST_PATH,
        "edited_record": DETAIL_PATH,
        "schema_drift": DETAIL_PATH,
        "renamed_field": DETAIL_PATH,
        "invalid_utf8": DETAIL_PATH,
        "deep_json": DETAIL_PATH,
    },
    change=change,
)
