"""The conformance suite's adapter for Weaver e-cology 9 (``oafin/systems/weaver``).

The suite's paging checks bound the list calls by the window's own pages, so the adapter reads
as a deployment whose list takes date conditions (``date_conditions``: the build's search keys
on ``createdate``, here to the second) from the sysadmin's ``getAllWorkflowRequestList``. The
default (every page of the to-do/handled/my lists, filtered on ``createTime``) is what the
end-to-end test runs (tests/test_systems_end_to_end.py) and tests/test_weaver.py checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from mappings.loader import default_mapping_path, load_mapping
from oafin.connectors import AuthError, BadResponseError, SourceError, TransientError
from oafin.connectors.http import SystemClient
from oafin.connectors.limits import no_limit
from oafin.records import RawRecord
from oafin.sandbox.dataset import Dataset
from oafin.sandbox.model import Claim
from oafin.sandbox.twin import TwinState
from oafin.systems.weaver import mapped_field_names
from oafin.systems.weaver.client import WeaverClient
from oafin.systems.weaver.twin import TWIN as WEAVER_TWIN
from oafin.systems.weaver.twin import WeaverState
from oafin.systems.weaver.twin_render import WORKFLOW_ID, request_ids, requests
from tests.conformance.systems import FAST, ErrorShape, Served, SystemUnderTest

DATE_CONDITIONS = {"createdatefrom": "{start_time}", "createdateto": "{end_time}"}


def _open(base_url: str, *, page_size: int | None = None, bad_credentials: bool = False) -> SystemClient:
    app_id = "not-the-app-id" if bad_credentials else str(WEAVER_TWIN.credentials["app_id"])
    return WeaverClient(
        base_url,
        app_id,
        userid="1",
        lists=("all",),
        page_size=page_size or 100,
        date_conditions=DATE_CONDITIONS,
        retry=FAST,
        limiter=no_limit,
        workers=1,  # as the DingTalk adapter: a canned answer counts down on one request's retries
    )


def _read(client: SystemClient, kind: str, start: datetime, end: datetime) -> Iterator[RawRecord]:
    assert isinstance(client, WeaverClient)
    fields = mapped_field_names(load_mapping(default_mapping_path("weaver")), kind)
    return client.iter_requests(kind, start, end, check_fields=fields)


def _served(dataset: Dataset, kind: str) -> Served:
    if kind != WORKFLOW_ID:
        return []
    # the twin lists newest first: createTime, then requestId (WeaverState.requests)
    ordered = sorted(requests(dataset), key=lambda r: (r.created, int(r.request_id)), reverse=True)
    return [(r.created, r.request_id) for r in ordered]


def _envelope(state: TwinState, envelope: str) -> None:
    assert isinstance(state, WeaverState)
    state.expiry_envelope = envelope


def _claim_of(dataset: Dataset, raw: RawRecord) -> Claim:
    by_request = {rid: sid for sid, rid in request_ids(dataset).items()}
    return next(c for c in dataset.claims if c.source_id == by_request[raw.source_id])


def _refusal(msg: str) -> dict[str, Any]:
    return {"msg": msg, "code": -1, "msgShowType": "none", "status": False}


LIST = "getAllWorkflowRequestList"

WEAVER = SystemUnderTest(
    name="weaver",
    twin=WEAVER_TWIN,
    kinds=(WORKFLOW_ID,),
    open=_open,
    fetch_token=lambda client: str(client._apply_token().value),  # type: ignore[attr-defined]
    read=_read,
    served=_served,
    page_size=4,
    token_call="regist",  # the app id is refused at regist (source-systems.md §4.1)
    list_call=LIST,
    list_path="WorkflowRequestList",
    # §4.1: "token不存在或者超时：<token>" (code -1) and "登录信息超时" (errorCode 002)
    expiry_envelopes=("token", "session"),
    use_expiry_envelope=_envelope,
    rate_limits=("http_429",),  # e-cology documents no rate-limit answer (§4.2)
    error_shapes=(
        ErrorShape(
            "secret not decryptable",
            "/auth/applytoken",
            _refusal("secret解密失败,请检查加密内容."),
            AuthError,
            "applytoken",
            "secret解密失败",
        ),
        ErrorShape(
            "licence refused",
            "WorkflowRequestList",
            _refusal("认证信息错误"),
            AuthError,
            LIST,
            "认证信息错误",
        ),
        ErrorShape(
            "NO_PERMISSION",
            "/paService/getWorkflowRequest",
            {"code": "NO_PERMISSION", "errMsg": {"isremark": 2}, "reqFailMsg": {"msgType": "NO_PERMISSION"}},
            SourceError,
            "getWorkflowRequest",
            "NO_PERMISSION",
        ),
        ErrorShape(
            "PARAM_ERROR as {name}",
            "/paService/getWorkflowRequest",
            {"code": {"name": "PARAM_ERROR"}, "errMsg": {"requestId": "流程不存在"}},
            SourceError,
            "getWorkflowRequest",
            "PARAM_ERROR",
        ),
        ErrorShape(
            "statusCode 0",
            "/paService/getRequestLog",
            {"code": {"statusCode": "0"}, "errMsg": {}},
            SourceError,
            "getRequestLog",
            "code 0",
        ),
        ErrorShape(
            "no code",
            "/paService/getWorkflowRequest",
            {"data": {}},
            BadResponseError,
            "getWorkflowRequest",
            "no code",
        ),
        ErrorShape(
            "list not an array",
            "WorkflowRequestList",
            {"rows": []},
            BadResponseError,
            LIST,
            "JSON array",
        ),
        ErrorShape(
            "count not a number",
            "WorkflowRequestCount",
            b'"many"',
            BadResponseError,
            "getAllWorkflowRequestCount",
            "count",
        ),
        ErrorShape(
            "not JSON",
            "WorkflowRequestList",
            b'[{"requestId": "315001", ',
            BadResponseError,
            LIST,
            "not JSON",
        ),
        ErrorShape(
            "HTTP 502",
            "WorkflowRequestList",
            b"bad gateway",
            TransientError,
            LIST,
            "502",
            status=502,
        ),
    ),
    month_item=_claim_of,
    mapping_context={"company_code": "C01"},
    # an empty list page ends the list (§4.2); a list shorter than its separate count call is
    # noted for the run (lists are per user, so a shortfall is expected), not an error
    hostile=("invalid_utf8", "deep_json"),
)
