"""WeCom approval (企业微信 审批): list approval numbers by template, fetch each one's detail.

Shapes from source-systems.md §2.1–2.5, corrected by real-clients.md §2.1:

- ``GET gettoken?corpid=&corpsecret=`` → ``{errcode, errmsg, access_token, expires_in}``; the token
  travels as the ``access_token`` query parameter; 40014 (invalid) and 42001 (expired) mean fetch
  a new one and repeat the call (§2.1).
- ``POST oa/getapprovalinfo``: ``starttime``/``endtime`` in Unix **seconds**, a span of at most
  31 days (longer windows are split), ``size`` ≤ 100, ``filters:[{key, value}]``, and the string
  cursor ``new_cursor`` ("" to start) → ``new_next_cursor`` ("" at the end); the legacy int
  ``cursor`` → ``next_cursor``, absent at the end (real-clients.md §2.1). Keep paging until the
  cursor ends, never stop on a short page (§2.2: visibility filtering shortens pages).
- ``POST oa/getapprovaldetail {sp_no}`` → ``{errcode, errmsg, info:{...}}`` (§2.3).
- Both calls: 600 a minute (real-clients.md §2.1), errcode 45009 when exceeded (§2.5).

The base URL ends in ``/cgi-bin`` (``https://qyapi.weixin.qq.com/cgi-bin``), as wechatpy's
``API_BASE_URL`` does (real-clients.md §1.3).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

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
from oafin.connectors.http import DEFAULT_TIMEOUTS, ApiClient, Call, SystemClient, Timeouts
from oafin.connectors.limits import (
    DEFAULT_RETRY,
    WECOM_REQUESTS_PER_SECOND,
    Acquire,
    RateLimiter,
    RetryPolicy,
)
from oafin.connectors.ordered import ordered_map
from oafin.connectors.paging import CursorPager, PagingError
from oafin.connectors.windows import split_window
from oafin.records import RawRecord

logger = logging.getLogger(__name__)

SYSTEM = "wecom"
DEFAULT_BASE_URL = "https://qyapi.weixin.qq.com/cgi-bin"
MAX_PAGE_SIZE = 100  # §2.2: size default 100, maximum 100
MAX_WINDOW = timedelta(days=31)  # §2.2: "起始时间跨度不能超过31天"
INFO_CALL = "oa/getapprovalinfo"
DETAIL_CALL = "oa/getapprovaldetail"
TEMPLATE_CALL = "oa/gettemplatedetail"
APPLY_CALL = "oa/applyevent"
CursorStyle = Literal["new_cursor", "cursor"]

# §2.1, §2.5: 40014 invalid access_token, 42001 access_token expired → a new token, the call again.
TOKEN_EXPIRED_CODES = frozenset({40014, 42001})
# §2.5: 45009 over the call limit, 45033 too many concurrent calls.
RATE_LIMIT_CODES = frozenset({45009, 45033})
BUSY_CODES = frozenset({-1})  # "系统繁忙"
# real-clients.md §2.1: the approval API's own errors, with what they mean for the operator.
APPROVAL_ERRORS = {
    301025: "bad request parameters (a window in ms or over 31 days, an unknown filter or template)",
    301026: "WeCom failed to pull the approvals internally; try again",
    301055: "no permission, or the applicant is outside the app's visible range",
    301056: "the approval app is disabled",
    301057: "approval API error",
}
PERMISSION_CODES = frozenset({301055, 301056, 48002, 60011})
TRANSIENT_APPROVAL_CODES = frozenset({301026})

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_s(moment: datetime) -> float:
    """Seconds since the epoch of an aware datetime."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: pass a timezone-aware one")
    return (moment - _EPOCH) / timedelta(seconds=1)


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def check_envelope(call: Call, body: Any, response: httpx.Response) -> None:
    """Classify a WeCom envelope ``{errcode, errmsg}``: 0 is success (§2.5). Errors come with HTTP 200."""
    if not isinstance(body, dict):
        raise call.error(BadResponseError, f"expected a JSON object, got {type(body).__name__}")
    if "errcode" not in body:
        raise call.error(BadResponseError, "response has no errcode")
    try:
        code = int(body["errcode"])
    except (TypeError, ValueError):
        raise call.error(BadResponseError, f"errcode is not a number: {body['errcode']!r}") from None
    if code == 0:
        return
    reason = f"errcode {code}: {body.get('errmsg', '')}"
    if code in APPROVAL_ERRORS:
        reason += f" ({APPROVAL_ERRORS[code]})"
    if code in TOKEN_EXPIRED_CODES:
        # 42001 may come again when threads sharing the token race a refresh
        raise call.error(TokenExpiredError, reason, retryable=code == 42001)
    if code in RATE_LIMIT_CODES:
        raise call.error(RateLimitedError, reason)
    if code in BUSY_CODES or code in TRANSIENT_APPROVAL_CODES:
        raise call.error(TransientError, reason)
    if code in PERMISSION_CODES:
        raise call.error(AuthError, reason)
    raise call.error(SourceError, reason)


def check_token_envelope(call: Call, body: Any, response: httpx.Response) -> None:
    """``gettoken``: a refusal (40013 corpid, 40001 secret) means bad credentials, which never heal."""
    try:
        check_envelope(call, body, response)
    except (SourceError, TokenExpiredError) as exc:
        raise call.error(AuthError, exc.detail) from None
    if not body.get("access_token"):
        raise call.error(BadResponseError, "no access_token in the response", retryable=False)


class WeComClient(SystemClient):
    """Reads approvals of one template from WeCom.

    >>> with WeComClient(url, corp_id, corp_secret) as wc:  # doctest: +SKIP
    ...     for record in wc.iter_approvals(template_id, start, end): ...

    ``workers`` threads fetch details concurrently; records still come out in the order
    ``getapprovalinfo`` listed them. ``cursor_style`` ``"cursor"`` pages with the legacy int cursor.
    """

    def __init__(
        self,
        base_url: str,
        corp_id: str,
        corp_secret: str,
        *,
        page_size: int = MAX_PAGE_SIZE,
        cursor_style: CursorStyle = "new_cursor",
        http: httpx.Client | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        limiter: Acquire | None = None,
        workers: int = 4,
        token_refresh_margin: float = 300.0,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE} (source-systems.md §2.2)")
        if cursor_style not in ("new_cursor", "cursor"):
            raise ValueError("cursor_style must be 'new_cursor' or 'cursor'")
        self.corp_id = corp_id
        self._corp_secret = corp_secret
        self.page_size = page_size
        self.cursor_style = cursor_style
        self.workers = max(1, workers)
        self.auth = TokenAuth(
            self._fetch_token, place="query", name="access_token", refresh_margin=token_refresh_margin
        )
        self.api = ApiClient(
            SYSTEM,
            base_url,
            auth=self.auth,
            http=http,
            timeouts=timeouts,
            retry=retry,
            limiter=limiter or RateLimiter(WECOM_REQUESTS_PER_SECOND),
            secrets=[corp_secret],
            check=check_envelope,
        )

    def _fetch_token(self) -> Credential:
        # source-systems.md §2.1: GET gettoken?corpid=&corpsecret= -> {access_token, expires_in}
        body = self.api.request(
            Call(SYSTEM, "gettoken"),
            "GET",
            "gettoken",
            params={"corpid": self.corp_id, "corpsecret": self._corp_secret},
            authed=False,
            check=check_token_envelope,
        )
        expires_in = body.get("expires_in")
        return Credential(str(body["access_token"]), float(expires_in) if expires_in is not None else 7200.0)

    def iter_sp_nos(
        self, template_id: str, start: datetime, end: datetime, *, creator: str | None = None
    ) -> Iterator[str]:
        """Approval numbers of ``template_id`` applied for in ``[start, end)``, each once.

        The window is cut into spans of at most 31 days (§2.2) and sent in whole seconds,
        ``endtime`` as the window's (exclusive) end: WeCom refuses ``endtime`` equal to
        ``starttime`` (§2.2), and whether it counts ``endtime`` in is undocumented [U], so an
        approval applied for exactly at the end may be listed here too: ``iter_approvals`` drops it
        by its ``apply_time``, so adjacent windows never share a record.
        """
        seen: set[str] = set()
        for lo, hi in split_window(start, end, MAX_WINDOW):
            first, last = math.ceil(epoch_s(lo)), math.ceil(epoch_s(hi))
            if last <= first:
                continue
            for sp_no in self._list(template_id, first, last, creator):
                if sp_no not in seen:
                    seen.add(sp_no)
                    yield sp_no

    def _list(self, template_id: str, first: int, last: int, creator: str | None = None) -> Iterator[str]:
        new = self.cursor_style == "new_cursor"
        filters = [{"key": "template_id", "value": template_id}]
        if creator:
            filters.append({"key": "creator", "value": creator})  # §2.2 filter keys

        def fetch(paging: dict[str, Any]) -> Any:
            cursor = paging["new_cursor" if new else "cursor"]
            call = Call(
                SYSTEM, INFO_CALL, f"template_id={template_id}, starttime={first}, cursor={cursor or 0}"
            )
            body = self.api.request(
                call,
                "POST",
                INFO_CALL,
                json={"starttime": first, "endtime": last, **paging, "filters": filters},
            )
            if not isinstance(body.get("sp_no_list", []), list):
                raise call.error(BadResponseError, "sp_no_list is not a list", retryable=False)
            return body

        if new:
            # real-clients.md §2.1: new_next_cursor is "" at the end
            pager = CursorPager(
                items=lambda page: page.get("sp_no_list"),
                next_cursor=lambda page: page.get("new_next_cursor"),
                cursor_param="new_cursor",
                start="",
                size=self.page_size,
            )
        else:
            # real-clients.md §2.1: "当返回结果没有该字段时表示审批单已经拉取完": next_cursor absent = done
            pager = CursorPager(
                items=lambda page: page.get("sp_no_list"),
                next_cursor=lambda page: page.get("next_cursor"),
                cursor_param="cursor",
                start=0,
                size=self.page_size,
            )
        try:
            for sp_nos in pager.pages(fetch):
                for sp_no in sp_nos:
                    yield str(sp_no)
        except PagingError as exc:
            call = Call(SYSTEM, INFO_CALL, f"template_id={template_id}")
            raise call.error(BadResponseError, str(exc), retryable=False) from None

    def get_detail(self, sp_no: str) -> dict[str, Any]:
        """The ``info`` object of one approval (source-systems.md §2.3)."""
        call = Call(SYSTEM, DETAIL_CALL, f"sp_no={sp_no}")
        body = self.api.request(call, "POST", DETAIL_CALL, json={"sp_no": sp_no})
        info = body.get("info")
        if not isinstance(info, dict):
            raise call.error(BadResponseError, "no info object in the response", retryable=False)
        return info

    # --- approval forms oafin submits (issue #17, approvals.py) -------------------------------
    def get_template(self, template_id: str) -> dict[str, Any]:
        """``POST oa/gettemplatedetail {template_id}`` (wechatpy ``OA.get_template_detail``,
        real-clients.md §1.3): the template's controls, whose ids a form must carry."""
        call = Call(SYSTEM, TEMPLATE_CALL, f"template_id={template_id}")
        body = self.api.request(call, "POST", TEMPLATE_CALL, json={"template_id": template_id})
        if not isinstance(body.get("template_content"), dict):
            raise call.error(BadResponseError, "no template_content in the response", retryable=False)
        return body

    def apply_event(self, body: dict[str, Any]) -> str:
        """Submit an approval form: ``POST oa/applyevent`` (real-clients.md §4.2); returns ``sp_no``.
        Sent once (a write without an idempotency key): a lost answer is found, never re-sent."""
        if getattr(self, "_write_api", None) is None:
            self._write_api = self.api.sending_once()
        call = Call(SYSTEM, APPLY_CALL, f"template_id={body.get('template_id')}")
        answer = self._write_api.request(call, "POST", APPLY_CALL, json=body)
        if not answer.get("sp_no"):
            raise call.error(BadResponseError, "no sp_no in the response", retryable=False)
        return str(answer["sp_no"])

    def _read_detail(self, sp_no: str) -> dict[str, Any]:
        """``get_detail``, or for a record that cannot be read, what stands for it (quarantined later)."""
        try:
            return self.get_detail(sp_no)
        except BadRecordError as exc:
            logger.warning("%s: landed as unreadable, to be quarantined", exc)
            return unreadable_payload(str(exc))

    def iter_approvals(self, template_id: str, start: datetime, end: datetime) -> Iterator[RawRecord]:
        """Every approval of ``template_id`` applied for in ``[start, end)``, in listing order.

        An approval the listing gave whose ``apply_time`` (Unix seconds) lies outside the window
        is the boundary case of ``iter_sp_nos``: dropped here, logged at debug level.
        """
        first, stop = math.ceil(epoch_s(start)), math.ceil(epoch_s(end))
        for sp_no, info in self._details(self.iter_sp_nos(template_id, start, end)):
            applied = _int_or_none(info.get("apply_time"))
            if applied is not None and not first <= applied < stop:
                logger.debug(
                    "wecom %s: applied at %s, outside [%s, %s): not in this window",
                    sp_no,
                    applied,
                    first,
                    stop,
                )
                continue
            yield RawRecord(system=SYSTEM, kind=template_id, source_id=sp_no, payload=info)

    def _details(self, sp_nos: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        yield from ordered_map(self._read_detail, sp_nos, self.workers, "wecom-detail")
