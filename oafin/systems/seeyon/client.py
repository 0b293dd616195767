"""Seeyon A8/V5 (致远) REST: a token, the CAP4 form export by template code and date range, flow state.

Facts from source-systems.md §5 and real-clients.md §1.6, §2.4 (newer; it corrects §5). There is
no Python SDK (real-clients.md §1.6); ``sdk-snippets/seeyon_httpx.py`` is the documented pattern:

- ``POST {rest}/token`` with ``{"userName", "password", "loginName"?}`` answers ``{"id": ...}``
  [C]; the id goes on every later call as header ``token:`` (or query ``?token=``) [C]. Its
  lifetime is not documented [U], so the token is kept until the server refuses it: 401
  ``{"code": "1010", "message": "被迫下线"}`` [U], and fetched once more (one public client does).
- When the REST whitelist does not admit the caller, ``/seeyon/rest/**`` answers **HTTP 401 with
  an HTML page** ("您没有权限访问此资源") for real and fake accounts alike [C] (§2.4). That is an
  administrator's setting, not a wrong password nor a broken server: ``WhitelistClosedError``
  says so, whatever call met it.
- ``POST {rest}/cap4/form/soap/export`` with ``{templateCode, rightId, beginDateTime,
  endDateTime, page, pageSize}`` [C]; dates as ``yyyy-MM-dd`` (§2.4). Records at
  ``data.data.data[]``, field definitions at ``data.data.definition`` [C]. The answer carries no
  record count [U], so a page shorter than ``pageSize`` is the last (``PageIndexPager``).
- ``GET {rest}/flow/state/{flowId}`` [C]: the flow's state. Its body is not documented [U]:
  oafin reads ``{"code", "data": {...}}`` and lands ``data`` in the record as ``flowState``.

Dates are whole days, so the server's window is wider than the one asked; the client keeps only
records whose timestamp (the mapping's ``date_field``) lies in ``[start, end)``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

import httpx

from oafin.connectors.auth import Credential, TokenAuth
from oafin.connectors.errors import (
    AuthError,
    BadRecordError,
    BadResponseError,
    ConnectorError,
    SourceError,
    TokenExpiredError,
    unreadable_payload,
)
from oafin.connectors.http import DEFAULT_TIMEOUTS, ApiClient, Call, SystemClient, Timeouts
from oafin.connectors.limits import DEFAULT_RETRY, Acquire, RateLimiter, RetryPolicy
from oafin.connectors.ordered import ordered_map
from oafin.connectors.paging import PageIndexPager, PagingError
from oafin.records import RawRecord

logger = logging.getLogger(__name__)

SYSTEM: Final = "seeyon"
SHANGHAI: Final = ZoneInfo("Asia/Shanghai")
DEFAULT_REST_PATH: Final = "/seeyon/rest"
DEFAULT_PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 1000  # no documented cap [U]; the twin refuses more
# Seeyon documents no rate limit (§5); an on-premises OA server is shared with its users.
SEEYON_REQUESTS_PER_SECOND: Final = 10.0
# 401 JSON answers meaning "this token is dead" (§5: {"code":"1010","message":"被迫下线"} [U]).
TOKEN_DEAD_CODES: Final = frozenset({"1010"})
TOKEN_DEAD_MESSAGES: Final = ("被迫下线", "token失效", "token不存在", "invalid token")
SUCCESS_CODES: Final = frozenset({"0", "200", "success", "SUCCESS"})
FLOW_STATE_KEY: Final = "flowState"  # where oafin lands the flow/state answer's data in a record
FIELD_CODE: Final = re.compile(r"^field\d+$")
WHITELIST_PAGE: Final = "您没有权限访问此资源"


class WhitelistClosedError(AuthError):
    """HTTP 401 with an HTML page: the Seeyon REST whitelist does not admit this server (§2.4)."""


class MappingFieldsMissingError(SourceError):
    """The mapping names form fields the form's definition (``data.data.definition``) lacks."""


def whitelist_detail(detail: str) -> str:
    return (
        "HTTP 401 with an HTML page instead of JSON: Seeyon's REST whitelist does not admit this "
        "server (Seeyon answers so for any account, right or wrong). Ask the Seeyon administrator to "
        "add this server's IP address to the REST whitelist (系统管理 > REST用户管理 / IP白名单) and to "
        "confirm the REST user exists and is enabled, then retry the run. "
        f"The page began: {detail.removeprefix('HTTP 401: ')[:80]}"
    )


def _is_html_401(exc: ConnectorError) -> bool:
    body = exc.detail.removeprefix("HTTP 401: ").lstrip()
    return (
        isinstance(exc, AuthError)
        and exc.detail.startswith("HTTP 401: ")
        and (body.startswith("<") or WHITELIST_PAGE in body)
    )


def as_whitelist_error(exc: ConnectorError) -> ConnectorError:
    """The whitelist error for an HTML 401 (whichever call met it), else ``exc`` unchanged."""
    if isinstance(exc, WhitelistClosedError) or not _is_html_401(exc):
        return exc
    return WhitelistClosedError(exc.system, exc.call, whitelist_detail(exc.detail))


def _code(body: dict[str, Any]) -> str | None:
    code = body.get("code")
    return None if code is None else str(code).strip()


def check_envelope(call: Call, body: Any, response: httpx.Response) -> None:
    """Seeyon REST answers ``{"code", "message", "data"}``; code 0 (or absent, by build) is success."""
    if not isinstance(body, dict):
        raise call.error(BadResponseError, f"expected a JSON object, got {type(body).__name__}")
    code, message = _code(body), str(body.get("message") or body.get("msg") or "")
    dead = code in TOKEN_DEAD_CODES or any(m in message for m in TOKEN_DEAD_MESSAGES)
    if response.status_code == 401 or dead:
        if dead:
            # a dead token, not a wrong one: a fresh token may meet it again when threads race a
            # refresh, so up to MAX_EXPIRED_REFRESHES refreshes per call (``retryable``)
            raise call.error(TokenExpiredError, f"token refused (code {code}: {message})", retryable=True)
        raise call.error(AuthError, f"HTTP 401 (code {code}: {message})")
    if code is None or code in SUCCESS_CODES:
        return
    raise call.error(SourceError, f"code {code}: {message}")


def check_token(call: Call, body: Any, response: httpx.Response) -> None:
    """``POST /token``: ``{"id": "<token>"}`` (§5, §2.4); anything else is a refusal."""
    try:
        check_envelope(call, body, response)
    except (SourceError, TokenExpiredError) as exc:
        raise call.error(AuthError, exc.detail) from None
    if not isinstance(body.get("id"), str) or not body["id"].strip():
        raise call.error(AuthError, "no token id in the answer: the REST user or password was refused")


def dig(obj: Any, path: str) -> Any:
    """``a.b.c`` from nested dicts; None where a step is missing."""
    for part in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def definition_fields(definition: Any) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """(master field code -> display name, sub-table name -> its fields) from ``data.data.definition``.

    The definition's layout is not documented beyond its place [U]: every object with a ``name``
    like ``field0003`` is a field (its display name from ``display``/``displayName``/``label``),
    and one inside an object whose ``tableName``/``name`` is ``formson_*`` belongs to that sub-table.
    """
    master: dict[str, str] = {}
    subs: dict[str, dict[str, str]] = {}

    def walk(node: Any, table: str | None) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, table)
            return
        if not isinstance(node, dict):
            return
        name = str(node.get("name") or node.get("fieldName") or "")
        table_name = str(node.get("tableName") or (name if name.startswith("formson_") else ""))
        if table_name.startswith("formson_"):
            subs.setdefault(table_name, {})
            table = table_name
        if FIELD_CODE.match(name):
            display = str(node.get("display") or node.get("displayName") or node.get("label") or "")
            (subs[table] if table else master)[name] = display
        for value in node.values():
            if isinstance(value, dict | list):
                walk(value, table)

    walk(definition, None)
    return master, subs


def missing_fields(wanted: tuple[str, ...], definition: Any) -> list[str]:
    """The wanted codes (``field0003``, ``formson_0232``, ``formson_0232.field0010``) the definition lacks."""
    master, subs = definition_fields(definition)
    every = set(master) | {code for fields in subs.values() for code in fields}
    missing = []
    for want in wanted:
        table, _, code = want.partition(".")
        if code:
            ok = table in subs and code in subs[table]
        elif want.startswith("formson_"):
            ok = want in subs
        else:
            ok = want in every
        if not ok:
            missing.append(want)
    return missing


def describe_definition(definition: Any) -> str:
    master, subs = definition_fields(definition)
    parts = [", ".join(f"{c} ({d})" if d else c for c, d in sorted(master.items()))]
    for table, fields in sorted(subs.items()):
        inner = ", ".join(f"{c} ({d})" if d else c for c, d in sorted(fields.items()))
        parts.append(f"sub-table {table}: {inner}")
    return "; ".join(p for p in parts if p) or "none"


class SeeyonClient(SystemClient):
    """Reads CAP4 form records of one template and their flow state.

    >>> with SeeyonClient(url, "rest-user", "pwd") as oa:  # doctest: +SKIP
    ...     for record in oa.iter_form_records("BX001", start, end, wanted=("field0003",)): ...
    """

    def __init__(
        self,
        base_url: str,
        user_name: str,
        password: str,
        *,
        rest_path: str = DEFAULT_REST_PATH,
        login_name: str | None = None,
        right_id: str = "-1.-2",
        token_in: Literal["header", "query"] = "header",
        date_format: str = "%Y-%m-%d",
        end_date_inclusive: bool = True,
        record_time_format: str = "%Y-%m-%d %H:%M:%S",
        flow_id_key: str = "summaryId",
        read_flow_state: bool = True,
        page_size: int = DEFAULT_PAGE_SIZE,
        workers: int = 4,
        http: httpx.Client | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        limiter: Acquire | None = None,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}")
        self.user_name = user_name
        self._password = password
        self.login_name = login_name
        self.rest = "/" + rest_path.strip("/")
        self.right_id = right_id
        self.date_format = date_format
        self.end_date_inclusive = end_date_inclusive
        self.record_time_format = record_time_format
        self.flow_id_key = flow_id_key
        self.read_flow_state = read_flow_state
        self.page_size = page_size
        self.workers = max(1, workers)
        # §5: header "token: <id>" or query "?token=" [C]
        self.auth = TokenAuth(self._fetch_token, place=token_in, name="token", refresh_margin=0.0)
        self.api = ApiClient(
            SYSTEM,
            base_url,
            auth=self.auth,
            http=http,
            timeouts=timeouts,
            retry=retry,
            limiter=limiter or RateLimiter(SEEYON_REQUESTS_PER_SECOND),
            secrets=[password],
            check=check_envelope,
        )

    def _request(self, call: Call, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return self.api.request(call, method, self.rest + path, **kwargs)
        except ConnectorError as exc:
            raise as_whitelist_error(exc) from exc.__cause__

    def _fetch_token(self) -> Credential:
        body: dict[str, Any] = {"userName": self.user_name, "password": self._password}
        if self.login_name:
            body["loginName"] = self.login_name
        answer = self._request(
            Call(SYSTEM, "token"), "POST", "/token", json=body, authed=False, check=check_token
        )
        # lifetime undocumented (§2.4): kept until refused
        return Credential(str(answer["id"]).strip(), None)

    # -- dates ---------------------------------------------------------------------------------
    def date_range(self, start: datetime, end: datetime) -> tuple[str, str]:
        """The export's ``beginDateTime``/``endDateTime`` covering ``[start, end)``, China dates.

        Whether ``endDateTime`` is inclusive is undocumented [U]: with ``end_date_inclusive``
        (the default) the last day asked is the day of ``end - 1 µs``, else the day after it.
        """
        first = start.astimezone(SHANGHAI).date()
        last = (end - timedelta(microseconds=1)).astimezone(SHANGHAI).date()
        if not self.end_date_inclusive:
            last += timedelta(days=1)
        fmt = self.date_format
        return (
            datetime.combine(first, datetime.min.time()).strftime(fmt),
            datetime.combine(last, datetime.min.time()).strftime(fmt),
        )

    def record_time(self, record: dict[str, Any], date_path: str) -> datetime | None:
        raw = dig(record, date_path)
        try:
            return datetime.strptime(str(raw).strip(), self.record_time_format).replace(tzinfo=SHANGHAI)
        except (TypeError, ValueError):
            return None

    # -- reads ---------------------------------------------------------------------------------
    def export_pages(
        self, template_code: str, start: datetime, end: datetime, *, wanted: tuple[str, ...] = ()
    ) -> Iterator[list[dict[str, Any]]]:
        """The export's pages of records. Before the first record, the mapping's ``wanted`` field
        codes are checked against the form's definition (``MappingFieldsMissingError``)."""
        begin, finish = self.date_range(start, end)
        checked = False

        def fetch(paging: dict[str, Any]) -> Any:
            nonlocal checked
            call = Call(
                SYSTEM, "cap4/form/soap/export", f"templateCode={template_code}, page={paging['page']}"
            )
            body = {
                "templateCode": template_code,
                "rightId": self.right_id,
                "beginDateTime": begin,
                "endDateTime": finish,
                **paging,
            }
            answer = self._request(call, "POST", "/cap4/form/soap/export", json=body)
            service = answer.get("data")  # the CAP4 service's own {code, message, data} [U]
            code = _code(service) if isinstance(service, dict) else None
            if code is not None and code not in SUCCESS_CODES:
                raise call.error(SourceError, f"code {code}: {service.get('message') or ''}")
            inner = dig(answer, "data.data")
            if not isinstance(inner, dict) or not isinstance(inner.get("data"), list):
                raise call.error(BadResponseError, "no data.data.data list in the answer", retryable=False)
            if not checked:
                definition = inner.get("definition")
                if definition is None:
                    raise call.error(
                        BadResponseError, "no data.data.definition in the answer", retryable=False
                    )
                missing = missing_fields(wanted, definition)
                if missing:
                    raise call.error(
                        MappingFieldsMissingError,
                        f"the mapping names {', '.join(missing)}, which form {template_code}'s definition "
                        f"does not have; its fields are: {describe_definition(definition)}. Edit the "
                        "mapping file to name this deployment's fields (field codes differ per deployment)",
                    )
                checked = True
            return inner

        pager = PageIndexPager(
            items=lambda inner: inner.get("data"),
            index_param="page",
            size_param="pageSize",
            size=self.page_size,
        )
        try:
            yield from pager.pages(fetch)
        except PagingError as exc:
            call = Call(SYSTEM, "cap4/form/soap/export", f"templateCode={template_code}")
            raise call.error(BadResponseError, str(exc), retryable=False) from None

    def flow_state(self, flow_id: str) -> dict[str, Any]:
        """``GET /flow/state/{flowId}`` (§5 [C]); the answer's ``data`` object [U]."""
        call = Call(SYSTEM, "flow/state", f"flowId={flow_id}")
        answer = self._request(call, "GET", f"/flow/state/{flow_id}")
        data = answer.get("data")
        if not isinstance(data, dict):
            raise call.error(BadResponseError, "no data object in the answer", retryable=False)
        return data

    def iter_form_records(
        self,
        template_code: str,
        start: datetime,
        end: datetime,
        *,
        wanted: tuple[str, ...] = (),
        id_path: str = "masterData.id.value",
        date_path: str = "masterData.start_date.value",
    ) -> Iterator[RawRecord]:
        """Every record of ``template_code`` whose ``date_path`` lies in ``[start, end)``, each once,
        in the export's order, with its flow state under ``flowState`` (read by ``workers`` threads;
        the order is kept)."""
        if end <= start:
            return
        selected = self._selected(template_code, start, end, wanted, id_path, date_path)
        for source_id, payload in self._ordered(selected):
            yield RawRecord(SYSTEM, template_code, source_id, payload)

    def _selected(
        self,
        template_code: str,
        start: datetime,
        end: datetime,
        wanted: tuple[str, ...],
        id_path: str,
        date_path: str,
    ) -> Iterator[tuple[str, dict[str, Any], bool]]:
        """(source id, record, whether its flow state is still to read), each record once."""
        seen: set[str] = set()
        for page in self.export_pages(template_code, start, end, wanted=wanted):
            for record in page:
                if not isinstance(record, dict):
                    raise Call(SYSTEM, "cap4/form/soap/export", f"templateCode={template_code}").error(
                        BadResponseError, f"a record is not an object: {str(record)[:80]}", retryable=False
                    )
                source_id = str(dig(record, id_path) or "").strip()
                if not source_id:
                    # landed under a stable made-up id, to be quarantined (never dropped silently)
                    text = json.dumps(record, sort_keys=True, ensure_ascii=False, default=str)
                    source_id = "no-id-" + hashlib.sha256(text.encode()).hexdigest()[:16]
                    logger.warning(
                        "seeyon %s: a record without %s, landed as unreadable", template_code, id_path
                    )
                    if source_id not in seen:
                        seen.add(source_id)
                        reason = f"seeyon {template_code}: the record has no {id_path}"
                        yield source_id, unreadable_payload(reason), False
                    continue
                if source_id in seen:
                    continue
                moment = self.record_time(record, date_path)
                if moment is not None and not start <= moment < end:
                    continue  # the server's whole-day window is wider than ours
                if moment is None:
                    logger.warning(
                        "seeyon %s %s: %s unreadable, landed to be quarantined",
                        template_code,
                        source_id,
                        date_path,
                    )
                seen.add(source_id)
                yield source_id, record, True

    def _ordered(
        self, selected: Iterator[tuple[str, dict[str, Any], bool]]
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        def done(item: tuple[str, dict[str, Any], bool]) -> dict[str, Any]:
            _, record, needs_state = item
            return self._with_state(record) if needs_state else record

        for item, record in ordered_map(done, selected, self.workers, "seeyon-state"):
            yield item[0], record

    def _with_state(self, record: dict[str, Any]) -> dict[str, Any]:
        flow_id = str(record.get(self.flow_id_key) or "").strip()
        if not flow_id or not self.read_flow_state:
            # a form without a flow, or a build without /flow/state: the mapping reads what it has
            return dict(record)
        try:
            return {**record, FLOW_STATE_KEY: self.flow_state(flow_id)}
        except BadRecordError as exc:
            logger.warning("%s: landed as unreadable, to be quarantined", exc)
            return unreadable_payload(str(exc))
