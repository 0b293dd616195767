"""How the conformance suite drives one system: a ``SystemUnderTest`` per system.

An adapter says how to open a client on the sandbox's credentials, how to read a record kind in
a window, what the twin serves for that window (from the neutral month), which expiry envelopes,
rate-limit answers and error shapes the system documents, and which object of the neutral month a
raw record is. ``tests/conformance/conftest.py`` lists the adapters; a new system adds one entry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from mappings.loader import default_mapping_path, load_mapping
from oafin.connectors import (
    AuthError,
    BadResponseError,
    RateLimitedError,
    RetryPolicy,
    SourceError,
    TransientError,
)
from oafin.connectors.errors import ConnectorError
from oafin.connectors.http import SystemClient
from oafin.connectors.limits import no_limit
from oafin.records import RawRecord
from oafin.sandbox.dataset import PROCESS_CODE, Dataset
from oafin.sandbox.model import Bill, Claim, Payment
from oafin.sandbox.twin import Twin, TwinState
from oafin.sandbox_server import SandboxHandle
from oafin.systems.dingtalk.client import DingTalkClient
from oafin.systems.dingtalk.twin import TWIN as DINGTALK_TWIN
from oafin.systems.dingtalk.twin import DingTalkState
from oafin.systems.kingdee.client import QUERY_SERVICE, AuthMode, KingdeeClient
from oafin.systems.kingdee.twin import TWIN as KINGDEE_TWIN
from oafin.systems.kingdee.twin_render import KINGDEE_FORMAT, form_rows

SHANGHAI = ZoneInfo("Asia/Shanghai")
FAST = RetryPolicy(max_attempts=4, base_delay=0.0, max_delay=0.0)  # no waiting between retries

# The hostile-input faults (oafin.sandbox.faults) every twin serves, so the same checks run
# against every system (checks.check_hostile).
HOSTILE = ("invalid_utf8", "deep_json", "empty_pages")

Served = list[tuple[datetime, str]]  # (windowed timestamp, source id) in the order the twin serves them


@dataclass(frozen=True)
class ErrorShape:
    """A documented error answer, canned on the call whose path contains ``path_contains``."""

    name: str
    path_contains: str
    body: Any  # JSON-encoded unless bytes
    error: type[ConnectorError]
    call: str  # the call name the error must carry
    mentions: str = ""  # a detail the message must show (the code, the reason)
    status: int = 200


@dataclass(frozen=True)
class SystemUnderTest:
    name: str
    twin: Twin
    kinds: tuple[str, ...]  # the record kinds the suite reads
    open: Callable[..., SystemClient]  # (base_url, *, page_size=None, bad_credentials=False)
    fetch_token: Callable[[SystemClient], str]
    read: Callable[[SystemClient, str, datetime, datetime], Iterator[RawRecord]]
    served: Callable[[Dataset, str], Served]  # everything of a kind the twin serves, in its order
    page_size: int  # a small page the suite forces (several pages per window)
    token_call: str  # the call name of the token fetch / login
    list_call: str  # the call name of the paged listing
    list_path: str  # a fragment of the paged listing's path
    expiry_envelopes: tuple[str, ...]
    use_expiry_envelope: Callable[[TwinState, str], None]
    rate_limits: tuple[str, ...]  # fault kinds (oafin.sandbox.faults) the system documents
    error_shapes: tuple[ErrorShape, ...]
    month_item: Callable[[Dataset, RawRecord], Claim | Bill | Payment]
    mapping_context: dict[str, Any] = field(default_factory=dict)
    variant: str = ""  # a second way of speaking to the same system (Kingdee: "signature" auth)
    # Which calls whose path contains ``list_path`` are list calls, where other calls' paths contain
    # it too (Feishu's instance get is the list path plus "/<code>"); None: all of them.
    is_list_path: Callable[[str], bool] | None = None
    # separate list walks one read makes (Hesine asks for live and deleted documents apart)
    list_walks: int = 1
    # hostile-input faults the twin serves (HOSTILE, less what the system's paging cannot have)
    hostile: tuple[str, ...] = HOSTILE

    def mapping(self) -> Any:
        return load_mapping(default_mapping_path(self.name))

    def __str__(self) -> str:
        return f"{self.name}-{self.variant}" if self.variant else self.name


# -- DingTalk (old topapi) --------------------------------------------------------------------


def _dingtalk_open(
    base_url: str, *, page_size: int | None = None, bad_credentials: bool = False
) -> SystemClient:
    creds = DINGTALK_TWIN.credentials
    secret = "not-the-secret" if bad_credentials else str(creds["app_secret"])
    return DingTalkClient(
        base_url,
        str(creds["app_key"]),
        secret,
        page_size=page_size or 20,
        retry=FAST,
        limiter=no_limit,
        workers=1,
    )


def _dingtalk_served(dataset: Dataset, kind: str) -> Served:
    if kind != dataset.process_code:
        return []
    # the twin lists by creation time, then id (DingTalkState.list_ids)
    return sorted((c.created, c.source_id) for c in dataset.claims)


def _dingtalk_envelope(state: TwinState, envelope: str) -> None:
    assert isinstance(state, DingTalkState)
    state.expiry_envelope = envelope


def _claim_of(dataset: Dataset, raw: RawRecord) -> Claim:
    return next(c for c in dataset.claims if c.source_id == raw.source_id)


DINGTALK = SystemUnderTest(
    name="dingtalk",
    twin=DINGTALK_TWIN,
    kinds=(PROCESS_CODE,),
    open=_dingtalk_open,
    fetch_token=lambda client: str(client._fetch_token().value),  # type: ignore[attr-defined]
    read=lambda client, kind, start, end: client.iter_instances(kind, start, end),  # type: ignore[attr-defined]
    served=_dingtalk_served,
    page_size=4,
    token_call="gettoken",
    list_call="processinstance/listids",
    list_path="/processinstance/listids",
    # source-systems.md §1.6 (88 with sub_code 40014, issue #10 item 1), §2.5 (40014, 42001)
    expiry_envelopes=("88/40014", "40014", "42001"),
    use_expiry_envelope=_dingtalk_envelope,
    rate_limits=("http_429", "rate_limit_code"),  # 90018 with HTTP 200 (§1.6)
    error_shapes=(
        ErrorShape(
            "88 no permission",
            "/processinstance/listids",
            {
                "errcode": 88,
                "sub_code": "60011",
                "sub_msg": "没有调用该接口的权限",
                "errmsg": "ding talk error[subcode=60011]",
            },
            AuthError,
            "processinstance/listids",
            "60011",
        ),
        ErrorShape(
            "-1 busy",
            "/processinstance/listids",
            {"errcode": -1, "errmsg": "系统繁忙"},
            TransientError,
            "processinstance/listids",
            "errcode -1",
        ),
        ErrorShape(
            "90020 monthly quota",
            "/processinstance/listids",
            {"errcode": 90020, "errmsg": "调用次数超过限制"},
            RateLimitedError,
            "processinstance/listids",
            "90020",
        ),
        ErrorShape(
            "per-IP WAF block",
            "/processinstance/listids",
            {"status": 1111, "wait": 0, "source": "x5", "punish": "deny", "uuid": "sandbox"},
            RateLimitedError,
            "processinstance/listids",
            "per-IP",
        ),
        ErrorShape(
            "820004 no such instance",
            "/processinstance/get",
            {"errcode": 820004, "errmsg": "流程不存在"},
            SourceError,
            "processinstance/get",
            "820004",
        ),
        ErrorShape(
            "no errcode",
            "/processinstance/get",
            {"result": {}},
            BadResponseError,
            "processinstance/get",
            "errcode",
        ),
        ErrorShape(
            "not JSON",
            "/processinstance/listids",
            b'{"errcode": 0, "result": {"list": [',
            BadResponseError,
            "processinstance/listids",
            "not JSON",
        ),
        ErrorShape(
            "HTTP 502",
            "/processinstance/listids",
            b"bad gateway",
            TransientError,
            "processinstance/listids",
            "502",
            status=502,
        ),
    ),
    month_item=_claim_of,
    mapping_context={"company_code": "C01"},
)


# -- Kingdee K/3 Cloud ------------------------------------------------------------------------

KINGDEE_FORMS = {"ER_ExpReimbursement": "FDate", "AP_PAYBILL": "FDATE"}


def _kingdee_open(
    base_url: str,
    *,
    page_size: int | None = None,
    bad_credentials: bool = False,
    auth_mode: AuthMode = "session",
) -> SystemClient:
    c = KINGDEE_TWIN.credentials
    secret = "not-the-secret" if bad_credentials else str(c["app_secret"])
    return KingdeeClient(
        base_url,
        str(c["acct_id"]),
        str(c["username"]),
        str(c["app_id"]),
        secret,
        page_size=page_size or 2000,
        retry=FAST,
        limiter=no_limit,
        auth_mode=auth_mode,
    )


def _kingdee_signed_open(
    base_url: str, *, page_size: int | None = None, bad_credentials: bool = False
) -> SystemClient:
    return _kingdee_open(
        base_url, page_size=page_size, bad_credentials=bad_credentials, auth_mode="signature"
    )


def _kingdee_signature(client: SystemClient) -> str:
    """Signature mode has no token: the ``X-Kd-Signature`` it would send on a query stands in."""
    assert isinstance(client, KingdeeClient) and client.auth_mode == "signature"
    return client.auth.headers(client.service_path(QUERY_SERVICE))["X-Kd-Signature"]  # type: ignore[union-attr]


def _kingdee_read(client: SystemClient, kind: str, start: datetime, end: datetime) -> Iterator[RawRecord]:
    mapping = load_mapping(default_mapping_path("kingdee"))
    form = mapping.forms[kind]
    assert isinstance(client, KingdeeClient)
    return client.iter_bills(
        kind, mapping.field_keys(kind), form.date_field or "", start, end, form.id_field or "FID"
    )


def _kingdee_served(dataset: Dataset, kind: str) -> Served:
    date_key = KINGDEE_FORMS[kind]
    return [  # the twin (and the client's order) is by FID
        (datetime.strptime(row[date_key], KINGDEE_FORMAT).replace(tzinfo=SHANGHAI), str(row["FID"]))
        for row in form_rows(dataset)[kind]
    ]


def _finance_doc_of(dataset: Dataset, raw: RawRecord) -> Bill | Payment:
    docs = dataset.bills if raw.kind == "ER_ExpReimbursement" else dataset.payments
    return next(d for d in docs if str(d.doc_id) == raw.source_id)


def _query_error(message: str, field: str | None = None, msg_code: int = 0) -> list[Any]:
    status = {
        "ErrorCode": 500,
        "IsSuccess": False,
        "Errors": [{"FieldName": field, "Message": message, "DIndex": 0}],
        "SuccessEntitys": [],
        "SuccessMessages": [],
        "MsgCode": msg_code,
    }
    return [[{"Result": {"ResponseStatus": status}}]]


KINGDEE = SystemUnderTest(
    name="kingdee",
    twin=KINGDEE_TWIN,
    kinds=tuple(KINGDEE_FORMS),
    open=_kingdee_open,
    fetch_token=lambda client: ";".join(sorted(dict(client.login().value).values())),  # type: ignore[attr-defined]
    read=_kingdee_read,
    served=_kingdee_served,
    page_size=7,
    token_call="LoginByAppSecret",
    list_call="ExecuteBillQuery",
    list_path="ExecuteBillQuery",
    # §7.2: "会话信息已丢失，请重新登录" (ErrorCode 500, MsgCode 1) nested in the 2-D array
    expiry_envelopes=("session_lost",),
    use_expiry_envelope=lambda state, envelope: None,
    rate_limits=("http_429",),  # Kingdee documents no rate-limit code (§7.5)
    error_shapes=(
        ErrorShape(
            "ResponseStatus in the 2-D array",
            "ExecuteBillQuery",
            _query_error("元数据中标识为FNoSuchField的字段不存在", "FieldKeys"),
            SourceError,
            "ExecuteBillQuery",
            "FNoSuchField",
        ),
        ErrorShape(
            "no permission",
            "ExecuteBillQuery",
            _query_error("没有该功能的操作权限"),
            AuthError,
            "ExecuteBillQuery",
            "权限",
        ),
        ErrorShape(
            "login refused",
            "LoginByAppSecret",
            {
                "Message": "第三方系统登录授权验证失败",
                "MessageCode": "CheckPasswordPolicy",
                "LoginResultType": 0,
                "Context": None,
                "KDSVCSessionId": None,
                "IsSuccessByAPI": False,
            },
            AuthError,
            "LoginByAppSecret",
            "LoginResultType 0",
        ),
        ErrorShape(
            "not a 2-D array",
            "ExecuteBillQuery",
            {"rows": []},
            BadResponseError,
            "ExecuteBillQuery",
            "2-D array",
        ),
        ErrorShape(
            "not JSON",
            "ExecuteBillQuery",
            b"[[100001, ",
            BadResponseError,
            "ExecuteBillQuery",
            "not JSON",
        ),
        ErrorShape(
            "HTTP 503",
            "ExecuteBillQuery",
            b"service unavailable",
            TransientError,
            "ExecuteBillQuery",
            "503",
            status=503,
        ),
    ),
    month_item=_finance_doc_of,
    # ExecuteBillQuery has no total: an empty page IS the end (source-systems.md §7.3), so no
    # endless empty pages can exist; a server that does not advance is ignored_start_row.
    hostile=("invalid_utf8", "deep_json"),
)


@dataclass
class Running:
    """A system under test and its twin, running over HTTP."""

    sut: SystemUnderTest
    handle: SandboxHandle
    dataset: Dataset

    @property
    def url(self) -> str:
        return self.handle.url(self.sut.twin.name)

    @property
    def state(self) -> TwinState:
        return self.handle.state(self.sut.twin.name)

    def __str__(self) -> str:
        return self.sut.name


def in_window(served: Served, start: datetime, end: datetime) -> list[str]:
    return [source_id for moment, source_id in served if start <= moment < end]


def period_window(dataset: Dataset) -> tuple[datetime, datetime]:
    year, month = map(int, dataset.period.split("-"))
    start = datetime(year, month, 1, tzinfo=SHANGHAI)
    return start, datetime(year + month // 12, month % 12 + 1, 1, tzinfo=SHANGHAI)


# The same twin spoken to as the official SDK does (issue #18): no login, every request signed
# (real-clients.md §1.8). No session, so no expiry envelope; a refused signature is answered
# "会话信息已丢失" (§7.2 gotcha) and must be an AuthError on the query, never a re-login.
KINGDEE_SIGNATURE = dataclasses.replace(
    KINGDEE,
    variant="signature",
    open=_kingdee_signed_open,
    fetch_token=_kingdee_signature,
    token_call="ExecuteBillQuery",
    expiry_envelopes=(),
    error_shapes=(
        *(shape for shape in KINGDEE.error_shapes if shape.path_contains != "LoginByAppSecret"),
        ErrorShape(
            "signature refused",
            "ExecuteBillQuery",
            _query_error("会话信息已丢失，请重新登录", msg_code=1),
            AuthError,
            "ExecuteBillQuery",
            "signature refused",
        ),
    ),
)
