"""The DingTalk twin's data faults and rate-limit answer (what ``oafin.sandbox.faults`` applies).

``duplicate_record``: DingTalk's cursor is the server's, so a page starts one record early;
``edited_record``: an approved instance read just before its approval landed (still running);
``schema_drift``: a field the mapping does not know appears (top level and in the form);
``renamed_field``: 报销金额 renamed 报销金额(元), so the record cannot be mapped;
``invalid_utf8``: bytes that are not UTF-8 inside the claim's purpose (报销事由);
``empty_pages``: a listids cursor that advances over empty pages for ever (issue #10 item 11);
``deep_json``: a value nested 100,000 levels deep inside one instance (issue #10 item 12).
"""

from __future__ import annotations

from typing import Any, Final

from oafin.sandbox.faults import FaultProfile, hostile_value

RENAMED_FIELD: Final = ("报销金额", "报销金额(元)")
DRIFT_FIELD: Final = "biz_data_v2"
UTF8_FIELD: Final = "报销事由"
# DingTalk's "too many calls" answer, with HTTP 200 (source-systems.md §1.6: 90018).
RATE_LIMIT_BODY: Final = {"errcode": 90018, "errmsg": "当前企业调用该接口超过限制，请稍后再试"}


def shift_request(kind: str, request: Any) -> Any:
    """``duplicate_record``: the listids page starts one record early."""
    if kind == "duplicate_record" and isinstance(request, dict):
        cursor = request.get("cursor") or 0
        if isinstance(cursor, int) and cursor > 0:
            return {**request, "cursor": cursor - 1}
    return request


def change(kind: str, request: Any, answer: Any) -> Any:
    """The data fault applied to a decoded ``listids`` or ``processinstance/get`` answer."""
    if kind == "empty_pages" and isinstance(answer, dict) and isinstance(request, dict):
        cursor = request.get("cursor") or 0
        answer["result"] = {"list": [], "next_cursor": int(cursor) + int(request.get("size") or 20)}
        return answer
    instance = answer.get("process_instance") if isinstance(answer, dict) else None
    if not isinstance(instance, dict):
        return answer
    if kind == "edited_record" and instance.get("status") == "COMPLETED":
        instance.update(status="RUNNING", result="")
    elif kind == "schema_drift":
        instance[DRIFT_FIELD] = {"source": "sandbox schema drift", "version": 2}
        forms = list(instance.get("form_component_values") or [])
        forms.append(
            {"name": "新增字段", "value": "drift", "id": "TextField_DRIFT", "component_type": "TextField"}
        )
        instance["form_component_values"] = forms
    elif kind == "deep_json":
        hostile_value(kind, instance, "")
    elif kind == "invalid_utf8":
        for comp in instance.get("form_component_values") or []:
            if isinstance(comp, dict) and comp.get("name") == UTF8_FIELD:
                hostile_value(kind, comp, "value")  # becomes bytes 0xFF 0xFE
                break
    elif kind == "renamed_field":
        old, new = RENAMED_FIELD
        instance["form_component_values"] = [
            {**c, "name": new} if isinstance(c, dict) and c.get("name") == old else c
            for c in instance.get("form_component_values") or []
        ]
    return answer


FAULTS: Final = FaultProfile(
    rate_limit_body=RATE_LIMIT_BODY,
    data_paths={
        "duplicate_record": "/processinstance/listids",
        "edited_record": "/processinstance/get",
        "schema_drift": "/processinstance/get",
        "renamed_field": "/processinstance/get",
        "invalid_utf8": "/processinstance/get",
        "empty_pages": "/processinstance/listids",
        "deep_json": "/processinstance/get",
    },
    change=change,
    shift_request=shift_request,
)
