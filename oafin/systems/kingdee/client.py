"""Kingdee K/3 Cloud (金蝶云星空) WebAPI: app-secret login or SDK signature, ExecuteBillQuery paging.

Shapes from source-systems.md §7.1–7.3: every call is
``POST {ServerUrl}Kingdee.BOS.WebApi.ServicesStub.<Service>.common.kdsvc``
with a JSON body; the session is a cookie; a query answers with a bare 2-D
array, or with an error object nested inside one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import datetime
from functools import partial
from typing import Any, Literal
from zoneinfo import ZoneInfo

import httpx

from oafin.connectors.auth import CookieSessionAuth, Credential, KingdeeSignatureAuth
from oafin.connectors.errors import AuthError, BadResponseError, SourceError, TokenExpiredError
from oafin.connectors.http import DEFAULT_TIMEOUTS, ApiClient, Call, SystemClient, Timeouts
from oafin.connectors.limits import (
    DEFAULT_RETRY,
    KINGDEE_REQUESTS_PER_SECOND,
    Acquire,
    RateLimiter,
    RetryPolicy,
)
from oafin.connectors.paging import OffsetLimitPager, PagingError
from oafin.records import RawRecord
from oafin.standard import BUSINESS_TZ

logger = logging.getLogger(__name__)

SYSTEM = "kingdee"
SERVICE_PREFIX = "Kingdee.BOS.WebApi.ServicesStub."  # source-systems.md §7.1
LOGIN_SERVICE = "AuthService.LoginByAppSecret"
QUERY_SERVICE = "DynamicFormService.ExecuteBillQuery"
# Write-back services (source-systems.md §7.1, §7.4): Save creates or updates, Submit moves a bill
# to 审核中 (B), Audit to 已审核 (C). No reversal or delete is ever sent by oafin.
SAVE_SERVICE = "DynamicFormService.Save"
SUBMIT_SERVICE = "DynamicFormService.Submit"
AUDIT_SERVICE = "DynamicFormService.Audit"
MAX_LIMIT = 2000  # source-systems.md §7.3: Limit ≤ 2000 per the docs
SESSION_COOKIE = "kdservice-sessionid"  # source-systems.md §7.2
AuthMode = Literal["session", "signature"]

# source-systems.md §7.2: the message Kingdee gives when the session is gone
# (usually bad credentials or third-party authorisation, not expiry): re-login once.
SESSION_LOST = "会话信息已丢失"
# source-systems.md §7.3: a missing permission; no retry helps.
NO_PERMISSION = "没有该功能的操作权限"

_BUSINESS_ZONE = ZoneInfo(BUSINESS_TZ)


def kingdee_datetime(moment: datetime) -> str:
    """An aware datetime as Kingdee's local (China time) date literal: ``2026-10-01 00:00:00``."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: pass a timezone-aware one")
    return moment.astimezone(_BUSINESS_ZONE).strftime("%Y-%m-%d %H:%M:%S")


def date_window_filter(date_field: str, start: datetime, end: datetime) -> str:
    """``FDate >= '2026-10-01 00:00:00' AND FDate < '2026-11-01 00:00:00'`` (default-forms.md)."""
    return f"{date_field} >= '{kingdee_datetime(start)}' AND {date_field} < '{kingdee_datetime(end)}'"


def _is_true(value: Any) -> bool:
    # source-systems.md §7.3: IsSuccess may be a boolean or the string "true"/"false".
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def find_response_status(body: Any) -> dict[str, Any] | None:
    """The ``ResponseStatus`` of an error reply, bare or nested in the 2-D array (§7.3), else None."""
    candidate = body
    while isinstance(candidate, list) and candidate:
        candidate = candidate[0]
    if isinstance(candidate, dict):
        result = candidate.get("Result", candidate)
        if isinstance(result, dict):
            status = result.get("ResponseStatus")
            if isinstance(status, dict):
                return status
    return None


def raise_for_status(call: Call, status: dict[str, Any], *, session: bool = True) -> None:
    """Turn an unsuccessful ``ResponseStatus`` into the matching error.

    With ``session`` False (signature mode) there is no session to renew, so "会话信息已丢失"
    means refused credentials (§7.2 gotcha): an ``AuthError``, not a re-login.
    """
    if _is_true(status.get("IsSuccess")):
        return
    errors = status.get("Errors") or []
    messages = [str(e.get("Message", "")).strip() for e in errors if isinstance(e, dict)]
    fields = [str(e.get("FieldName")) for e in errors if isinstance(e, dict) and e.get("FieldName")]
    detail = f"ErrorCode {status.get('ErrorCode')}: {'; '.join(m for m in messages if m) or 'no message'}"
    if fields:
        detail += f" (fields: {', '.join(fields)})"
    text = " ".join(messages)
    if SESSION_LOST in text:
        if not session:
            raise call.error(AuthError, f"signature refused: {detail}")
        raise call.error(TokenExpiredError, detail)
    if NO_PERMISSION in text:
        raise call.error(AuthError, detail)
    raise call.error(SourceError, detail)


def check_query(call: Call, body: Any, response: httpx.Response, *, session: bool = True) -> None:
    """ExecuteBillQuery answers a bare 2-D array; an error hides inside one (§7.3)."""
    status = find_response_status(body)
    if status is not None:
        raise_for_status(call, status, session=session)
        return
    if not isinstance(body, list) or not all(isinstance(row, list) for row in body):
        raise call.error(BadResponseError, f"expected a 2-D array, got {type(body).__name__}")


def check_login(call: Call, body: Any, response: httpx.Response) -> None:
    """LoginResultType 1 is success; anything else is refused credentials (§7.2)."""
    if not isinstance(body, dict):
        raise call.error(BadResponseError, f"expected a JSON object, got {type(body).__name__}")
    if body.get("LoginResultType") != 1:
        message = body.get("Message") or body.get("MessageCode") or "no message"
        raise call.error(
            AuthError, f"login refused (LoginResultType {body.get('LoginResultType')}): {message}"
        )


def check_write(call: Call, body: Any, response: httpx.Response, *, session: bool = True) -> None:
    """Save/Submit/Audit answer ``{"Result": {"ResponseStatus": {...}, ...}}`` (§7.4)."""
    status = find_response_status(body)
    if status is None:
        raise call.error(BadResponseError, "no Result.ResponseStatus in the response", retryable=False)
    raise_for_status(call, status, session=session)


class KingdeeClient(SystemClient):
    """Reads bills from Kingdee K/3 Cloud with ``ExecuteBillQuery``.

    >>> with KingdeeClient(url, acct, user, app_id, secret) as kd:  # doctest: +SKIP
    ...     for record in kd.iter_bills("AP_PAYBILL", ["FID", "FBillNo", "FDATE"], "FDATE", start, end): ...

    ``base_url`` is the server URL ending in ``/k3cloud/``. ``login_style``
    chooses the login body: positional ``parameters`` (corroborated) or the
    named form some clients send (key spelling uncertain, source-systems.md §7.2).

    ``auth_mode`` ``"session"`` (default) logs in with ``LoginByAppSecret`` and sends the session
    cookie; ``"signature"`` never logs in and signs every request as the official SDK does
    (``KingdeeSignatureAuth``, real-clients.md §1.8), for systems where only signature access
    is granted.
    """

    def __init__(
        self,
        base_url: str,
        acct_id: str,
        username: str,
        app_id: str,
        app_secret: str,
        *,
        lcid: int = 2052,
        page_size: int = MAX_LIMIT,
        http: httpx.Client | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        limiter: Acquire | None = None,
        login_style: Literal["parameters", "named"] = "parameters",
        auth_mode: AuthMode = "session",
        org_num: str = "0",
    ) -> None:
        if not 1 <= page_size <= MAX_LIMIT:
            raise ValueError(f"page_size must be 1..{MAX_LIMIT} (source-systems.md §7.3)")
        self.acct_id = acct_id
        self.username = username
        self.app_id = app_id
        self._app_secret = app_secret
        self.lcid = lcid
        self.page_size = page_size
        self.login_style = login_style
        if auth_mode not in ("session", "signature"):
            raise ValueError(f"auth_mode must be 'session' or 'signature', not {auth_mode!r}")
        self.auth_mode = auth_mode
        session = auth_mode == "session"
        self._check_query = partial(check_query, session=session)
        self._check_write = partial(check_write, session=session)
        self.auth: CookieSessionAuth | KingdeeSignatureAuth
        if session:
            self.auth = CookieSessionAuth(self.login, secret_cookies=(SESSION_COOKIE, "ASP.NET_SessionId"))
        else:
            self.auth = KingdeeSignatureAuth(
                app_id=app_id,
                app_secret=app_secret,
                acct_id=acct_id,
                username=username,
                lcid=lcid,
                org_num=org_num,
            )
        self.api = ApiClient(
            SYSTEM,
            base_url,
            auth=self.auth,
            http=http,
            timeouts=timeouts,
            retry=retry,
            limiter=limiter or RateLimiter(KINGDEE_REQUESTS_PER_SECOND),
            secrets=[app_secret],
        )

    @staticmethod
    def service_path(service: str) -> str:
        return f"{SERVICE_PREFIX}{service}.common.kdsvc"  # source-systems.md §7.1

    def login(self) -> Credential:
        """Open a session with ``AuthService.LoginByAppSecret``; return its cookies."""
        if self.login_style == "parameters":
            body: dict[str, Any] = {
                "parameters": [self.acct_id, self.username, self.app_id, self._app_secret, self.lcid]
            }
        else:
            body = {
                "acctID": self.acct_id,
                "username": self.username,
                "appId": self.app_id,
                "appSecret": self._app_secret,
                "lcid": self.lcid,
            }
        call = Call(SYSTEM, "LoginByAppSecret")
        captured: dict[str, str] = {}

        def check(call: Call, reply: Any, response: httpx.Response) -> None:
            check_login(call, reply, response)
            captured.update(response.cookies.items())

        reply = self.api.request(
            call, "POST", self.service_path(LOGIN_SERVICE), json=body, authed=False, check=check
        )
        session_id = reply.get("KDSVCSessionId")
        if session_id and SESSION_COOKIE not in captured:
            captured[SESSION_COOKIE] = str(session_id)
        if not captured:
            raise call.error(BadResponseError, "login succeeded but set no session cookie", retryable=False)
        self.api.redact.add(*captured.values())
        logger.info("kingdee: logged in to %s as %s", self.acct_id, self.username)
        return Credential(captured)

    def execute_bill_query(
        self,
        form_id: str,
        field_keys: Sequence[str],
        filter_string: str = "",
        order_string: str = "",
        start_row: int = 0,
        limit: int = MAX_LIMIT,
    ) -> list[list[Any]]:
        """One page of ``ExecuteBillQuery``: rows as arrays in ``field_keys`` order (§7.3)."""
        call = Call(SYSTEM, "ExecuteBillQuery", f"FormId={form_id}, StartRow={start_row}")
        data = {
            "FormId": form_id,
            "FieldKeys": ",".join(field_keys),  # a comma-separated string, not an array (§7.3)
            "FilterString": filter_string,
            "OrderString": order_string,
            "TopRowCount": 0,
            "StartRow": start_row,
            "Limit": limit,
        }
        rows = self.api.request(
            call, "POST", self.service_path(QUERY_SERVICE), json={"data": data}, check=self._check_query
        )
        width = len(field_keys)
        for row in rows:
            if len(row) != width:
                raise call.error(
                    BadResponseError, f"a row has {len(row)} values for {width} field keys", retryable=False
                )
        return rows

    def iter_rows(
        self,
        form_id: str,
        field_keys: Sequence[str],
        filter_string: str = "",
        order_string: str = "FID ASC",
    ) -> Iterator[dict[str, Any]]:
        """Every row the query matches, as ``{field key: value}``, paging ``StartRow += Limit``.

        The order must be stable for paging to be exact; rows are per entry
        line, so for entry-level keys order by the entry id too (§7.3).
        """
        field_keys = list(field_keys)
        pager = OffsetLimitPager(start_param="StartRow", limit_param="Limit", limit=self.page_size)

        def fetch(paging: dict[str, Any]) -> list[list[Any]]:
            return self.execute_bill_query(
                form_id, field_keys, filter_string, order_string, paging["StartRow"], paging["Limit"]
            )

        try:
            for rows in pager.pages(fetch):
                for row in rows:
                    yield dict(zip(field_keys, row, strict=True))
        except PagingError as exc:
            raise Call(SYSTEM, "ExecuteBillQuery", f"FormId={form_id}").error(
                BadResponseError, str(exc), retryable=False
            ) from None

    def iter_bills(
        self,
        form_id: str,
        field_keys: Sequence[str],
        date_field: str,
        start: datetime,
        end: datetime,
        id_field: str = "FID",
        *,
        extra_filter: str = "",
        order_string: str | None = None,
    ) -> Iterator[RawRecord]:
        """Rows of ``form_id`` dated in ``[start, end)`` China time, as ``RawRecord``s.

        ``source_id`` is ``str(row[id_field])``: a bill with several entry lines
        yields one record per line, all with the bill's id.
        """
        if id_field not in field_keys:
            raise ValueError(f"id_field {id_field!r} is not among the field keys")
        filter_string = date_window_filter(date_field, start, end)
        if extra_filter:
            filter_string = f"({filter_string}) AND ({extra_filter})"
        order = order_string or f"{id_field} ASC"
        for row in self.iter_rows(form_id, field_keys, filter_string, order):
            yield RawRecord(system=SYSTEM, kind=form_id, source_id=str(row[id_field]), payload=row)

    # --- write-back (issue #6) -------------------------------------------------------------
    # A write is sent once per call: a timeout or 5xx after sending is ambiguous, so the
    # caller's ledger checks the bill before sending again. Only a re-login repeats a call.

    def _writer(self) -> ApiClient:
        if getattr(self, "_write_api", None) is None:
            self._write_api = self.api.sending_once()
        return self._write_api

    def _write(self, service: str, form_id: str, data: dict[str, Any], what: str) -> dict[str, Any]:
        call = Call(SYSTEM, service.rsplit(".", 1)[-1], f"FormId={form_id}, {what}")
        reply = self._writer().request(
            call,
            "POST",
            self.service_path(service),
            json={"formid": form_id, "data": data},
            check=self._check_write,
        )
        return reply["Result"]

    def save(
        self, form_id: str, model: dict[str, Any], need_update_fields: Sequence[str] = ()
    ) -> dict[str, Any]:
        """``DynamicFormService.Save`` (§7.4): create a bill (no ``FID`` in the model) or update one.

        With ``need_update_fields`` only those fields of the bill ``model["FID"]`` change.
        Returns the reply's ``Result``: ``Id``, ``Number``, ``ResponseStatus``.
        """
        data = {
            "NeedUpDateFields": list(need_update_fields),
            "NeedReturnFields": [],
            "IsDeleteEntry": "true",
            "IsVerifyBaseDataField": "false",
            "Model": model,
        }
        return self._write(SAVE_SERVICE, form_id, data, f"FID={model.get('FID', 'new')}")

    def submit(self, form_id: str, numbers: Sequence[str]) -> dict[str, Any]:
        """``DynamicFormService.Submit`` with ``{"Numbers": [...]}`` (§7.4): the bills go to 审核中 (B)."""
        return self._write(
            SUBMIT_SERVICE, form_id, {"Numbers": list(numbers)}, f"Numbers={','.join(numbers)}"
        )

    def audit(self, form_id: str, numbers: Sequence[str]) -> dict[str, Any]:
        """``DynamicFormService.Audit`` with ``{"Numbers": [...]}`` (§7.4): the bills become 已审核 (C)."""
        return self._write(AUDIT_SERVICE, form_id, {"Numbers": list(numbers)}, f"Numbers={','.join(numbers)}")
