"""The WeCom twin's data faults and rate-limit answer (what ``oafin.sandbox.faults`` applies).

``duplicate_record``: the getapprovalinfo page starts one record early (new or legacy cursor);
``edited_record``: an approved form read just before its approval landed (sp_status 1, 审批中);
``schema_drift``: a field the mapping does not know appears (top level, and a new control);
``renamed_field``: the 报销金额 control retitled 报销金额(元), so the record cannot be mapped;
``invalid_utf8``: bytes that are not UTF-8 inside the claim's purpose (报销事由);
``empty_pages``: a cursor that advances over empty pages for ever (issue #10 item 11);
``deep_json``: a value nested 100,000 levels deep inside one approval (issue #10 item 12).
"""

from __future__ import annotations

from typing import Any, Final

from oafin.sandbox.faults import FaultProfile, hostile_value
from oafin.systems.wecom.twin_render import decode_cursor, encode_cursor

RENAMED_FIELD: Final = ("报销金额", "报销金额(元)")
DRIFT_FIELD: Final = "process_list"  # the newer approval-flow shape (real-clients.md §4.2)
UTF8_FIELD: Final = "报销事由"
# WeCom's "too many calls" answer, with HTTP 200 (source-systems.md §2.5: 45009 接口调用超过限制).
RATE_LIMIT_BODY: Final = {"errcode": 45009, "errmsg": "api freq out of limit"}
INFO_PATH: Final = "/oa/getapprovalinfo"
DETAIL_PATH: Final = "/oa/getapprovaldetail"


def _title(control: Any) -> str | None:
    try:
        return str(control["title"][0]["text"])
    except (KeyError, IndexError, TypeError):
        return None


def shift_request(kind: str, request: Any) -> Any:
    """``duplicate_record``: the getapprovalinfo page starts one record early."""
    if kind != "duplicate_record" or not isinstance(request, dict):
        return request
    new = request.get("new_cursor")
    if isinstance(new, str):
        offset = decode_cursor(new)
        if offset:
            return {**request, "new_cursor": encode_cursor(offset - 1)}
        return request
    try:
        cursor = int(request.get("cursor") or 0)
    except (TypeError, ValueError):
        return request
    return {**request, "cursor": cursor - 1} if cursor > 0 else request


def change(kind: str, request: Any, answer: Any) -> Any:
    """The data fault applied to a decoded getapprovalinfo or getapprovaldetail answer."""
    if not isinstance(answer, dict):
        return answer
    if kind == "empty_pages" and isinstance(request, dict):
        new = request.get("new_cursor")
        size = int(request.get("size") or 100)
        answer["sp_no_list"] = []
        if isinstance(new, str):
            answer["new_next_cursor"] = encode_cursor((decode_cursor(new) or 0) + size)
        else:
            answer["next_cursor"] = int(request.get("cursor") or 0) + size
        return answer
    info = answer.get("info")
    if not isinstance(info, dict):
        return answer
    controls = (info.get("apply_data") or {}).get("contents") or []
    if kind == "edited_record" and info.get("sp_status") == 2:
        info["sp_status"] = 1
    elif kind == "schema_drift":
        info[DRIFT_FIELD] = {"node_list": [], "source": "sandbox schema drift"}
        controls.append(
            {
                "control": "Text",
                "id": "Text-DRIFT",
                "title": [{"text": "新增字段", "lang": "zh_CN"}],
                "value": {
                    "text": "drift",
                    "tips": [],
                    "members": [],
                    "departments": [],
                    "files": [],
                    "children": [],
                },
            }
        )
    elif kind == "deep_json":
        hostile_value(kind, info, "")
    elif kind == "invalid_utf8":
        for control in controls:
            if _title(control) == UTF8_FIELD and isinstance(control.get("value"), dict):
                hostile_value(kind, control["value"], "text")  # becomes bytes 0xFF 0xFE
                break
    elif kind == "renamed_field":
        old, new_title = RENAMED_FIELD
        for control in controls:
            if _title(control) == old:
                control["title"] = [{"text": new_title, "lang": "zh_CN"}]
    return answer


FAULTS: Final = FaultProfile(
    rate_limit_body=RATE_LIMIT_BODY,
    data_paths={
        "duplicate_record": INFO_PATH,
        "edited_record": DETAIL_PATH,
        "schema_drift": DETAIL_PATH,
        "renamed_field": DETAIL_PATH,
        "invalid_utf8": DETAIL_PATH,
        "empty_pages": INFO_PATH,
        "deep_json": DETAIL_PATH,
    },
    change=change,
    shift_request=shift_request,
)
