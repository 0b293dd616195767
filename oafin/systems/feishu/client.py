"""Feishu (飞书) approval v4: list instance codes by approval code, get each instance.

Shapes from source-systems.md §3 and the real production log in real-clients.md §2.2 (newer):
the tenant token from ``POST /open-apis/auth/v3/tenant_access_token/internal`` goes in
``Authorization: Bearer``; envelopes are ``{code, msg, data}`` (code 0 = OK, ``msg`` may be ``""``).
Every body is decoded with ``parse_json`` (non-integer numbers as ``Decimal``); the instance's
``form`` stays the JSON string Feishu sent and the mapping decodes it the same way, so an amount
never passes through a float.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx

from oafin.connectors.auth import Credential, TokenAuth
from oafin.connectors.errors import (
    AuthError,
    BadRecordError,
    BadResponseError,
    RateLimitedError,
    SourceError,
    TokenExpiredError,
    TransientError,
    unreadable_payload,
)
from oafin.connectors.http import DEFAULT_TIMEOUTS, ApiClient, Call, SystemClient, Timeouts, parse_json
from oafin.connectors.limits import DEFAULT_RETRY, Acquire, RateLimiter, RetryPolicy
from oafin.connectors.ordered import ordered_map
from oafin.connectors.paging import PageTokenPager, PagingError, unique_ids
from oafin.records import RawRecord
from oafin.systems.feishu import REQUESTS_PER_SECOND

logger = logging.getLogger(__name__)

SYSTEM: Final = "feishu"
DEFAULT_BASE_URL: Final = "https://open.feishu.cn"  # Lark international: https://open.larksuite.com [U]
TOKEN_PATH: Final = "/open-apis/auth/v3/tenant_access_token/internal"
INSTANCES_PATH: Final = "/open-apis/approval/v4/instances"
MAX_PAGE_SIZE: Final = 100  # 1..100 (real-clients.md §2.2; the SDK example uses 100)
# Instance get: 1000/min and 50/s (source-systems.md §3.3): the per-minute limit binds.
FEISHU_REQUESTS_PER_SECOND: Final = REQUESTS_PER_SECOND
# The token's life counts as over this many seconds before ``expire``: lark-oapi caches it until
# 10 minutes before (real-clients.md §1.4; the Go SDK 3 minutes, source-systems.md §3.1). Asked
# with less than 30 minutes left, Feishu hands out a new token (§3.1), so the refresh gets one.
TOKEN_REFRESH_MARGIN: Final = 600.0
# Token refusals in the SDK: tenant token invalid, access token invalid, app token invalid (§3.1).
TOKEN_EXPIRED_CODES: Final = frozenset({99991663, 99991671, 99991664})
RATE_LIMIT_CODES: Final = frozenset({99991400})  # "request trigger frequency limit" (§3.3 [C])
BUSY_CODES: Final = frozenset({1395001})  # "server error, retry later" (§3.3 [C])

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch, exactly (no float), of an aware datetime."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: pass a timezone-aware one")
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _code(call: Call, body: Any) -> int:
    if not isinstance(body, dict):
        raise call.error(BadResponseError, f"expected a JSON object, got {type(body).__name__}")
    if "code" not in body:
        raise call.error(BadResponseError, "response has no code")
    try:
        return int(body["code"])
    except (TypeError, ValueError):
        raise call.error(BadResponseError, f"code is not a number: {body['code']!r}") from None


def check_envelope(call: Call, body: Any, response: httpx.Response) -> None:
    """Classify a ``{code, msg, data}`` envelope: code 0 is success (source-systems.md §3.3)."""
    code = _code(call, body)
    if code == 0:
        return
    reason = f"code {code}: {body.get('msg', '')}"
    if code in TOKEN_EXPIRED_CODES:
        # threads sharing a token may meet the answer again while one of them refreshes it
        raise call.error(TokenExpiredError, reason, retryable=True)
    if code in RATE_LIMIT_CODES:
        raise call.error(RateLimitedError, reason)
    if code in BUSY_CODES:
        raise call.error(TransientError, reason)
    raise call.error(SourceError, reason)


def check_token_envelope(call: Call, body: Any, response: httpx.Response) -> None:
    """The token call: a refusal means bad credentials, which never heal; a throttle may be waited out."""
    code = _code(call, body)
    if code in RATE_LIMIT_CODES or code in BUSY_CODES:
        check_envelope(call, body, response)
    if code != 0:
        raise call.error(AuthError, f"code {code}: {body.get('msg', '')}")
    if not body.get("tenant_access_token"):
        raise call.error(BadResponseError, "no tenant_access_token in the response", retryable=False)


class FeishuClient(SystemClient):
    """Reads approval instances from Feishu's approval v4 API.

    >>> with FeishuClient(url, app_id, app_secret) as fs:  # doctest: +SKIP
    ...     for record in fs.iter_instances(approval_code, start, end): ...

    ``workers`` threads fetch instances concurrently; records still come out in list order.
    """

    def __init__(
        self,
        base_url: str,
        app_id: str,
        app_secret: str,
        *,
        page_size: int = MAX_PAGE_SIZE,
        http: httpx.Client | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        limiter: Acquire | None = None,
        workers: int = 4,
        token_refresh_margin: float = TOKEN_REFRESH_MARGIN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE} (real-clients.md §2.2)")
        self.app_id = app_id
        self._app_secret = app_secret
        self.page_size = page_size
        self.workers = max(1, workers)
        self.auth = TokenAuth(
            self._fetch_token,
            place="header",
            name="Authorization",
            prefix="Bearer ",
            refresh_margin=token_refresh_margin,
            clock=clock,
        )
        self.api = ApiClient(
            SYSTEM,
            base_url,
            auth=self.auth,
            http=http,
            timeouts=timeouts,
            retry=retry,
            limiter=limiter or RateLimiter(FEISHU_REQUESTS_PER_SECOND),
            secrets=[app_secret],
            check=check_envelope,
        )

    def _fetch_token(self) -> Credential:
        # source-systems.md §3.1: {"code":0,"msg":"ok","tenant_access_token":"t-...","expire":7200}
        body = self.api.request(
            Call(SYSTEM, "tenant_access_token/internal"),
            "POST",
            TOKEN_PATH,
            json={"app_id": self.app_id, "app_secret": self._app_secret},
            authed=False,
            check=check_token_envelope,
        )
        expire = body.get("expire")
        lifetime = float(expire) if isinstance(expire, int | float) or str(expire).isdigit() else 7200.0
        return Credential(str(body["tenant_access_token"]), lifetime)

    def iter_instance_codes(self, approval_code: str, start: datetime, end: datetime) -> Iterator[str]:
        """Codes of the instances of ``approval_code`` created in ``[start, end)``, each once.

        source-systems.md §3.2: GET /open-apis/approval/v4/instances with ms **string** times,
        ``page_token``/``has_more``; the last page has ``page_token: ""`` (real-clients.md §2.2).
        Whether ``end_time`` is inclusive is undocumented [U]: ``end - 1 ms`` makes the window
        half-open either way.
        """
        start_ms, end_ms = epoch_ms(start), epoch_ms(end)
        if end_ms <= start_ms:
            return

        def fetch(paging: dict[str, Any]) -> Any:
            token = paging.get("page_token")
            call = Call(SYSTEM, "instances/list", f"approval_code={approval_code}, page_token={token or ''}")
            params = {
                "approval_code": approval_code,
                "start_time": str(start_ms),
                "end_time": str(end_ms - 1),
                **{k: str(v) for k, v in paging.items()},
            }
            body = self.api.request(call, "GET", INSTANCES_PATH, params=params)
            data = body.get("data")
            if not isinstance(data, dict) or not isinstance(data.get("instance_code_list", []), list):
                raise call.error(
                    BadResponseError, "no data.instance_code_list in the response", retryable=False
                )
            return data

        pager = PageTokenPager(
            items=lambda data: data.get("instance_code_list"),
            next_token=lambda data: data.get("page_token"),
            has_more=lambda data: bool(data.get("has_more")),
            token_param="page_token",
            size_param="page_size",
            size=self.page_size,
        )
        try:
            yield from unique_ids(pager.pages(fetch))
        except PagingError as exc:
            call = Call(SYSTEM, "instances/list", f"approval_code={approval_code}")
            raise call.error(BadResponseError, str(exc), retryable=False) from None

    def get_instance(self, instance_code: str) -> dict[str, Any]:
        """The instance's ``data`` object (source-systems.md §3.3), ``instance_code`` set."""
        call = Call(SYSTEM, "instances/get", f"instance_id={instance_code}")
        body = self.api.request(call, "GET", f"{INSTANCES_PATH}/{instance_code}")
        data = body.get("data")
        if not isinstance(data, dict):
            raise call.error(BadResponseError, "no data object in the response", retryable=False)
        return {**data, "instance_code": data.get("instance_code") or instance_code}

    def _read_instance(self, instance_code: str) -> dict[str, Any]:
        """``get_instance``, or for a record that cannot be read, what stands for it (quarantined later)."""
        try:
            return self.get_instance(instance_code)
        except BadRecordError as exc:
            logger.warning("%s: landed as unreadable, to be quarantined", exc)
            return unreadable_payload(str(exc))

    def iter_instances(self, approval_code: str, start: datetime, end: datetime) -> Iterator[RawRecord]:
        """Every instance of ``approval_code`` created in ``[start, end)``, in list order."""
        for code, instance in self._details(self.iter_instance_codes(approval_code, start, end)):
            yield RawRecord(system=SYSTEM, kind=approval_code, source_id=code, payload=instance)

    def _details(self, codes: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        yield from ordered_map(self._read_instance, codes, self.workers, "feishu-get")

    # --- write-back ---------------------------------------------------------------------------
    # A write is sent once per call (ApiClient.sending_once): a timeout or 5xx after sending may
    # have landed, so the caller's ledger looks for the comment before sending again.

    def _writer(self) -> ApiClient:
        if getattr(self, "_write_api", None) is None:
            self._write_api = self.api.sending_once()
        return self._write_api

    def add_comment(self, instance_code: str, text: str, user_id: str) -> dict[str, Any]:
        """Comment on an instance: ``POST /open-apis/approval/v4/instances/:instance_id/comments``
        (source-systems.md §3.3 [S]); ``content`` is a JSON string ``{"text": ...}`` and the author
        goes in the ``user_id`` query parameter, as lark-oapi's ``instance_comment.create`` sends."""
        call = Call(SYSTEM, "instances/comments", f"instance_id={instance_code}")
        id_type = "open_id" if user_id.startswith("ou_") else "user_id"
        content = json.dumps({"text": text, "files": []}, ensure_ascii=False)
        return self._writer().request(
            call,
            "POST",
            f"{INSTANCES_PATH}/{instance_code}/comments",
            params={"user_id_type": id_type, "user_id": user_id},
            json={"content": content},
        )

    def create_instance(self, body: dict[str, Any]) -> str:
        """Create an approval instance: ``POST /open-apis/approval/v4/instances`` (real-clients.md
        §4.3 [S]); returns ``data.instance_code``. Sent once: the create call is a write."""
        call = Call(SYSTEM, "instances/create", f"approval_code={body.get('approval_code')}")
        answer = self._writer().request(call, "POST", INSTANCES_PATH, json=body)
        data = answer.get("data")
        if not isinstance(data, dict) or not data.get("instance_code"):
            raise call.error(BadResponseError, "no data.instance_code in the response", retryable=False)
        return str(data["instance_code"])

    def find_comment(self, instance_code: str, marker: str) -> dict[str, Any] | None:
        """The instance's comment containing ``marker``, or None (``comment_list`` of instance get)."""
        for comment in self.get_instance(instance_code).get("comment_list") or []:
            if isinstance(comment, dict) and marker in str(comment.get("comment") or ""):
                return dict(comment)
        return None


def decode_form(form: Any) -> list[Any]:
    """An instance's ``form`` (a JSON string, §3.3) decoded as the mapping does: numbers exact."""
    value = parse_json(form) if isinstance(form, str) else form
    if not isinstance(value, list):
        raise ValueError(f"form is not a JSON list of widgets: {str(form)[:80]!r}")
    return value
