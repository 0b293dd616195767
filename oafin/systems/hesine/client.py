"""Hesine/Ekuaibao (合思/易快报) open API: documents (单据) by type, live and deleted, windowed on updateTime.

Shapes from source-systems.md §6 and the corrections in real-clients.md §2.5:

- token: ``POST /api/openapi/v1/auth/getAccessToken`` with a JSON body (§6.1), 2 h; before it
  expires it is renewed with ``/api/openapi/v2/auth/refreshToken`` (an expired one cannot be, so
  then a new one is fetched); it travels as the ``accessToken`` query parameter;
- ``getApplyList`` pages by ``start``/``count`` (≤ 100; more is HTTP 412) and answers the
  ``count`` total, so the walk stops at the total, never asking past the end (412 "…不存在");
- incremental on ``updateTime`` (it changes on every approval or edit, §6.3): the list is asked
  ``orderBy=updateTime`` from ``startDate`` one overlap earlier than the window (the API takes
  whole seconds), and oafin keeps the documents whose ``updateTime`` lies in ``[start, end)``;
- live and deleted documents are asked for separately (``active=true``, then ``active=false``,
  §6.2), and a deleted one is landed with ``active: false``, so the mapping reads it as deleted
  instead of the run seeing it vanish;
- errors are HTTP 400/412 with ``{errorCode, errorMessage, errorDetails}`` and 403 for a refused
  token or credentials (real-clients.md §2.5); some writes answer 204 with no body.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import httpx

from oafin.connectors.auth import Credential, TokenAuth
from oafin.connectors.errors import (
    AuthError,
    BadResponseError,
    SourceError,
    TokenExpiredError,
)
from oafin.connectors.http import DEFAULT_TIMEOUTS, ApiClient, Call, SystemClient, Timeouts
from oafin.connectors.limits import (
    DEFAULT_RETRY,
    HESINE_REQUESTS_PER_SECOND,
    Acquire,
    RateLimiter,
    RetryPolicy,
)
from oafin.connectors.paging import OffsetLimitPager, PagingError
from oafin.records import RawRecord

SYSTEM: Final = "hesine"
DEFAULT_BASE_URL: Final = "https://app.ekuaibao.com"  # 合思独立版 (§6.1); other platforms other hosts
MAX_COUNT: Final = 100  # getApplyList "count" 1-100 (§6.2; 412 past it, real-clients.md §2.5)
SHANGHAI: Final = ZoneInfo("Asia/Shanghai")
DATE_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
# startDate is asked this much before the window: the API takes whole seconds, and an updateTime
# written while a page was read must not fall between two runs' windows.
DEFAULT_OVERLAP: Final = timedelta(minutes=5)
REFRESH_POWER_CODE: Final = "219904"  # refresh-auth.md (§6.1)
# Approvals: at most 10 flowIds a call, calls at least a minute apart (§6.5).
MAX_APPROVE_IDS: Final = 10
APPROVE_SPACING_SECONDS: Final = 60.0
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: pass a timezone-aware one")
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def china_time(moment: datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in China time, as ``startDate``/``endDate`` are written (§6.2)."""
    return moment.astimezone(SHANGHAI).strftime(DATE_FORMAT)


def _message(body: Any) -> str:
    if isinstance(body, dict):
        return (
            f"errorCode {body.get('errorCode')}: {body.get('errorMessage') or body.get('msg') or ''}".strip()
        )
    return str(body)[:200]


def check_body(call: Call, body: Any, response: httpx.Response) -> None:
    """Classify an answer: a 4xx body ``{errorCode, errorMessage, errorDetails}`` (real-clients.md §2.5)."""
    status = response.status_code
    if status < 400:
        if body is not None and not isinstance(body, dict):
            raise call.error(BadResponseError, f"expected a JSON object, got {type(body).__name__}")
        return
    reason = f"HTTP {status}, {_message(body)}"
    if status in (401, 403):
        text = _message(body)
        if "accessToken" in text:  # a dead token: fetch another and repeat, once
            raise call.error(TokenExpiredError, reason, retryable="过期" in text)
        raise call.error(AuthError, reason)
    raise call.error(SourceError, reason)


def check_token_body(call: Call, body: Any, response: httpx.Response) -> None:
    """The token calls: any refusal is the credentials' (never healed by retrying)."""
    if response.status_code >= 400:
        raise call.error(AuthError, f"HTTP {response.status_code}, {_message(body)}")
    value = body.get("value") if isinstance(body, dict) else None
    if not isinstance(value, dict) or not value.get("accessToken"):
        raise call.error(BadResponseError, "no value.accessToken in the response", retryable=False)


class HesineClient(SystemClient):
    """Reads documents from Hesine's open API; writes voucher numbers and comments back."""

    def __init__(
        self,
        base_url: str,
        app_key: str,
        app_security: str,
        *,
        page_size: int = MAX_COUNT,
        overlap: timedelta = DEFAULT_OVERLAP,
        http: httpx.Client | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        limiter: Acquire | None = None,
        token_refresh_margin: float = 300.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 1 <= page_size <= MAX_COUNT:
            raise ValueError(f"page_size must be 1..{MAX_COUNT} (source-systems.md §6.2)")
        self.app_key = app_key
        self._app_security = app_security
        self.page_size = page_size
        self.overlap = overlap
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens: dict[str, Any] | None = None  # the last getAccessToken/refreshToken value
        self._last_approve = float("-inf")
        self.auth = TokenAuth(
            self._fetch_token, place="query", name="accessToken", refresh_margin=token_refresh_margin
        )
        self.api = ApiClient(
            SYSTEM,
            base_url,
            auth=self.auth,
            http=http,
            timeouts=timeouts,
            retry=retry,
            limiter=limiter or RateLimiter(HESINE_REQUESTS_PER_SECOND),
            secrets=[app_security],
            check=check_body,
        )

    # --- token ------------------------------------------------------------------------------

    def _credential(self, value: dict[str, Any]) -> Credential:
        self._tokens = value
        self.api.redact.add(str(value.get("refreshToken") or ""))
        expire = value.get("expireTime")
        try:
            lifetime = max(0.0, int(expire) / 1000 - self._clock()) if expire is not None else 7200.0
        except (TypeError, ValueError):
            lifetime = 7200.0
        return Credential(str(value["accessToken"]), lifetime)

    def _fetch_token(self) -> Credential:
        """A token: the current one renewed while it still lives (§6.1), else a new one."""
        with self._lock:
            current = self._tokens
            if current and int(current.get("expireTime") or 0) / 1000 > self._clock() + 1:
                try:
                    return self._refresh(current)
                except AuthError:
                    pass  # refused (revoked, or expired meanwhile): fetch a new one below
            return self._new_token()

    def _new_token(self) -> Credential:
        body = self.api.request(
            Call(SYSTEM, "auth/getAccessToken"),
            "POST",
            "/api/openapi/v1/auth/getAccessToken",
            json={"appKey": self.app_key, "appSecurity": self._app_security},  # a JSON body (§6.1)
            authed=False,
            check=check_token_body,
        )
        return self._credential(body["value"])

    def _refresh(self, current: dict[str, Any]) -> Credential:
        body = self.api.request(
            Call(SYSTEM, "auth/refreshToken"),
            "POST",
            "/api/openapi/v2/auth/refreshToken",
            params={
                "accessToken": current["accessToken"],
                "refreshToken": current.get("refreshToken") or "",
                "powerCode": REFRESH_POWER_CODE,
            },
            authed=False,
            check=check_token_body,
        )
        return self._credential(body["value"])

    # --- reading ----------------------------------------------------------------------------

    def iter_list(self, doc_type: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every document ``getApplyList`` answers for ``params``, paged by ``start``/``count``."""

        def fetch(paging: dict[str, Any]) -> Any:
            call = Call(
                SYSTEM,
                "docs/getApplyList",
                f"type={doc_type}, active={params.get('active')}, start={paging['start']}",
            )
            body = self.api.request(
                call,
                "GET",
                "/api/openapi/v1.1/docs/getApplyList",
                params={"type": doc_type, **params, **paging},
            )
            if not isinstance(body.get("items"), list) or not isinstance(body.get("count"), int):
                raise call.error(BadResponseError, "no count and items list in the response", retryable=False)
            return body

        pager = OffsetLimitPager(
            items=lambda page: page["items"],
            start_param="start",
            limit_param="count",
            limit=self.page_size,
            total=lambda page: page["count"],
        )
        try:
            for page in pager.pages(fetch):
                yield from (doc for doc in page if isinstance(doc, dict))
        except PagingError as exc:
            call = Call(SYSTEM, "docs/getApplyList", f"type={doc_type}")
            raise call.error(BadResponseError, str(exc), retryable=False) from None

    def iter_documents(
        self, doc_type: str, start: datetime, end: datetime, *, states: Sequence[str] = ()
    ) -> Iterator[RawRecord]:
        """Documents of ``doc_type`` whose ``updateTime`` lies in ``[start, end)``, live ones first,
        then the deleted ones (landed with ``active: false``), each once."""
        lo, hi = epoch_ms(start), epoch_ms(end)
        if hi <= lo:
            return
        base = {
            "orderBy": "updateTime",
            "orderByType": "asc",
            "startDate": china_time(start - self.overlap),
            # whole seconds, inclusive: the second holding end's last millisecond; cut exactly below
            "endDate": china_time(end - timedelta(milliseconds=1)),
        }
        if states:
            base["state"] = ",".join(states)
        seen: set[str] = set()
        for active in ("true", "false"):
            for doc in self.iter_list(doc_type, {**base, "active": active}):
                flow = str(doc.get("id") or "")
                updated = doc.get("updateTime")
                if not flow or flow in seen or not isinstance(updated, int) or not lo <= updated < hi:
                    continue
                seen.add(flow)
                payload = dict(doc)
                if active == "false":
                    payload["active"] = False
                yield RawRecord(system=SYSTEM, kind=doc_type, source_id=flow, payload=payload)

    def get_flow(self, flow_id: str) -> dict[str, Any]:
        """One document by flowId (``flowDetails``, §6.3); a deleted one is 412 "单据已删除"."""
        call = Call(SYSTEM, "flowDetails", f"flowId={flow_id}")
        body = self.api.request(call, "GET", "/api/openapi/v1.1/flowDetails", params={"flowId": flow_id})
        value = body.get("value")
        if not isinstance(value, dict):
            raise call.error(BadResponseError, "no value object in the response", retryable=False)
        return value

    # --- write-back -------------------------------------------------------------------------
    # Sent once per call: a timeout or 5xx after sending may have landed, so the ledger checks
    # the document (get_flow) before sending again. Only a refreshed token repeats a call.

    def _writer(self) -> ApiClient:
        if getattr(self, "_write_api", None) is None:
            self._write_api = self.api.sending_once()
        return self._write_api

    def write_voucher(self, flow_id: str, voucher_no: str, created: datetime) -> Any:
        """``PUT /api/openapi/v2.1/flow/data/erpVoucher`` (§6.5): only for a ``paid`` document."""
        call = Call(SYSTEM, "flow/data/erpVoucher", f"flowId={flow_id}")
        item = {"flowId": flow_id, "voucherNo": voucher_no, "voucherCreateTime": str(epoch_ms(created))}
        return self._writer().request(
            call, "PUT", "/api/openapi/v2.1/flow/data/erpVoucher", json={"voucher": [item]}
        )

    def add_comment(self, flow_id: str, text: str, staff_id: str) -> Any:
        """``POST /api/openapi/v2.2/flow/data/comment/$<flowId>`` (§6.5); answers 204 with no body."""
        call = Call(SYSTEM, "flow/data/comment", f"flowId={flow_id}")
        return self._writer().request(
            call,
            "POST",
            f"/api/openapi/v2.2/flow/data/comment/${flow_id}",
            params={"staffId": staff_id},
            json={"params": {"comment": text}, "name": "freeflow.comment"},
        )

    def approve(self, flow_ids: Sequence[str], approver: str, action: str, comment: str = "") -> list[Any]:
        """``POST /api/openapi/v1/backlog/data/[ids]`` (§6.5): at most 10 flowIds a call, calls at
        least a minute apart; returns each call's asynchronous ``value``."""
        answers = []
        for i in range(0, len(flow_ids), MAX_APPROVE_IDS):
            chunk = list(flow_ids[i : i + MAX_APPROVE_IDS])
            wait = self._last_approve + APPROVE_SPACING_SECONDS - self._clock()
            if wait > 0:
                self._sleep(wait)
            call = Call(SYSTEM, "backlog/data", f"{len(chunk)} flowIds")
            answers.append(
                self._writer().request(
                    call,
                    "POST",
                    f"/api/openapi/v1/backlog/data/[{','.join(chunk)}]",
                    params={"messageCode": "debug", "powerCode": "TICKET_AUDIT_switch"},
                    json={"approveId": approver, "action": {"name": action, "comment": comment}},
                )
            )
            self._last_approve = self._clock()
        return answers
