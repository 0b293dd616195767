"""The dingtalk-v1 twin's faults in v1.0 envelopes (what ``oafin.sandbox.faults`` applies).

v1.0 answers every error with an HTTP 4xx/5xx and a JSON ``{code, message, requestid}`` body, which
the official SDK requires on every error (real-clients.md §1.1 "Fake requirements"), so the injected
HTTP errors carry one too. Throttling is an HTTP **403** (real-clients.md §2.7); its code is not
documented in what we have [U], ``Forbidden.AccessDenied.QpsLimitForApi`` stands in.

Data faults as the topapi twin's (``oafin.systems.dingtalk.twin_faults``), on the v1.0 keys:
``duplicate_record`` (the ``nextToken`` page starts one record early), ``edited_record``,
``schema_drift``, ``renamed_field``, ``invalid_utf8``, ``empty_pages``, ``deep_json``.
"""

from __future__ import annotations

from typing import Any, Final

from oafin.sandbox.faults import FaultProfile, hostile_value
from oafin.systems.dingtalk.twin_faults import DRIFT_FIELD, RENAMED_FIELD, UTF8_FIELD

TOKEN_PATH: Final = "/v1.0/oauth2/accessToken"
LIST_PATH: Final = "/v1.0/workflow/processes/instanceIds/query"
GET_PATH: Final = "/v1.0/workflow/processInstances"
READ_PATHS: Final = frozenset({TOKEN_PATH, LIST_PATH, GET_PATH})

THROTTLED_CODE: Final = "Forbidden.AccessDenied.QpsLimitForApi"  # [U] the code; the 403 is [C]
RATE_LIMIT_BODY: Final = {"code": THROTTLED_CODE, "message": "触发了qps流控，请降低调用频率"}
HTTP_ERRORS: Final = {
    429: ("Throttling", "请求过于频繁"),
    500: ("InternalError", "服务内部错误"),
    502: ("BadGateway", "网关错误"),
    503: ("ServiceUnavailable", "服务暂不可用"),
}


def http_error_body(status: int) -> dict[str, Any]:
    code, message = HTTP_ERRORS.get(status, ("SystemError", "系统错误"))
    return {"code": code, "message": message}


def shift_request(kind: str, request: Any) -> Any:
    """``duplicate_record``: the page starts one record early."""
    if kind == "duplicate_record" and isinstance(request, dict):
        token = request.get("nextToken") or 0
        if isinstance(token, int) and token > 0:
            return {**request, "nextToken": token - 1}
    return request


def change(kind: str, request: Any, answer: Any) -> Any:
    """The data fault applied to a decoded list or get answer."""
    if kind == "empty_pages" and isinstance(answer, dict) and isinstance(request, dict):
        token = int(request.get("nextToken") or 0)
        following = token + int(request.get("maxResults") or 20)
        answer["result"] = {"list": [], "nextToken": str(following)}
        return answer
    instance = answer.get("result") if isinstance(answer, dict) else None
    if not isinstance(instance, dict) or "formComponentValues" not in instance:
        return answer
    forms = instance.get("formComponentValues") or []
    if kind == "edited_record" and instance.get("status") == "COMPLETED":
        instance.update(status="RUNNING", result="")
        instance.pop("finishTime", None)
    elif kind == "schema_drift":
        instance[DRIFT_FIELD] = {"source": "sandbox schema drift", "version": 2}
        instance["formComponentValues"] = [
            *forms,
            {"id": "TextField_DRIFT", "name": "新增字段", "value": "drift", "componentType": "TextField"},
        ]
    elif kind == "deep_json":
        hostile_value(kind, instance, "")
    elif kind == "invalid_utf8":
        for comp in forms:
            if isinstance(comp, dict) and comp.get("name") == UTF8_FIELD:
                hostile_value(kind, comp, "value")
                break
    elif kind == "renamed_field":
        old, new = RENAMED_FIELD
        instance["formComponentValues"] = [
            {**c, "name": new} if isinstance(c, dict) and c.get("name") == old else c for c in forms
        ]
    return answer


FAULTS: Final = FaultProfile(
    rate_limit_body=RATE_LIMIT_BODY,
    rate_limit_status=403,
    request_id_key="requestid",
    http_error_body=http_error_body,
    is_read=lambda path: path in READ_PATHS,
    data_paths={
        "duplicate_record": LIST_PATH,
        "edited_record": GET_PATH,
        "schema_drift": GET_PATH,
        "renamed_field": GET_PATH,
        "invalid_utf8": GET_PATH,
        "empty_pages": LIST_PATH,
        "deep_json": GET_PATH,
    },
    change=change,
    shift_request=shift_request,
)
