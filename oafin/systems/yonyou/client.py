"""Yonyou YonBIP (用友 YonBIP / YonSuite) OpenAPI: self-built-app token, ``queryVouchers`` paging.

Shapes from source-systems.md §8.1 and real-clients.md §1.9, §2.6 (newer; they win):

- token: ``GET {token_url}/open-auth/selfAppAuth/getAccessToken`` (or ``…/selfAppAuth/base/v1/
  getAccessToken``, §2.6) with ``appKey``, ``timestamp`` (ms) and ``signature =
  base64(HMAC-SHA256(key=appSecret, msg="appKey"+appKey+"timestamp"+timestamp))``, URL-encoded
  once (§2.6: double-encoding gives "签名不正确"); success is ``code == "00000"`` with
  ``data.access_token``/``data.expire`` (some versions nest it as ``data.data``, §8.1);
- business calls: ``POST {gateway}{path}?access_token=`` with a JSON body; the envelope is
  ``{"code": "200", "message", "data"}``;
- ``queryVouchers``: ``pager{pageIndex from 1, pageSize}``, ``accbookCode`` (required),
  ``periodStart``/``periodEnd`` (``yyyy-MM``; a real system returns nothing without them, §2.6),
  ``tsStart``/``tsEnd`` (``yyyy-MM-dd HH:mm:ss``, the incremental cursor, §2.6); the reply is
  ``data{pageIndex, pageSize, recordCount, recordList[{header, body}]}``; ids are 19-digit numbers
  (§2.6), kept as text here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx

from oafin.connectors.auth import Credential, TokenAuth
from oafin.connectors.errors import AuthError, BadResponseError, SourceError, TokenExpiredError
from oafin.connectors.http import DEFAULT_TIMEOUTS, ApiClient, Call, SystemClient, Timeouts
from oafin.connectors.limits import DEFAULT_RETRY, Acquire, RateLimiter, RetryPolicy
from oafin.connectors.paging import PageIndexPager, PagingError
from oafin.records import RawRecord
from oafin.standard import BUSINESS_TZ

logger = logging.getLogger(__name__)

SYSTEM = "yonyou"
# source-systems.md §8.1: the token host is …/iuap-api-auth, the gateway …/iuap-api-gateway.
AUTH_ROOT = "/iuap-api-auth"
TOKEN_PATHS = {
    "selfAppAuth": "/open-auth/selfAppAuth/getAccessToken",  # §8.1, the SDK (§1.9)
    "base/v1": "/open-auth/selfAppAuth/base/v1/getAccessToken",  # erp-mcp (§1.9, §2.6)
}
TokenPath = Literal["selfAppAuth", "base/v1"]
QUERY_VOUCHERS = "/yonbip/fi/ficloud/openapi/voucher/queryVouchers"  # §8.1
ADD_VOUCHER = "/yonbip/fi/ficloud/openapi/voucher/addVoucher"  # §8.1 write-back
TOKEN_OK = "00000"  # §2.6
CALL_OK = "200"  # §8.1
DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 1000  # §2.6: one client pages at 1000 and refuses more [U]
DEFAULT_TOKEN_LIFETIME = 7200.0  # §8.1: "有效期为2小时"
# real-clients.md §2.6: codes clients treat as a dead token [U], and message keywords.
TOKEN_EXPIRED_CODES = frozenset({"401", "403", "10004", "10005"})
_TOKEN_WORDS = ("token",)
_EXPIRED_WORDS = ("过期", "失效", "无效", "非法", "expire", "invalid")
# §8.1/§2.6: 310005 app does not exist, 310036 token from another gateway domain, 310037 API not
# authorised for this app: none heals by retrying.
AUTH_CODES = {
    "310005": "the app (appKey) does not exist",
    "310036": "the token was minted on another gateway domain than the call's: use the tenant's own "
    "token_url and gateway (source-systems.md §8.1)",
    "310037": "this API is not authorised for the app: grant it in the YonBIP open platform",
}
# §8.1: addVoucher's duplicate-voucher codes.
DUPLICATE_CODES = frozenset({"310504", "310074"})

_ZONE = ZoneInfo(BUSINESS_TZ)


class DuplicateVoucherError(SourceError):
    """addVoucher refused a voucher it already has (310504 / 310074, §8.1): the write is done."""


def signature(app_secret: str, params: dict[str, str]) -> str:
    """``base64(HMAC-SHA256(appSecret, name+value of the params sorted by name))`` (§2.6), not URL-encoded.

    The caller's HTTP library URL-encodes it once, as the SDK leaves it to ``requests`` (§1.9).
    """
    message = "".join(f"{name}{params[name]}" for name in sorted(params) if name != "signature")
    digest = hmac.new(app_secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def yonyou_time(moment: datetime) -> str:
    """An aware datetime as YonBIP's China-time ``yyyy-MM-dd HH:mm:ss`` (``tsStart``, ``maketime``)."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: pass a timezone-aware one")
    return moment.astimezone(_ZONE).strftime("%Y-%m-%d %H:%M:%S")


def period_of(moment: datetime) -> str:
    """The China-time ``yyyy-MM`` accounting period of an aware datetime."""
    return moment.astimezone(_ZONE).strftime("%Y-%m")


def months_before(period: str, months: int) -> str:
    year, month = map(int, period.split("-"))
    index = year * 12 + (month - 1) - months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def default_token_url(base_url: str) -> str:
    """``https://c2.yonyoucloud.com/iuap-api-gateway`` → ``https://c2.yonyoucloud.com/iuap-api-auth``:
    the token must come from the gateway's own domain (§8.1, error 310036)."""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}{AUTH_ROOT}"


def _code(body: dict[str, Any]) -> str:
    return str(body.get("code", "")).strip()


def _looks_expired(code: str, message: str) -> bool:
    if code in TOKEN_EXPIRED_CODES:
        return True
    text = message.lower()
    return any(w in text for w in _TOKEN_WORDS) and any(w in text for w in _EXPIRED_WORDS)


def check_envelope(call: Call, body: Any, response: httpx.Response) -> None:
    """A business call's ``{code, message, data}``: ``"200"`` is success (§8.1)."""
    if not isinstance(body, dict):
        raise call.error(BadResponseError, f"expected a JSON object, got {type(body).__name__}")
    if "code" not in body:
        raise call.error(BadResponseError, "response has no code")
    code, message = _code(body), str(body.get("message") or "")
    if code == CALL_OK:
        return
    reason = f"code {code}: {message or 'no message'}"
    if code in AUTH_CODES:
        raise call.error(AuthError, f"{reason} ({AUTH_CODES[code]})")
    if _looks_expired(code, message):
        raise call.error(TokenExpiredError, reason)
    if code in DUPLICATE_CODES:
        raise call.error(DuplicateVoucherError, reason)
    raise call.error(SourceError, reason)


def check_token(call: Call, body: Any, response: httpx.Response) -> None:
    """``getAccessToken``: only ``"00000"`` is success (the SDK accepts nothing else, §1.9); a
    refusal is bad credentials or a bad signature, which never heal."""
    if not isinstance(body, dict):
        raise call.error(BadResponseError, f"expected a JSON object, got {type(body).__name__}")
    code = _code(body)
    if code != TOKEN_OK:
        hint = AUTH_CODES.get(code, "check the appKey and appSecret")
        raise call.error(
            AuthError, f"token refused: code {code}: {body.get('message') or 'no message'} ({hint})"
        )
    if token_data(body) is None:
        raise call.error(BadResponseError, "no data.access_token in the response", retryable=False)


def token_data(body: dict[str, Any]) -> dict[str, Any] | None:
    """``data`` holding ``access_token``: at ``data`` or, in some versions, ``data.data`` (§8.1)."""
    data = body.get("data")
    if isinstance(data, dict) and not data.get("access_token") and isinstance(data.get("data"), dict):
        data = data["data"]
    if isinstance(data, dict) and data.get("access_token"):
        return data
    return None


def _text_ids(record: dict[str, Any]) -> dict[str, Any]:
    """The record with its 19-digit ids as text (§2.6: a JSON reader that goes through a double
    would lose digits); everything else as the system sent it."""
    header = record.get("header")
    if isinstance(header, dict) and header.get("id") is not None:
        record["header"] = {**header, "id": str(header["id"])}
    body = record.get("body")
    if isinstance(body, list):
        record["body"] = [
            {**line, "id": str(line["id"])} if isinstance(line, dict) and line.get("id") is not None else line
            for line in body
        ]
    return record


class YonyouClient(SystemClient):
    """Reads vouchers from YonBIP with ``queryVouchers``; writes one with ``addVoucher``.

    >>> with YonyouClient(gateway, app_key, secret, accbook_code="C01") as yy:  # doctest: +SKIP
    ...     for record in yy.iter_vouchers(start, end): ...

    ``base_url`` is the gateway (``https://c2.yonyoucloud.com/iuap-api-gateway``); ``token_url``
    the token host (default: the gateway's domain + ``/iuap-api-auth``).
    """

    def __init__(
        self,
        base_url: str,
        app_key: str,
        app_secret: str,
        *,
        accbook_code: str,
        token_url: str | None = None,
        token_path: TokenPath = "selfAppAuth",
        tenant_id: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        period_lookback_months: int = 12,
        http: httpx.Client | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        limiter: Acquire | None = None,
        token_refresh_margin: float = 300.0,
        clock: Any = time.time,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE} (real-clients.md §2.6)")
        if token_path not in TOKEN_PATHS:
            raise ValueError(f"token_path must be one of {sorted(TOKEN_PATHS)}, not {token_path!r}")
        if not accbook_code:
            raise ValueError(
                "accbook_code is required: queryVouchers reads one 账簿 (source-systems.md §8.1)"
            )
        self.app_key = app_key
        self._app_secret = app_secret
        self.accbook_code = accbook_code
        self.token_path = token_path
        self.tenant_id = tenant_id
        self.page_size = page_size
        self.period_lookback_months = period_lookback_months
        self._clock = clock
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
            limiter=limiter or RateLimiter(10.0),
            secrets=[app_secret],
            check=check_envelope,
        )
        # The token host shares the connection pool, limiter and redaction; it owns nothing.
        self.token_api = ApiClient(
            SYSTEM,
            token_url or default_token_url(base_url),
            http=self.api.http,
            retry=retry,
            limiter=self.api.limiter,
            secrets=[app_secret],
            check=check_token,
        )
        self.token_api.redact = self.api.redact

    def _fetch_token(self) -> Credential:
        timestamp = str(int(self._clock() * 1000))
        params = {"appKey": self.app_key, "timestamp": timestamp}
        params["signature"] = signature(self._app_secret, params)
        if self.tenant_id:
            params["tenantId"] = self.tenant_id
        body = self.token_api.request(
            Call(SYSTEM, "getAccessToken"), "GET", TOKEN_PATHS[self.token_path], params=params, authed=False
        )
        data = token_data(body) or {}
        token = str(data["access_token"])
        self.api.redact.add(token)
        try:
            expire = float(data.get("expire") or DEFAULT_TOKEN_LIFETIME)
        except (TypeError, ValueError):
            expire = DEFAULT_TOKEN_LIFETIME
        return Credential(token, expire)

    def _params(self) -> dict[str, str] | None:
        return {"tenantId": self.tenant_id} if self.tenant_id else None

    def query_vouchers(self, query: dict[str, Any], page_index: int, page_size: int) -> dict[str, Any]:
        """One page of ``queryVouchers``: its ``data`` (``recordCount``, ``recordList``)."""
        call = Call(SYSTEM, "queryVouchers", f"accbookCode={self.accbook_code}, pageIndex={page_index}")
        body = self.api.request(
            call,
            "POST",
            QUERY_VOUCHERS,
            params=self._params(),
            json={**query, "pager": {"pageIndex": page_index, "pageSize": page_size}},
        )
        data = body.get("data")
        if not isinstance(data, dict):
            raise call.error(BadResponseError, "no data object in the response", retryable=False)
        try:
            count = int(data.get("recordCount") or 0)
        except (TypeError, ValueError):
            raise call.error(
                BadResponseError,
                f"data.recordCount is not a number: {data.get('recordCount')!r}",
                retryable=False,
            ) from None
        records = data.get("recordList")
        if records is None and count == 0:
            data["recordList"] = []  # an empty answer may leave the list out
        elif not isinstance(records, list):
            raise call.error(
                BadResponseError, f"no data.recordList in the response (recordCount {count})", retryable=False
            )
        for record in data.get("recordList") or []:
            header = record.get("header") if isinstance(record, dict) else None
            if not isinstance(header, dict) or header.get("id") in (None, ""):
                raise call.error(BadResponseError, "a voucher without header.id", retryable=False)
        return data

    def iter_records(self, query: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every voucher the query matches, paging ``pageIndex`` from 1 to ``recordCount`` (§8.1).

        An empty page before ``recordCount`` is reached is an error naming the call, never a
        silently short read.
        """
        pager = PageIndexPager(
            items=lambda data: data.get("recordList"),
            total=lambda data: data.get("recordCount") or 0,
            size=self.page_size,
        )

        def fetch(paging: dict[str, Any]) -> dict[str, Any]:
            return self.query_vouchers(query, paging["pageIndex"], paging["pageSize"])

        call = Call(SYSTEM, "queryVouchers", f"accbookCode={self.accbook_code}")
        try:  # the pager raises on an empty page before recordCount (oafin.connectors.paging)
            for records in pager.pages(fetch):
                for record in records:
                    yield _text_ids(dict(record))
        except PagingError as exc:
            raise call.error(BadResponseError, str(exc), retryable=False) from None

    def window_query(
        self,
        start: datetime,
        end: datetime,
        accsubject_codes: Sequence[str] = (),
        voucher_type_codes: Sequence[str] = (),
    ) -> dict[str, Any]:
        """The body filtering vouchers last changed in ``[start, end)`` China time (§2.6 ``tsStart``/``tsEnd``).

        ``tsEnd`` is sent as ``end - 1 s`` (the filter is taken as inclusive at second precision), so
        adjacent windows never overlap. ``periodStart``/``periodEnd`` are required in practice (§2.6):
        from ``period_lookback_months`` before the window to the window's last period, since a
        voucher changed in the window may belong to an earlier period.
        """
        last = end - timedelta(seconds=1)
        query: dict[str, Any] = {
            "accbookCode": self.accbook_code,
            "periodStart": months_before(period_of(start), self.period_lookback_months),
            "periodEnd": period_of(last),
            "tsStart": yonyou_time(start),
            "tsEnd": yonyou_time(last),
        }
        if accsubject_codes:
            query["accsubjectCodeList"] = list(accsubject_codes)
        if voucher_type_codes:  # real-clients.md §2.6: voucherTypeCodeList ["1","2","3"]
            query["voucherTypeCodeList"] = list(voucher_type_codes)
        return query

    def iter_vouchers(
        self,
        start: datetime,
        end: datetime,
        *,
        kind: str = "vouchers",
        accsubject_codes: Sequence[str] = (),
        voucher_type_codes: Sequence[str] = (),
    ) -> Iterator[RawRecord]:
        """Vouchers changed in ``[start, end)`` as ``RawRecord``s: ``source_id`` is ``header.id`` as text."""
        if end <= start:
            return
        for record in self.iter_records(self.window_query(start, end, accsubject_codes, voucher_type_codes)):
            yield RawRecord(system=SYSTEM, kind=kind, source_id=record["header"]["id"], payload=record)

    # --- write-back ----------------------------------------------------------------------------
    # A write is sent once per call: a timeout or 5xx after sending is ambiguous, so the caller's
    # ledger checks the voucher before sending again. Only a refreshed token repeats a call.

    def _writer(self) -> ApiClient:
        if getattr(self, "_write_api", None) is None:
            self._write_api = self.api.sending_once()
        return self._write_api

    def add_voucher(self, voucher: dict[str, Any]) -> dict[str, Any]:
        """``addVoucher`` (§8.1): the reply's ``data`` (``voucherId``, ``billCode``).

        Raises ``DuplicateVoucherError`` on 310504 / 310074 (the voucher exists).
        """
        call = Call(SYSTEM, "addVoucher", f"accbookCode={voucher.get('accbookCode')}")
        body = self._writer().request(call, "POST", ADD_VOUCHER, params=self._params(), json=voucher)
        data = body.get("data")
        if not isinstance(data, dict):
            raise call.error(BadResponseError, "no data in the response", retryable=False)
        return data

    def close(self) -> None:
        self.api.close()
