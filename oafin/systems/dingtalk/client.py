"""DingTalk approval (钉钉 OA审批), old topapi API: list instance ids by process code, fetch each.

Shapes from source-systems.md §1.1–1.3 and §1.6. The token goes in the
``access_token`` query parameter; envelopes are ``{errcode, errmsg, ...}``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

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
    DINGTALK_REQUESTS_PER_SECOND,
    Acquire,
    RateLimiter,
    RetryPolicy,
)
from oafin.connectors.ordered import ordered_map
from oafin.connectors.paging import CursorPager, PagingError, unique_ids
from oafin.records import RawRecord

logger = logging.getLogger(__name__)

SYSTEM = "dingtalk"
DEFAULT_BASE_URL = "https://oapi.dingtalk.com"
MAX_PAGE_SIZE = 20  # source-systems.md §1.2: listids "size 最多传20" (one client caps at 10 [U])

# source-systems.md §1.6 and §2.5 (the old DingTalk and WeCom share these token codes). Real topapi
# also nests them: errcode 88 with sub_code "40014" for a dead token (§1.6 "on errcode 88 read
# sub_code"; issue #10 item 1). SDKs refresh on these and on 40001/33001 (real-clients.md §1.2).
TOKEN_EXPIRED_CODES = frozenset({40014, 42001, 40001, 33001})
# 90018 app>40/s per API, 90006 app>1500/min, 90005 corp>1500/min, 90002 platform-wide, 90019 ISV [U].
RATE_LIMIT_CODES = frozenset({90018, 90006, 90005, 90002, 90019})
BUSY_CODES = frozenset({-1})  # "system busy; retry at most 3 times"
QUOTA_CODES = frozenset({90020})  # the corp's monthly quota is spent: waiting minutes will not help
PERMISSION_CODES = frozenset({88})  # auth/permission; the reason is in sub_code/sub_msg

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch, exactly (no float), of an aware datetime."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: pass a timezone-aware one")
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def check_envelope(call: Call, body: Any, response: httpx.Response) -> None:
    """Classify an old-API envelope: errcode 0 is success (source-systems.md §1.6)."""
    if not isinstance(body, dict):
        raise call.error(BadResponseError, f"expected a JSON object, got {type(body).__name__}")
    if "errcode" not in body and "punish" in body:
        # Per-IP limit (10k calls / 20 s): a WAF body, not an errcode (§1.6).
        wait = body.get("wait")
        raise call.error(
            RateLimitedError,
            f"blocked by the per-IP limit (status {body.get('status')})",
            retry_after=float(wait) if isinstance(wait, int | float) else None,
        )
    if "errcode" not in body:
        raise call.error(BadResponseError, "response has no errcode")
    try:
        code = int(body["errcode"])
    except (TypeError, ValueError):
        raise call.error(BadResponseError, f"errcode is not a number: {body['errcode']!r}") from None
    if code == 0:
        return
    reason = f"errcode {code}: {body.get('errmsg', '')}"
    if body.get("sub_code") or body.get("sub_msg"):
        reason += f" (sub_code {body.get('sub_code')}: {body.get('sub_msg', '')})"
    sub_code = _int_or_none(body.get("sub_code"))
    if code in TOKEN_EXPIRED_CODES or (code in PERMISSION_CODES and sub_code in TOKEN_EXPIRED_CODES):
        # a fresh token may meet the answer again when threads race a refresh
        expired = code == 42001 or sub_code in TOKEN_EXPIRED_CODES
        raise call.error(TokenExpiredError, reason, retryable=expired)
    if code in RATE_LIMIT_CODES:
        raise call.error(RateLimitedError, reason)
    if code in BUSY_CODES:
        raise call.error(TransientError, reason)
    if code in QUOTA_CODES:
        raise call.error(RateLimitedError, reason, retryable=False)
    if code in PERMISSION_CODES:
        raise call.error(AuthError, reason)
    raise call.error(SourceError, reason)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def check_token_envelope(call: Call, body: Any, response: httpx.Response) -> None:
    """``gettoken``: a refusal means bad credentials (e.g. 40089), which never heal."""
    try:
        check_envelope(call, body, response)
    except (SourceError, TokenExpiredError) as exc:
        raise call.error(AuthError, exc.detail) from None
    if not body.get("access_token"):
        raise call.error(BadResponseError, "no access_token in the response", retryable=False)


class DingTalkClient(SystemClient):
    """Reads approval instances from DingTalk's old (topapi) API.

    >>> with DingTalkClient(url, key, secret) as dt:  # doctest: +SKIP
    ...     for record in dt.iter_instances("PROC-OAFIN-EXPENSE", start, end): ...

    ``workers`` threads fetch instance details concurrently; records still come
    out in the order ``listids`` returned the ids.
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
            self._fetch_token, place="query", name="access_token", refresh_margin=token_refresh_margin
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
            check=check_envelope,
        )

    def _fetch_token(self) -> Credential:
        # source-systems.md §1.1: GET /gettoken?appkey=&appsecret= -> {access_token, expires_in}
        body = self.api.request(
            Call(SYSTEM, "gettoken"),
            "GET",
            "/gettoken",
            params={"appkey": self.app_key, "appsecret": self._app_secret},
            authed=False,
            check=check_token_envelope,
        )
        expires_in = body.get("expires_in")
        return Credential(str(body["access_token"]), float(expires_in) if expires_in is not None else 7200.0)

    def iter_instance_ids(self, process_code: str, start: datetime, end: datetime) -> Iterator[str]:
        """Ids of the instances of ``process_code`` created in ``[start, end)``, each once.

        source-systems.md §1.2: POST /topapi/processinstance/listids, ms epoch,
        ``cursor`` from 0, ``result.next_cursor`` absent at the end. Whether
        ``end_time`` is inclusive is undocumented [U]; sending ``end - 1 ms``
        makes the window half-open either way, so adjacent windows never overlap.
        """
        start_ms, end_ms = epoch_ms(start), epoch_ms(end)
        if end_ms <= start_ms:
            return

        def fetch(paging: dict[str, Any]) -> Any:
            call = Call(
                SYSTEM, "processinstance/listids", f"process_code={process_code}, cursor={paging['cursor']}"
            )
            body = self.api.request(
                call,
                "POST",
                "/topapi/processinstance/listids",
                json={"process_code": process_code, "start_time": start_ms, "end_time": end_ms - 1, **paging},
            )
            result = body.get("result")
            if not isinstance(result, dict) or not isinstance(result.get("list", []), list):
                raise call.error(BadResponseError, "no result.list in the response", retryable=False)
            return result

        pager = CursorPager(
            items=lambda result: result.get("list"),
            next_cursor=lambda result: result.get("next_cursor"),
            cursor_param="cursor",
            start=0,
            size_param="size",
            size=self.page_size,
        )
        try:
            yield from unique_ids(pager.pages(fetch))
        except PagingError as exc:
            call = Call(SYSTEM, "processinstance/listids", f"process_code={process_code}")
            raise call.error(BadResponseError, str(exc), retryable=False) from None

    def get_instance(self, instance_id: str) -> dict[str, Any]:
        """The ``process_instance`` object, with ``process_instance_id`` set (source-systems.md §1.3)."""
        call = Call(SYSTEM, "processinstance/get", f"process_instance_id={instance_id}")
        body = self.api.request(
            call, "POST", "/topapi/processinstance/get", json={"process_instance_id": instance_id}
        )
        instance = body.get("process_instance")
        if not isinstance(instance, dict):
            raise call.error(BadResponseError, "no process_instance object in the response", retryable=False)
        return {**instance, "process_instance_id": instance_id}

    def _read_instance(self, instance_id: str) -> dict[str, Any]:
        """``get_instance``, or for a record that cannot be read, what stands for it (quarantined later)."""
        try:
            return self.get_instance(instance_id)
        except BadRecordError as exc:
            logger.warning("%s: landed as unreadable, to be quarantined", exc)
            return unreadable_payload(str(exc))

    # --- write-back (issue #6) -------------------------------------------------------------
    # A write is sent once per call: a timeout or 5xx after sending is ambiguous (it may have
    # landed), so the caller's ledger checks the instance before sending again. Only a refreshed
    # token repeats a call, and a refused token means nothing landed.

    def _writer(self) -> ApiClient:
        if getattr(self, "_write_api", None) is None:
            self._write_api = self.api.sending_once()
        return self._write_api

    def add_comment(self, instance_id: str, text: str, comment_userid: str) -> dict[str, Any]:
        """Add a comment to an approval instance; returns the reply envelope.

        Old API ``POST /topapi/process/instance/comment/add`` (source-systems.md §1.5); the
        request fields ``process_instance_id, text, comment_userid, file`` are those of the
        TOP SDK's AddCommentRequest (a07061625/swooleyaf
        libs_frame/SyDingTalk/ObjEntity/DingTalk/AddCommentRequest.php), sent wrapped in
        ``request`` as the TOP SDK does.
        """
        call = Call(SYSTEM, "process/instance/comment/add", f"process_instance_id={instance_id}")
        body = {
            "request": {"process_instance_id": instance_id, "text": text, "comment_userid": comment_userid}
        }
        return self._writer().request(call, "POST", "/topapi/process/instance/comment/add", json=body)

    def find_comment(self, instance_id: str, marker: str) -> dict[str, Any] | None:
        """The instance's comment containing ``marker``, or None.

        Comments show in ``operation_records`` as ``operation_type`` ADD_REMARK with the text
        in ``remark`` (source-systems.md §1.3, §1.4).
        """
        for record in self.get_instance(instance_id).get("operation_records") or []:
            if record.get("operation_type") == "ADD_REMARK" and marker in str(record.get("remark") or ""):
                return dict(record)
        return None

    # --- approval instances for correction batches (issue #17) ----------------------------------

    def create_instance(
        self,
        process_code: str,
        originator_user_id: str,
        form_component_values: list[dict[str, Any]],
        *,
        dept_id: str = "-1",
        approvers: list[str] | None = None,
    ) -> str:
        """Start an approval instance; returns its ``process_instance_id``.

        real-clients.md §4.1 (old topapi create, dingtalk-sdk 1.3.8): ``POST
        /topapi/processinstance/create`` with ``process_code, originator_user_id, dept_id,
        approvers`` (comma-separated) and ``form_component_values[{name, value}]``; the answer
        carries ``process_instance_id``. No idempotency key exists (§4.1): sent once, and a lost
        answer is settled by looking for the instance (``DingTalkApprovals.find``).
        """
        call = Call(SYSTEM, "processinstance/create", f"process_code={process_code}")
        body: dict[str, Any] = {
            "process_code": process_code,
            "originator_user_id": originator_user_id,
            "dept_id": dept_id,
            "form_component_values": form_component_values,
        }
        if approvers:
            body["approvers"] = ",".join(approvers)
        reply = self._writer().request(call, "POST", "/topapi/processinstance/create", json=body)
        instance_id = reply.get("process_instance_id")
        if not instance_id:
            raise call.error(BadResponseError, "no process_instance_id in the response", retryable=False)
        return str(instance_id)

    def execute_task(
        self, instance_id: str, task_id: str, actioner_userid: str, result: str, remark: str = ""
    ) -> dict[str, Any]:
        """Agree or refuse one task (source-systems.md §1.5: old ``/topapi/process/instance/execute``;
        the fields are v1.0's ``processInstanceId, taskId, actionerUserId, result, remark`` in
        snake case, wrapped in ``request`` as comment/add is [U]). Used by the sandbox's scripted
        approver; oafin itself never decides an instance."""
        call = Call(SYSTEM, "process/instance/execute", f"process_instance_id={instance_id}")
        req = {
            "process_instance_id": instance_id,
            "task_id": task_id,
            "actioner_userid": actioner_userid,
            "result": result,
            "remark": remark,
        }
        return self._writer().request(call, "POST", "/topapi/process/instance/execute", json={"request": req})

    def terminate_instance(self, instance_id: str, operating_userid: str, remark: str = "") -> dict[str, Any]:
        """Withdraw (撤销) an instance (source-systems.md §1.5: old ``/topapi/process/instance/terminate``,
        v1.0's ``processInstanceId, isSystem, remark, operatingUserId`` in snake case [U])."""
        call = Call(SYSTEM, "process/instance/terminate", f"process_instance_id={instance_id}")
        req = {
            "process_instance_id": instance_id,
            "is_system": False,
            "remark": remark,
            "operating_userid": operating_userid,
        }
        return self._writer().request(
            call, "POST", "/topapi/process/instance/terminate", json={"request": req}
        )

    def iter_instances(self, process_code: str, start: datetime, end: datetime) -> Iterator[RawRecord]:
        """Every instance of ``process_code`` created in ``[start, end)``, in ``listids`` order."""
        for instance_id, instance in self._details(self.iter_instance_ids(process_code, start, end)):
            yield RawRecord(system=SYSTEM, kind=process_code, source_id=instance_id, payload=instance)

    def _details(self, ids: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
        yield from ordered_map(self._read_instance, ids, self.workers, "dingtalk-get")
