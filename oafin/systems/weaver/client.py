"""Weaver e-cology 9 (泛微): the ``/api/ec/dev/auth`` handshake and the workflow ``paService`` reads.

Shapes from source-systems.md §4 and real-clients.md §1.5/§2.3 (newer; the reference client is
``wccdev/oa-workflow-api``, the httpx pattern ``sdk-snippets/weaver_httpx.py``). No Python SDK exists,
and builds differ, so what differs is a setting with the documented default:

- auth: ``regist`` (headers ``appid``, ``cpk``) → ``secrit`` (or ``secret``) and ``spk``; then
  ``applytoken`` with ``secret: Base64(RSA-PKCS1v1.5(spk, secrit))`` → ``token``; every business
  call carries ``appid``, ``token`` and ``userid: Base64(RSA(spk, <user id>))`` and no cookies
  (a stale JSESSIONID makes the OA act as the wrong user, §4.1). A token answered as dead
  (``token不存在或者超时``, or ``登录信息超时`` / errorCode 002) is re-applied for, once per call.
- lists: ``get<List>WorkflowRequestCount`` (a bare integer) and ``get<List>WorkflowRequestList``
  (form fields ``pageNo`` from 1, ``pageSize``, ``conditions``; a bare JSON array of all-string
  items). Lists are the impersonated user's own: oafin reads every page (there is no documented
  date filter) and keeps the requests created in the window. When a list yields fewer requests
  than its count, the reader warns and notes it (``notes``): the user does not see everything.
- detail: ``getWorkflowRequest`` and ``getRequestLog`` (who approved), ``{code, data, errMsg}``,
  ``code`` being ``"SUCCESS"``, ``{"statusCode": "1"}`` or ``{"name": "SUCCESS"}`` by build.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from oafin.connectors.auth import Credential, TokenAuth
from oafin.connectors.errors import (
    AuthError,
    BadRecordError,
    BadResponseError,
    SourceError,
    TokenExpiredError,
    unreadable_payload,
)
from oafin.connectors.http import DEFAULT_TIMEOUTS, ApiClient, Call, SystemClient, Timeouts
from oafin.connectors.limits import DEFAULT_RETRY, Acquire, RateLimiter, RetryPolicy
from oafin.connectors.ordered import ordered_map
from oafin.connectors.paging import PagingError, Progress
from oafin.records import RawRecord

logger = logging.getLogger(__name__)

SYSTEM: Final = "weaver"
SHANGHAI: Final = ZoneInfo("Asia/Shanghai")
TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"  # createTime "yyyy-MM-dd HH:mm:ss" (§4.2)
AUTH: Final = "/api/ec/dev/auth/"
PA: Final = "/api/workflow/paService/"
# The lists a config may name -> the paService infix (§4.2; getAllWorkflowRequestList: §2.3 [U]).
LISTS: Final = {"todo": "ToDo", "handled": "Handled", "my": "My", "all": "All"}
DEFAULT_LISTS: Final = ("todo", "handled", "my")
DEFAULT_PAGE_SIZE: Final = 100  # no maximum is documented (§4.2) [U]
TOKEN_SECONDS: Final = 1800  # the ``time`` header; the wccdev client asks 10800, a Node one caches 30 min
LOG_PAGE_SIZE: Final = 200
WEAVER_REQUESTS_PER_SECOND: Final = 10.0  # no limit is documented (§4.2): gentle with an on-premises OA
EXPIRED_MESSAGES: Final = ("token不存在或者超时", "登录信息超时")
EXPIRED_ERROR_CODES: Final = frozenset({"002"})


def rsa_encrypt_b64(spk: str, text: str) -> str:
    """Base64(RSA-PKCS1v1.5(spk, text)); ``spk`` is base64 DER SubjectPublicKeyInfo or a PEM (§4.1)."""
    key_text = spk.strip()
    if key_text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(key_text.encode())
    else:
        key = serialization.load_der_public_key(base64.b64decode(key_text))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("spk is not an RSA public key")
    return base64.b64encode(key.encrypt(text.encode(), padding.PKCS1v15())).decode()


def client_public_key() -> str:
    """A fresh ``cpk``: the client's RSA public key, base64 DER (the OA stores it at regist)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def code_ok(code: Any) -> bool | None:
    """Whether a reply's ``code`` says success: ``"SUCCESS"``, ``{"statusCode": "1"}`` or
    ``{"name": "SUCCESS"}`` by build (real-clients.md §2.3). None: no code at all."""
    if code is None:
        return None
    if isinstance(code, dict):
        if "name" in code:
            return str(code["name"]).upper() == "SUCCESS"
        if "statusCode" in code:
            return str(code["statusCode"]) == "1"
        return False
    return str(code).upper() == "SUCCESS"


def _code_text(code: Any) -> str:
    if isinstance(code, dict):
        return str(code.get("name") or code.get("statusCode") or json.dumps(code, ensure_ascii=False))
    return str(code)


def check_auth(call: Call, body: Any, response: httpx.Response) -> None:
    """The auth layer's refusal ``{msg, code: -1, status: false}`` (§4.1), on any call."""
    if not isinstance(body, dict) or body.get("status") is not False:
        return
    msg = str(body.get("msg") or "")
    error_code = str(body.get("errorCode") or "")
    reason = f"status false: {msg}" + (f" (errorCode {error_code})" if error_code else "")
    if msg.startswith(EXPIRED_MESSAGES) or error_code in EXPIRED_ERROR_CODES:
        raise call.error(TokenExpiredError, reason, retryable=True)
    raise call.error(AuthError, reason)


def check_reply(call: Call, body: Any, response: httpx.Response) -> None:
    """``{code, data, errMsg}`` of a detail call; the auth layer's refusal first."""
    check_auth(call, body, response)
    if not isinstance(body, dict):
        raise call.error(BadResponseError, f"expected a JSON object, got {type(body).__name__}")
    ok = code_ok(body.get("code"))
    if ok is None:
        raise call.error(BadResponseError, "response has no code")
    if not ok:
        detail = json.dumps(body.get("errMsg") or body.get("reqFailMsg") or {}, ensure_ascii=False)
        raise call.error(SourceError, f"code {_code_text(body.get('code'))}: {detail}")


def check_list(call: Call, body: Any, response: httpx.Response) -> None:
    """A list page: a bare JSON array, or ``{data: [...]}`` as one E9 test client accepts (§2.3)."""
    check_auth(call, body, response)
    if isinstance(body, list):
        return
    if isinstance(body, dict) and "code" in body:
        check_reply(call, body, response)
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        return
    raise call.error(BadResponseError, f"expected a JSON array of requests, got {type(body).__name__}")


def check_count(call: Call, body: Any, response: httpx.Response) -> None:
    """A count: a bare integer (§4.2), possibly sent as a string."""
    check_auth(call, body, response)
    if isinstance(body, dict) and "code" in body:
        check_reply(call, body, response)
    if isinstance(body, dict) and "data" in body:
        body = body["data"]
    if isinstance(body, bool) or _count(body) is None:
        raise call.error(BadResponseError, f"expected a count, got {str(body)[:80]!r}")


def _count(body: Any) -> int | None:
    if isinstance(body, dict):
        body = body.get("data")
    try:
        return int(str(body).strip())
    except (TypeError, ValueError):
        return None


def check_token(call: Call, body: Any, response: httpx.Response) -> None:
    """regist/applytoken: any refusal is a credential problem that never heals by retrying."""
    try:
        check_auth(call, body, response)
    except AuthError as exc:
        raise call.error(AuthError, exc.detail, retryable=False) from None
    if not isinstance(body, dict):
        raise call.error(BadResponseError, f"expected a JSON object, got {type(body).__name__}")


class WeaverAuth(TokenAuth):
    """The ``token`` header plus ``appid`` and the RSA-encrypted ``userid``; never a cookie."""

    def __init__(self, client: WeaverClient, refresh_margin: float) -> None:
        super().__init__(client._apply_token, place="header", name="token", refresh_margin=refresh_margin)
        self.client = client

    def apply(self, request: httpx.Request) -> object:
        marker = super().apply(request)
        request.headers["appid"] = self.client.app_id
        request.headers["userid"] = self.client.encrypted_userid()
        request.headers.pop("Cookie", None)
        return marker

    def secrets(self) -> list[str]:
        return [*super().secrets(), *self.client.secrets()]


class WeaverClient(SystemClient):
    """Reads workflow requests from e-cology 9's paService as one impersonated user.

    >>> with WeaverClient(url, app_id, userid="1") as oa:  # doctest: +SKIP
    ...     for record in oa.iter_requests("52021", start, end): ...
    """

    def __init__(
        self,
        base_url: str,
        app_id: str,
        *,
        userid: str = "1",
        lists: Sequence[str] = DEFAULT_LISTS,
        page_size: int = DEFAULT_PAGE_SIZE,
        token_seconds: int = TOKEN_SECONDS,
        read_log: bool = True,
        date_conditions: Mapping[str, str] | None = None,
        http: httpx.Client | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        limiter: Acquire | None = None,
        token_refresh_margin: float = 60.0,
        workers: int = 4,
    ) -> None:
        unknown = [name for name in lists if name not in LISTS]
        if unknown or not lists:
            raise ValueError(f"lists must name some of {', '.join(LISTS)}; got {list(lists)}")
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.app_id = app_id
        self.userid = userid
        self.lists = tuple(lists)
        self.page_size = page_size
        self.token_seconds = token_seconds
        self.read_log = read_log
        self.workers = max(1, workers)
        self.date_conditions = dict(date_conditions or {})
        self._lock = threading.Lock()
        self._registered: tuple[str, str] | None = None  # (secrit, spk)
        self._userid_cipher: tuple[str, str] | None = None  # (spk, Base64(RSA(spk, userid)))
        self.notes: list[str] = []  # what an operator should know about this read (visibility)
        self.auth = WeaverAuth(self, token_refresh_margin)
        self.api = ApiClient(
            SYSTEM,
            base_url,
            auth=self.auth,
            http=http,
            timeouts=timeouts,
            retry=retry,
            limiter=limiter or RateLimiter(WEAVER_REQUESTS_PER_SECOND),
            secrets=[app_id],
            check=check_reply,
        )

    # -- auth (source-systems.md §4.1) --------------------------------------------------------

    def secrets(self) -> list[str]:
        return [self.app_id, *(self._registered[:1] if self._registered else ())]

    def register(self) -> tuple[str, str]:
        """``regist`` once per client: the server's secret (``secrit`` or ``secret``) and ``spk``."""
        with self._lock:
            if self._registered is not None:
                return self._registered
            call = Call(SYSTEM, "regist")
            body = self.api.request(
                call,
                "POST",
                f"{AUTH}regist",
                authed=False,
                check=check_token,
                headers={"appid": self.app_id, "cpk": client_public_key()},
            )
            secret = body.get("secrit") or body.get("secret")
            spk = body.get("spk")
            if not secret or not spk:
                raise call.error(BadResponseError, "no secrit/secret or spk in the response", retryable=False)
            self._registered = (str(secret), str(spk))
            self.api.redact.add(str(secret))
            return self._registered

    def _apply_token(self) -> Credential:
        """``applytoken`` with the RSA-encrypted secret (``time``: the token's lifetime asked)."""
        secret, spk = self.register()
        call = Call(SYSTEM, "applytoken")
        try:
            encrypted = rsa_encrypt_b64(spk, secret)
        except ValueError as exc:
            raise call.error(AuthError, f"the spk regist returned is not an RSA key: {exc}") from None
        body = self.api.request(
            call,
            "POST",
            f"{AUTH}applytoken",
            authed=False,
            check=check_token,
            headers={"appid": self.app_id, "secret": encrypted, "time": str(self.token_seconds)},
        )
        token = body.get("token")
        if not token:
            raise call.error(BadResponseError, "no token in the response", retryable=False)
        return Credential(str(token), float(self.token_seconds))

    def encrypted_userid(self) -> str:
        """``userid`` header: the impersonated user's id, RSA-encrypted with ``spk``."""
        _, spk = self.register()
        cached = self._userid_cipher
        if cached is None or cached[0] != spk:
            cached = (spk, rsa_encrypt_b64(spk, self.userid))
            self._userid_cipher = cached
        return cached[1]

    # -- lists (source-systems.md §4.2, real-clients.md §2.3) ---------------------------------

    def conditions(self, workflow_id: str, start: datetime | None = None, end: datetime | None = None) -> str:
        """The ``conditions`` JSON: ``workflowIds``, plus the configured date conditions if any."""
        found: dict[str, str] = {"workflowIds": workflow_id} if workflow_id else {}
        if self.date_conditions and start is not None and end is not None:
            found |= render_date_conditions(self.date_conditions, start, end)
        return json.dumps(found, ensure_ascii=False)

    def count(self, which: str, workflow_id: str, conditions: str | None = None) -> int:
        infix = LISTS[which]
        call = Call(SYSTEM, f"get{infix}WorkflowRequestCount", f"workflowIds={workflow_id}")
        body = self.api.request(
            call,
            "POST",
            f"{PA}get{infix}WorkflowRequestCount",
            data={"conditions": conditions or self.conditions(workflow_id)},
            check=check_count,
        )
        value = _count(body)
        assert value is not None  # check_count made sure
        return value

    def list_rows(
        self, which: str, workflow_id: str, conditions: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every item of one list, page by page until a short or empty page, each request once."""
        infix = LISTS[which]
        name = f"get{infix}WorkflowRequestList"
        progress = Progress()
        seen: set[str] = set()
        page = 0
        while True:
            page += 1
            call = Call(SYSTEM, name, f"pageNo={page}, pageSize={self.page_size}")
            body = self.api.request(
                call,
                "POST",
                f"{PA}{name}",
                data={
                    "pageNo": str(page),
                    "pageSize": str(self.page_size),
                    "conditions": conditions or self.conditions(workflow_id),
                },
                check=check_list,
            )
            rows = body if isinstance(body, list) else body["data"]
            try:
                progress.check(rows, f"pageNo={page}")
            except PagingError as exc:
                raise call.error(BadResponseError, str(exc), retryable=False) from None
            for row in rows:
                if not isinstance(row, dict) or row.get("requestId") in (None, ""):
                    raise call.error(BadResponseError, "a list item has no requestId", retryable=False)
                request_id = str(row["requestId"])
                if request_id in seen:
                    continue
                seen.add(request_id)
                yield row
            # A page may repeat a request the OA moved while we paged; the page is still full.
            if len(rows) < self.page_size or not rows:
                return

    def iter_request_ids(self, workflow_id: str, start: datetime, end: datetime) -> Iterator[str]:
        """Ids of the requests of ``workflow_id`` created in ``[start, end)`` on the configured lists.

        No list documents a date range (§4.2), so by default every page is read and ``createTime``
        (Beijing time) filters; ``date_conditions`` (a build's own condition keys, e.g. those of
        e-cology's search form on ``createdate``) narrow the list on the server first, and
        ``createTime`` still filters exactly. A list that yields fewer requests than its count is
        noted and logged.
        """
        seen: set[str] = set()
        for which in self.lists:
            conditions = self.conditions(workflow_id, start, end)
            expected = self.count(which, workflow_id, conditions)
            read = 0
            for row in self.list_rows(which, workflow_id, conditions):
                read += 1
                request_id = str(row["requestId"])
                created = _created(row, which)
                if request_id in seen or not (start <= created < end):
                    continue
                seen.add(request_id)
                yield request_id
            if read < expected:
                note = (
                    f"weaver {LISTS[which]} list of user {self.userid}: read {read} requests but the "
                    f"list counts {expected}; lists are per user, so impersonate a user who sees every "
                    "request (the README's Weaver section: userid and lists)"
                )
                logger.warning("%s", note)
                self.notes.append(note)

    # -- detail ---------------------------------------------------------------------------------

    def get_request(self, request_id: str) -> dict[str, Any]:
        """``getWorkflowRequest`` ``data``: main table, detail tables (§4.2)."""
        call = Call(SYSTEM, "getWorkflowRequest", f"requestId={request_id}")
        body = self.api.request(call, "GET", f"{PA}getWorkflowRequest", params={"requestId": request_id})
        data = body.get("data")
        if not isinstance(data, dict):
            raise call.error(BadResponseError, "no data object in the response", retryable=False)
        return dict(data)

    def get_log(self, request_id: str) -> list[Any]:
        """``getRequestLog`` ``data``: who submitted, approved (logtype 0) or sent back (3)."""
        call = Call(SYSTEM, "getRequestLog", f"requestId={request_id}")
        other = json.dumps({"pageSize": LOG_PAGE_SIZE, "pageNumber": 1})
        body = self.api.request(
            call,
            "GET",
            f"{PA}getRequestLog",
            params={"requestId": request_id, "otherParams": other},
        )
        data = body.get("data")
        if not isinstance(data, list):
            raise call.error(BadResponseError, "no data list in the response", retryable=False)
        return data

    def get_status(self, request_id: str) -> dict[str, Any]:
        """``getRequestStatus`` ``data`` (``currentNodeId``; no node name, real-clients.md §2.3)."""
        call = Call(SYSTEM, "getRequestStatus", f"requestId={request_id}")
        body = self.api.request(call, "GET", f"{PA}getRequestStatus", params={"requestId": request_id})
        data = body.get("data")
        if not isinstance(data, dict):
            raise call.error(BadResponseError, "no data object in the response", retryable=False)
        return dict(data)

    def read_request(self, request_id: str) -> dict[str, Any]:
        """What is landed for one request: ``{"workflowRequest": detail, "requestLog": [...]}``."""
        try:
            payload: dict[str, Any] = {"workflowRequest": self.get_request(request_id)}
            if self.read_log:
                payload["requestLog"] = self.get_log(request_id)
            return payload
        except BadRecordError as exc:
            logger.warning("%s: landed as unreadable, to be quarantined", exc)
            return unreadable_payload(str(exc))

    def iter_requests(
        self, workflow_id: str, start: datetime, end: datetime, *, check_fields: Sequence[str] = ()
    ) -> Iterator[RawRecord]:
        """Every request of ``workflow_id`` created in ``[start, end)``, in list order.

        ``check_fields``: the main-table ``fieldName``s the mapping reads; the first request's
        detail lists the form's fields, and a name the form lacks stops the read before anything
        is landed, naming the field and the fields the form has.
        """
        checked = not check_fields
        for request_id, payload in self._details(self.iter_request_ids(workflow_id, start, end)):
            if not checked and "workflowRequest" in payload:
                check_form_fields(payload["workflowRequest"], check_fields, request_id)
                checked = True
            yield RawRecord(system=SYSTEM, kind=workflow_id, source_id=request_id, payload=payload)

    def _details(self, ids: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        """``read_request`` for each id, ``workers`` at a time, in the order of ``ids``."""
        yield from ordered_map(self.read_request, ids, self.workers, "weaver-get")


DATE_PLACEHOLDERS: Final = ("start_date", "end_date", "start_time", "end_time")


def render_date_conditions(template: Mapping[str, str], start: datetime, end: datetime) -> dict[str, str]:
    """``date_conditions`` with ``{start_date}``/``{end_date}`` (yyyy-MM-dd) and ``{start_time}``/
    ``{end_time}`` (yyyy-MM-dd HH:mm:ss) filled in, Beijing time; the end is the window's last
    second (both ends inclusive, as a list filter on ``createdate`` is)."""
    first = start.astimezone(SHANGHAI)
    last = (end - timedelta(seconds=1)).astimezone(SHANGHAI)
    values = {
        "start_date": first.strftime("%Y-%m-%d"),
        "end_date": last.strftime("%Y-%m-%d"),
        "start_time": first.strftime(TIME_FORMAT),
        "end_time": last.strftime(TIME_FORMAT),
    }
    return {key: str(value).format(**values) for key, value in template.items()}


def main_field_names(detail: Mapping[str, Any]) -> list[str]:
    """The main table's ``fieldName``s in a ``getWorkflowRequest`` answer (the form's fields)."""
    main = detail.get("workflowMainTableInfo")
    records = main.get("requestRecords") if isinstance(main, dict) else None
    if not isinstance(records, list) or not records or not isinstance(records[0], dict):
        return []
    fields = records[0].get("workflowRequestTableFields")
    return [
        str(f["fieldName"]) for f in fields or [] if isinstance(f, dict) and f.get("fieldName") is not None
    ]


def check_form_fields(detail: Mapping[str, Any], wanted: Sequence[str], request_id: str) -> None:
    """Raise when the mapping names a main-table field the form does not have."""
    have = main_field_names(detail)
    missing = [name for name in wanted if name not in have]
    if missing:
        table = (detail.get("workflowMainTableInfo") or {}).get("tableDBName") or "the form"
        call = Call(SYSTEM, "getWorkflowRequest", f"requestId={request_id}")
        raise call.error(
            SourceError,
            f"the mapping names field(s) {', '.join(missing)} that {table} does not have; "
            f"its fields are: {', '.join(have) or 'none'} (fix the mapping's main-table field names)",
        )


def _created(row: Mapping[str, Any], which: str) -> datetime:
    text = row.get("createTime")
    try:
        return datetime.strptime(str(text).strip(), TIME_FORMAT).replace(tzinfo=SHANGHAI)
    except ValueError:
        call = Call(SYSTEM, f"get{LISTS[which]}WorkflowRequestList", f"requestId={row.get('requestId')}")
        raise call.error(
            BadResponseError, f"createTime {text!r} is not yyyy-MM-dd HH:mm:ss", retryable=False
        ) from None
