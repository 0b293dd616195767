"""DingTalk approval over the v1.0 API (``api.dingtalk.com``): list instance ids by process code, get each.

Shapes from source-systems.md §1.1-1.6 ("New v1.0") and real-clients.md §1.1 and §2.7:

- token: ``POST /v1.0/oauth2/accessToken`` with a JSON body ``{appKey, appSecret}`` → ``{accessToken,
  expireIn}``; it goes on every call in the ``x-acs-dingtalk-access-token`` header (§1.1);
- ids: ``POST /v1.0/workflow/processes/instanceIds/query`` ``{processCode, startTime, endTime,
  nextToken, maxResults ≤ 20}``; ``nextToken`` is sent as an int and comes back as a string, absent
  on the last page (§1.2);
- detail: ``GET /v1.0/workflow/processInstances?processInstanceId=`` → ``{result, success}`` (§1.3);
- errors: HTTP 4xx/5xx with ``{code, message, requestid}`` (§1.6); throttling is HTTP 403
  (real-clients.md §2.7), a dead token HTTP 400 "不合法的access_token" (§1.6).

The windowing, ordered concurrent detail reads and unreadable-record handling are the topapi
client's (``DingTalkClient``), which this client extends.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Final

import httpx

from oafin.connectors.auth import Credential, TokenAuth
from oafin.connectors.errors import (
    AuthError,
    BadResponseError,
    RateLimitedError,
    SourceError,
    TokenExpiredError,
    TransientError,
)
from oafin.connectors.http import DEFAULT_TIMEOUTS, ApiClient, Call, Timeouts
from oafin.connectors.limits import (
    DEFAULT_RETRY,
    DINGTALK_REQUESTS_PER_SECOND,
    Acquire,
    RateLimiter,
    RetryPolicy,
)
from oafin.connectors.paging import PageTokenPager, PagingError, unique_ids
from oafin.records import RawRecord
from oafin.systems.dingtalk.client import DingTalkClient, epoch_ms

SYSTEM: Final = "dingtalk-v1"
DEFAULT_BASE_URL: Final = "https://api.dingtalk.com"
TOKEN_HEADER: Final = "x-acs-dingtalk-access-token"
MAX_PAGE_SIZE: Final = 20  # maxResults "每页大小，最多传20" (source-systems.md §1.2)
TOKEN_PATH: Final = "/v1.0/oauth2/accessToken"
LIST_PATH: Final = "/v1.0/workflow/processes/instanceIds/query"
GET_PATH: Final = "/v1.0/workflow/processInstances"
COMMENTS_PATH: Final = "/v1.0/workflow/processInstances/comments"

# Throttling: HTTP 403 (real-clients.md §2.7); its code is not documented in what we have [U], so
# any 403 whose code or message speaks of a QPS/flow limit counts. The monthly quota
# (Forbidden.AccessDenied.ApiCountLimitForOrg, §1.6) does not heal by waiting minutes.
THROTTLE_MARKERS: Final = ("qpslimit", "throttl", "flowcontrol", "限流", "流控", "频率")
QUOTA_CODES: Final = frozenset({"Forbidden.AccessDenied.ApiCountLimitForOrg"})
# A dead token: HTTP 400/401 "不合法的access_token" (§1.6); the code [U].
TOKEN_CODES: Final = frozenset({"InvalidAuthentication", "InvalidAccessToken", "Unauthorized"})


def _error_fields(body: Any) -> tuple[str, str, str]:
    if not isinstance(body, dict):
        return "", "", ""
    return str(body.get("code") or ""), str(body.get("message") or ""), str(body.get("requestid") or "")


def check_v1(call: Call, body: Any, response: httpx.Response) -> None:
    """Classify a v1.0 answer: a 2xx JSON object is success; a 4xx carries ``{code, message, requestid}``."""
    status = response.status_code
    if 200 <= status < 300:
        if not isinstance(body, dict):
            raise call.error(BadResponseError, f"expected a JSON object, got {type(body).__name__}")
        return
    code, message, requestid = _error_fields(body)
    reason = f"HTTP {status} {code or '(no code)'}: {message}" + (
        f" (requestid {requestid})" if requestid else ""
    )
    lowered = f"{code} {message}".lower()
    if code in QUOTA_CODES:
        raise call.error(RateLimitedError, reason, retryable=False)
    if status == 429 or (status == 403 and any(m in lowered for m in THROTTLE_MARKERS)):
        raise call.error(RateLimitedError, reason)
    if code.startswith("Forbidden"):  # e.g. Forbidden.AccessDenied.AccessTokenPermissionDenied: a scope
        raise call.error(AuthError, reason)
    if code in TOKEN_CODES or "access_token" in lowered or "accesstoken" in lowered:
        raise call.error(TokenExpiredError, reason, retryable=True)
    if status >= 500:
        raise call.error(TransientError, reason)
    if status in (401, 403):
        raise call.error(AuthError, reason)
    raise call.error(SourceError, reason)


def check_token(call: Call, body: Any, response: httpx.Response) -> None:
    """``accessToken``: a refusal means bad credentials, which never heal."""
    try:
        check_v1(call, body, response)
    except (SourceError, TokenExpiredError) as exc:
        raise call.error(AuthError, exc.detail) from None
    if not body.get("accessToken"):
        raise call.error(BadResponseError, "no accessToken in the response", retryable=False)


def decoded_json_value(component: dict[str, Any]) -> Any:
    """A form component's ``value`` that is a JSON string (TableField rows, DDAttachment files), decoded.

    real-clients.md §2.7: both are JSON *strings* inside the instance. An empty value is ``[]``.
    Raises ``ValueError`` naming the component for a value that is not JSON.
    """
    raw = component.get("value")
    if raw in (None, ""):
        return []
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        raise ValueError(
            f"{component.get('name')!r} ({component.get('componentType')}): value is not JSON"
        ) from None


def attachments(instance: dict[str, Any]) -> list[dict[str, Any]]:
    """The metadata of every file in the instance's ``DDAttachment`` fields, with the field's label.

    Each ``{spaceId, fileName, fileSize, fileType, fileId, field}`` (real-clients.md §2.7). The file
    itself needs a download grant first (``grant_process_instance_for_download_file``), which oafin
    does not ask for: it reconciles on the metadata.
    """
    files: list[dict[str, Any]] = []
    for comp in instance.get("formComponentValues") or []:
        if isinstance(comp, dict) and comp.get("componentType") == "DDAttachment":
            for item in decoded_json_value(comp):
                if isinstance(item, dict):
                    files.append({**item, "field": comp.get("name")})
    return files


def table_rows(instance: dict[str, Any], label: str) -> list[dict[str, Any]]:
    """The rows of the TableField ``label`` as ``{cell label: value}`` dicts (real-clients.md §2.7)."""
    for comp in instance.get("formComponentValues") or []:
        if isinstance(comp, dict) and comp.get("name") == label:
            rows = decoded_json_value(comp)
            return [
                {
                    str(c.get("label")): c.get("value")
                    for c in row.get("rowValue") or []
                    if isinstance(c, dict)
                }
                for row in rows
                if isinstance(row, dict)
            ]
    return []


class DingTalkV1Client(DingTalkClient):
    """Reads approval instances from DingTalk's v1.0 API.

    >>> with DingTalkV1Client(url, key, secret) as dt:  # doctest: +SKIP
    ...     for record in dt.iter_instances("PROC-OAFIN-EXPENSE", start, end): ...
    """

    def __init__(
        self,
        base_url: str,
        app_key: str,
        app_secret: str,
        *,
        page_size: int = MAX_PAGE_SIZE,
        http: httpx.Client | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        limiter: Acquire | None = None,
        workers: int = 4,
        token_refresh_margin: float = 300.0,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE} (source-systems.md §1.2)")
        self.app_key = app_key
        self._app_secret = app_secret
        self.page_size = page_size
        self.workers = max(1, workers)
        self.auth = TokenAuth(
            self._fetch_token, place="header", name=TOKEN_HEADER, refresh_margin=token_refresh_margin
        )
        self.api = ApiClient(
            SYSTEM,
            base_url,
            auth=self.auth,
            http=http,
            timeouts=timeouts,
            retry=retry,
            limiter=limiter or RateLimiter(DINGTALK_REQUESTS_PER_SECOND),
            secrets=[app_secret],
            check=check_v1,
        )

    def _fetch_token(self) -> Credential:
        # source-systems.md §1.1: POST /v1.0/oauth2/accessToken {appKey, appSecret} -> {accessToken, expireIn}
        body = self.api.request(
            Call(SYSTEM, "oauth2/accessToken"),
            "POST",
            TOKEN_PATH,
            json={"appKey": self.app_key, "appSecret": self._app_secret},
            authed=False,
            check=check_token,
        )
        expire_in = body.get("expireIn")
        try:
            lifetime = float(expire_in) if expire_in is not None else 7200.0
        except (TypeError, ValueError):
            lifetime = 7200.0
        return Credential(str(body["accessToken"]), lifetime)

    def iter_instance_ids(self, process_code: str, start: datetime, end: datetime) -> Iterator[str]:
        """Ids of the instances of ``process_code`` created in ``[start, end)``, each once.

        ``endTime`` is sent as ``end - 1 ms`` so adjacent windows never overlap (as the topapi client).
        """
        start_ms, end_ms = epoch_ms(start), epoch_ms(end)
        if end_ms <= start_ms:
            return

        def fetch(paging: dict[str, Any]) -> Any:
            token = paging["nextToken"]
            call = Call(
                SYSTEM, "processes/instanceIds/query", f"processCode={process_code}, nextToken={token}"
            )
            try:
                next_token = int(token)  # a string in the answer, an int64 in the request (§1.2)
            except (TypeError, ValueError):
                raise call.error(
                    BadResponseError, f"nextToken {token!r} is not a number", retryable=False
                ) from None
            body = self.api.request(
                call,
                "POST",
                LIST_PATH,
                json={
                    "processCode": process_code,
                    "startTime": start_ms,
                    "endTime": end_ms - 1,
                    "nextToken": next_token,
                    "maxResults": paging["maxResults"],
                },
            )
            result = body.get("result")
            if not isinstance(result, dict) or not isinstance(result.get("list", []), list):
                raise call.error(BadResponseError, "no result.list in the response", retryable=False)
            return result

        pager = PageTokenPager(
            items=lambda result: result.get("list"),
            next_token=lambda result: result.get("nextToken"),
            token_param="nextToken",
            start=0,
            size_param="maxResults",
            size=self.page_size,
        )
        try:
            yield from unique_ids(pager.pages(fetch))
        except PagingError as exc:
            call = Call(SYSTEM, "processes/instanceIds/query", f"processCode={process_code}")
            raise call.error(BadResponseError, str(exc), retryable=False) from None

    def get_instance(self, instance_id: str) -> dict[str, Any]:
        """The ``result`` object of the instance, as v1.0 returns it (source-systems.md §1.3)."""
        call = Call(SYSTEM, "processInstances", f"processInstanceId={instance_id}")
        body = self.api.request(call, "GET", GET_PATH, params={"processInstanceId": instance_id})
        instance = body.get("result")
        if not isinstance(instance, dict):
            raise call.error(BadResponseError, "no result object in the response", retryable=False)
        return instance

    def iter_instances(self, process_code: str, start: datetime, end: datetime) -> Iterator[RawRecord]:
        """Every instance of ``process_code`` created in ``[start, end)``, in listing order."""
        for instance_id, instance in self._details(self.iter_instance_ids(process_code, start, end)):
            yield RawRecord(system=SYSTEM, kind=process_code, source_id=instance_id, payload=instance)

    # --- write-back -------------------------------------------------------------------------
    # Sent once per call (``_writer``: no retries), as the topapi client's; the ledger settles a
    # doubtful call with ``find_comment``.

    def add_comment(self, instance_id: str, text: str, comment_userid: str) -> dict[str, Any]:
        """``POST /v1.0/workflow/processInstances/comments`` ``{processInstanceId, text, commentUserId}``
        (source-systems.md §1.5; the SDK's ``add_process_instance_comment``, real-clients.md §1.1)."""
        call = Call(SYSTEM, "processInstances/comments", f"processInstanceId={instance_id}")
        body = {"processInstanceId": instance_id, "text": text, "commentUserId": comment_userid}
        return self._writer().request(call, "POST", COMMENTS_PATH, json=body)

    def create_process_instance(self, body: dict[str, Any]) -> str:
        """``POST /v1.0/workflow/processInstances`` (real-clients.md §4.1, the SDK's
        ``start_process_instance``); returns ``instanceId``. Sent once: a create has no idempotency key."""
        call = Call(SYSTEM, "processInstances/create", f"processCode={body.get('processCode')}")
        answer = self._writer().request(call, "POST", GET_PATH, json=body)
        if not answer.get("instanceId"):
            raise call.error(BadResponseError, "no instanceId in the response", retryable=False)
        return str(answer["instanceId"])

    def find_comment(self, instance_id: str, marker: str) -> dict[str, Any] | None:
        """The instance's comment containing ``marker``: an ``operationRecords`` entry of type
        ``ADD_REMARK`` (§1.3, §1.4), or None."""
        for record in self.get_instance(instance_id).get("operationRecords") or []:
            if record.get("type") == "ADD_REMARK" and marker in str(record.get("remark") or ""):
                return dict(record)
        return None
