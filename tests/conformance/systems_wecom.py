"""The conformance suite's adapter for WeCom (企业微信): getapprovalinfo/getapprovaldetail."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from oafin.connectors import AuthError, BadResponseError, RateLimitedError, SourceError, TransientError
from oafin.connectors.http import SystemClient
from oafin.connectors.limits import no_limit
from oafin.records import RawRecord
from oafin.sandbox.dataset import Dataset
from oafin.sandbox.model import Claim
from oafin.sandbox.twin import TwinState
from oafin.systems.wecom import DEFAULT_TEMPLATE_ID
from oafin.systems.wecom.client import CursorStyle, WeComClient
from oafin.systems.wecom.twin import TWIN as WECOM_TWIN
from oafin.systems.wecom.twin import WeComState
from oafin.systems.wecom.twin_render import seconds
from tests.conformance.systems import FAST, ErrorShape, Served, SystemUnderTest

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
INFO, DETAIL = "/oa/getapprovalinfo", "/oa/getapprovaldetail"


def _open(
    base_url: str,
    *,
    page_size: int | None = None,
    bad_credentials: bool = False,
    cursor_style: CursorStyle = "new_cursor",
) -> SystemClient:
    creds = WECOM_TWIN.credentials
    secret = "not-the-secret" if bad_credentials else str(creds["corp_secret"])
    return WeComClient(
        base_url,
        str(creds["corp_id"]),
        secret,
        page_size=page_size or 100,
        cursor_style=cursor_style,
        retry=FAST,
        limiter=no_limit,
        workers=1,
    )


def _open_legacy(
    base_url: str, *, page_size: int | None = None, bad_credentials: bool = False
) -> SystemClient:
    return _open(base_url, page_size=page_size, bad_credentials=bad_credentials, cursor_style="cursor")


def _served(dataset: Dataset, kind: str) -> Served:
    if kind != DEFAULT_TEMPLATE_ID:
        return []
    # the twin lists by apply time (whole seconds), then sp_no (WeComState.list_sp_nos)
    return sorted((_EPOCH + timedelta(seconds=seconds(c.created)), c.claim_no) for c in dataset.claims)


def _envelope(state: TwinState, envelope: str) -> None:
    assert isinstance(state, WeComState)
    state.expiry_envelope = envelope


def _claim_of(dataset: Dataset, raw: RawRecord) -> Claim:
    return next(c for c in dataset.claims if c.claim_no == raw.source_id)


def _shape(name: str, path: str, body: object, error: type, mentions: str, status: int = 200) -> ErrorShape:
    call = "oa/getapprovalinfo" if path == INFO else "oa/getapprovaldetail"
    return ErrorShape(name, path, body, error, call, mentions, status=status)


WECOM = SystemUnderTest(
    name="wecom",
    twin=WECOM_TWIN,
    kinds=(DEFAULT_TEMPLATE_ID,),
    open=_open,
    fetch_token=lambda client: str(client._fetch_token().value),  # type: ignore[attr-defined]
    read=lambda client, kind, start, end: client.iter_approvals(kind, start, end),  # type: ignore[attr-defined]
    served=_served,
    page_size=4,
    token_call="gettoken",
    list_call="oa/getapprovalinfo",
    list_path=INFO,
    # source-systems.md §2.1, §2.5: 42001 expired, 40014 invalid
    expiry_envelopes=("42001", "40014"),
    use_expiry_envelope=_envelope,
    rate_limits=("http_429", "rate_limit_code"),  # 45009 with HTTP 200 (§2.5, real-clients.md §2.1)
    error_shapes=(
        # real-clients.md §2.1: the approval API's 3010xx errors
        _shape(
            "301025 bad params",
            INFO,
            {"errcode": 301025, "errmsg": "invalid starttime or endtime", "sp_no_list": []},
            SourceError,
            "301025",
        ),
        _shape(
            "301055 no permission",
            DETAIL,
            {"errcode": 301055, "errmsg": "no permission"},
            AuthError,
            "301055",
        ),
        _shape(
            "301026 batch pull failed",
            INFO,
            {"errcode": 301026, "errmsg": "inner error"},
            TransientError,
            "301026",
        ),
        _shape(
            "301056 app disabled", INFO, {"errcode": 301056, "errmsg": "app disabled"}, AuthError, "disabled"
        ),
        _shape(
            "301057 generic", DETAIL, {"errcode": 301057, "errmsg": "system error"}, SourceError, "301057"
        ),
        _shape(
            "45033 concurrency",
            DETAIL,
            {"errcode": 45033, "errmsg": "api concurrent out of limit"},
            RateLimitedError,
            "45033",
        ),
        _shape("-1 busy", INFO, {"errcode": -1, "errmsg": "system busy"}, TransientError, "errcode -1"),
        _shape("no errcode", DETAIL, {"info": {}}, BadResponseError, "errcode"),
        _shape("no info", DETAIL, {"errcode": 0, "errmsg": "ok"}, BadResponseError, "info"),
        _shape("not JSON", INFO, b'{"errcode": 0, "sp_no_list": [', BadResponseError, "not JSON"),
        _shape("HTTP 502", INFO, b"bad gateway", TransientError, "502", status=502),
    ),
    month_item=_claim_of,
    mapping_context={"company_code": "C01"},
)


# The same twin paged with the legacy int cursor (source setting ``cursor = "cursor"``), whose end
# is signalled by ``next_cursor`` being absent (real-clients.md §2.1).
WECOM_LEGACY_CURSOR = dataclasses.replace(WECOM, variant="legacy-cursor", open=_open_legacy)
