"""The conformance adapter of dingtalk-v1 (DingTalk's v1.0 API, ``oafin.systems.dingtalk_v1``)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from oafin.connectors import AuthError, BadResponseError, RateLimitedError, SourceError, TransientError
from oafin.connectors.http import SystemClient
from oafin.connectors.limits import no_limit
from oafin.records import RawRecord
from oafin.sandbox.dataset import PROCESS_CODE, Dataset
from oafin.sandbox.model import Claim
from oafin.sandbox.twin import TwinState
from oafin.systems.dingtalk_v1.client import DingTalkV1Client
from oafin.systems.dingtalk_v1.twin import TWIN as DINGTALK_V1_TWIN
from oafin.systems.dingtalk_v1.twin import DingTalkV1State
from tests.conformance.systems import FAST, ErrorShape, Served, SystemUnderTest


def _open(base_url: str, *, page_size: int | None = None, bad_credentials: bool = False) -> SystemClient:
    creds = DINGTALK_V1_TWIN.credentials
    secret = "not-the-secret" if bad_credentials else str(creds["app_secret"])
    return DingTalkV1Client(
        base_url,
        str(creds["app_key"]),
        secret,
        page_size=page_size or 20,
        retry=FAST,
        limiter=no_limit,
        workers=1,
    )


def _served(dataset: Dataset, kind: str) -> Served:
    if kind != dataset.process_code:
        return []
    return sorted((c.created, c.source_id) for c in dataset.claims)  # by creation time, then id


def _envelope(state: TwinState, envelope: str) -> None:
    assert isinstance(state, DingTalkV1State)
    state.expiry_envelope = envelope


def _minute(moment: datetime | None) -> datetime | None:
    """v1.0 times are UTC with minute precision (source-systems.md §1.3): what the API can say."""
    return None if moment is None else moment.astimezone(UTC).replace(second=0, microsecond=0)


def _claim_of(dataset: Dataset, raw: RawRecord) -> Claim:
    claim = next(c for c in dataset.claims if c.source_id == raw.source_id)
    return dataclasses.replace(claim, created=_minute(claim.created), finished=_minute(claim.finished))


LIST = "/instanceIds/query"
LIST_CALL = "processes/instanceIds/query"

DINGTALK_V1 = SystemUnderTest(
    name="dingtalk-v1",
    twin=DINGTALK_V1_TWIN,
    kinds=(PROCESS_CODE,),
    open=_open,
    fetch_token=lambda client: str(client._fetch_token().value),  # type: ignore[attr-defined]
    read=lambda client, kind, start, end: client.iter_instances(kind, start, end),  # type: ignore[attr-defined]
    served=_served,
    page_size=4,
    token_call="oauth2/accessToken",
    list_call=LIST_CALL,
    list_path=LIST,
    # §1.6: HTTP 400 "不合法的access_token"; 401 as some clients see it (real-clients.md §2.x [U])
    expiry_envelopes=("400 InvalidAuthentication", "401 InvalidAuthentication"),
    use_expiry_envelope=_envelope,
    rate_limits=("http_429", "rate_limit_code"),  # rate_limit_code: HTTP 403 (real-clients.md §2.7)
    error_shapes=(
        ErrorShape(
            "403 token lacks a scope",
            LIST,
            {
                "code": "Forbidden.AccessDenied.AccessTokenPermissionDenied",
                "requestid": "sandbox",
                "message": "没有调用该接口的权限",
                "accessdenieddetail": {"requiredScopes": ["qyapi_get_process_instance"]},
            },
            AuthError,
            LIST_CALL,
            "AccessTokenPermissionDenied",
            status=403,
        ),
        ErrorShape(
            "403 monthly quota",
            LIST,
            {
                "code": "Forbidden.AccessDenied.ApiCountLimitForOrg",
                "requestid": "sandbox",
                "message": "调用量超限",
            },
            RateLimitedError,
            LIST_CALL,
            "ApiCountLimitForOrg",
            status=403,
        ),
        ErrorShape(
            "400 bad parameter",
            "/processInstances",
            {"code": "InvalidParameter", "requestid": "sandbox", "message": "流程实例不存在"},
            SourceError,
            "processInstances",
            "InvalidParameter",
            status=400,
        ),
        ErrorShape(
            "not a JSON object",
            "/processInstances",
            ["not", "an", "object"],
            BadResponseError,
            "processInstances",
            "JSON object",
        ),
        ErrorShape(
            "not JSON",
            LIST,
            b'{"result": {"list": [',
            BadResponseError,
            LIST_CALL,
            "not JSON",
        ),
        ErrorShape(
            "HTTP 502 in the v1.0 envelope",
            LIST,
            {"code": "BadGateway", "requestid": "sandbox", "message": "网关错误"},
            TransientError,
            LIST_CALL,
            "502",
            status=502,
        ),
    ),
    month_item=_claim_of,
    mapping_context={"company_code": "C01"},
)
