"""The conformance suite's adapter for Feishu approval v4 (``SYSTEMS_UNDER_TEST`` in conftest)."""

from __future__ import annotations

from oafin.connectors import AuthError, BadResponseError, RateLimitedError, SourceError, TransientError
from oafin.connectors.http import SystemClient
from oafin.connectors.limits import no_limit
from oafin.sandbox.dataset import Dataset
from oafin.sandbox.twin import TwinState
from oafin.systems.feishu.client import FeishuClient
from oafin.systems.feishu.twin import TWIN as FEISHU_TWIN
from oafin.systems.feishu.twin import FeishuState
from oafin.systems.feishu.twin_render import APPROVAL_CODE
from tests.conformance.systems import FAST, ErrorShape, Served, SystemUnderTest, _claim_of

INSTANCES = "/approval/v4/instances"


def _open(base_url: str, *, page_size: int | None = None, bad_credentials: bool = False) -> SystemClient:
    creds = FEISHU_TWIN.credentials
    secret = "not-the-secret" if bad_credentials else str(creds["app_secret"])
    return FeishuClient(
        base_url,
        str(creds["app_id"]),
        secret,
        page_size=page_size or 100,
        retry=FAST,
        limiter=no_limit,
        workers=1,
    )


def _served(dataset: Dataset, kind: str) -> Served:
    if kind != APPROVAL_CODE:
        return []
    # the twin lists by creation time (ms), then instance code (FeishuState.list_codes)
    return sorted((c.created, c.source_id) for c in dataset.claims)


def _envelope(state: TwinState, envelope: str) -> None:
    assert isinstance(state, FeishuState)
    state.expiry_envelope = envelope


FEISHU = SystemUnderTest(
    name="feishu",
    twin=FEISHU_TWIN,
    kinds=(APPROVAL_CODE,),
    open=_open,
    fetch_token=lambda client: str(client._fetch_token().value),  # type: ignore[attr-defined]
    read=lambda client, kind, start, end: client.iter_instances(kind, start, end),  # type: ignore[attr-defined]
    served=_served,
    page_size=4,
    token_call="tenant_access_token/internal",
    list_call="instances/list",
    list_path=INSTANCES,
    # source-systems.md §3.1: the SDK's token codes (99991663 tenant token, 99991671 access token)
    expiry_envelopes=("99991663", "99991671"),
    use_expiry_envelope=_envelope,
    # HTTP 429 and 99991400 (source-systems.md §0, §3.3)
    rate_limits=("http_429", "rate_limit_code"),
    error_shapes=(
        ErrorShape(
            "99991400 with HTTP 400",
            INSTANCES,
            {"code": 99991400, "msg": "request trigger frequency limit"},
            RateLimitedError,
            "instances/list",
            "99991400",
            status=400,
        ),
        ErrorShape(
            "1390002 approval code not found",
            INSTANCES,
            {"code": 1390002, "msg": "approval code not found"},
            SourceError,
            "instances/list",
            "1390002",
            status=400,
        ),
        ErrorShape(
            "1395001 server busy",
            INSTANCES,
            {"code": 1395001, "msg": "server error, retry later"},
            TransientError,
            "instances/list",
            "1395001",
        ),
        ErrorShape(
            "99991672 no permission, HTTP 403",
            INSTANCES,
            {"code": 99991672, "msg": "Access denied"},
            SourceError,
            "instances/list",
            "99991672",
            status=403,
        ),
        ErrorShape("no code", INSTANCES, {"data": {}}, BadResponseError, "instances/list", "no code"),
        ErrorShape(
            "not JSON",
            INSTANCES,
            b'{"code": 0, "data": {"instance_code_list": [',
            BadResponseError,
            "instances/list",
            "not JSON",
        ),
        ErrorShape(
            "HTTP 502", INSTANCES, b"bad gateway", TransientError, "instances/list", "502", status=502
        ),
        ErrorShape(
            "app secret refused",
            "tenant_access_token",
            {"code": 10014, "msg": "app secret invalid"},
            AuthError,
            "tenant_access_token/internal",
            "10014",
            status=400,
        ),
    ),
    month_item=_claim_of,
    mapping_context={"company_code": "C01"},
    is_list_path=lambda path: path.endswith(INSTANCES),
)
