"""Fake WeCom (企业微信) approval API: gettoken, oa/getapprovalinfo, oa/getapprovaldetail.

Shapes from source-systems.md §2.1–2.5 and real-clients.md §1.3, §2.1: every answer is
``{errcode, errmsg, ...}`` with HTTP 200, errors included; the token is the ``access_token``
query parameter; getapprovalinfo takes Unix-second windows of at most 31 days and pages with the
string ``new_cursor`` (→ ``new_next_cursor``, "" at the end) or the legacy int ``cursor``
(→ ``next_cursor``, absent at the end). It takes its filters as ``filters`` (the documented key)
and as ``filter`` (what wechatpy 1.8.18 sends, real-clients.md §1.3), and times as numbers or
digit strings (wechatpy sends strings). Both approval calls can be throttled at 600 a minute
each (real-clients.md §2.1), answered with errcode 45009: ``state.throttle.limit =
CALLS_PER_MINUTE``. The throttle is off by default, because the sandbox serves a month of
thousands of approvals in seconds (``oafin demo`` reads at 500 calls a second); 45009 reaches a
client through the sandbox's ``rate_limit_code`` fault instead. A dead token is answered 42001 (expired)
or, as a test chooses, 40014 (invalid). ``TWIN`` is what the sandbox server mounts.
"""

from __future__ import annotations

import bisect
import json
import threading
import time
from collections import deque
from typing import Any, Final

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Scope

from oafin.sandbox import credentials
from oafin.sandbox.dataset import Dataset
from oafin.sandbox.faults import CallLog, FaultPlan, SandboxMiddleware
from oafin.sandbox.tokens import TokenStore
from oafin.sandbox.twin import Twin
from oafin.systems.wecom.twin_approvals import WeComApprovalDesk, WeComDeskError
from oafin.systems.wecom.twin_faults import FAULTS, RATE_LIMIT_BODY
from oafin.systems.wecom.twin_render import approvals, decode_cursor, department_ids, encode_cursor, userid

TOKEN_LIFETIME: Final = 7200.0  # source-systems.md §2.1: expires_in 7200
MAX_SIZE: Final = 100  # §2.2: size default 100, maximum 100
MAX_SPAN: Final = 31 * 86400  # §2.2: a span of at most 31 days
CALLS_PER_MINUTE: Final = 600  # real-clients.md §2.1: getapprovalinfo and getapprovaldetail, each
# Above this a time is in milliseconds, not seconds (year 2286 in seconds): §2.2 gotcha, 301025.
MAX_SECONDS: Final = 10**10
EXPIRY_ENVELOPES: Final[dict[str, dict[str, Any]]] = {
    "42001": {"errcode": 42001, "errmsg": "access_token expired"},
    "40014": {"errcode": 40014, "errmsg": "invalid access_token"},
}
DEFAULT_EXPIRY: Final = "42001"
BAD_CORPID: Final = (40013, "invalid corpid")
BAD_SECRET: Final = (40001, "invalid credential")
BAD_PARAM: Final = 301025  # real-clients.md §2.1: bad parameters
FILTER_KEYS: Final = ("template_id", "creator", "department", "sp_status", "record_type")


class _Throttle:
    """At most ``limit`` calls a minute per endpoint (a sliding 60-second window)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, endpoint: str) -> bool:
        if self.limit is None:
            return True
        now = time.monotonic()
        with self._lock:
            calls = self._calls.setdefault(endpoint, deque())
            while calls and calls[0] <= now - 60.0:
                calls.popleft()
            if len(calls) >= self.limit:
                return False
            calls.append(now)
            return True

    def clear(self) -> None:
        """Forget the calls counted, and turn the throttle off again."""
        with self._lock:
            self._calls.clear()
            self.limit = None


class _Tokens(TokenStore):
    """The twin's tokens; a sandbox reset also turns the throttle off and forgets its counts."""

    def __init__(self, lifetime: float, throttle: _Throttle) -> None:
        super().__init__(lifetime, reuse=True)  # gettoken returns the same token while valid (§2.1)
        self.throttle = throttle

    def reset(self) -> None:
        super().reset()
        self.throttle.clear()


class WeComState:
    """The approvals indexed for the endpoints, the token store and the per-minute throttle."""

    def __init__(self, dataset: Dataset, token_lifetime: float = TOKEN_LIFETIME) -> None:
        self.throttle = _Throttle(None)  # off; CALLS_PER_MINUTE turns WeCom's limit on
        self.tokens: TokenStore = _Tokens(token_lifetime, self.throttle)
        self.expiry_envelope = DEFAULT_EXPIRY  # a key of EXPIRY_ENVELOPES
        self.approvals: dict[str, dict[str, Any]] = {}
        applied: list[tuple[int, str]] = []
        for info in approvals(dataset):
            self.approvals[info["sp_no"]] = info
            applied.append((int(info["apply_time"]), info["sp_no"]))
        self.applied = sorted(applied)  # (apply_time, sp_no): the listing order
        self.writes: list[dict[str, Any]] = []  # WeCom has no write-back here: stays empty
        # issue #17: forms oafin submits for correction batches, and the scripted approver
        people = sorted(dataset.people, key=lambda p: p.person_id)
        heads = [userid(p) for p in people if p.role == "director"] or [userid(p) for p in people[:1]]
        parties = department_ids(dataset)
        self.desk = WeComApprovalDesk(
            self.approvals,
            self.applied,
            users={userid(p): parties[p.dept_code] for p in people},
            default_approvers=heads[:1],
            applicant_of_claim={c.claim_no: userid(c.originator) for c in dataset.claims},
        )

    def list_sp_nos(self, start: int, end: int, filters: dict[str, set[str]]) -> list[str]:
        """Approval numbers applied for in ``[start, end]`` (seconds) passing ``filters``, in order."""
        lo = bisect.bisect_left(self.applied, (start, ""))
        hi = bisect.bisect_right(self.applied, (end, "\uffff"))
        return [sp_no for _, sp_no in self.applied[lo:hi] if _passes(self.approvals[sp_no], filters)]


def _passes(info: dict[str, Any], filters: dict[str, set[str]]) -> bool:
    """Filters of one key are ORed, of different keys ANDed (§2.2)."""
    facts = {
        "template_id": {str(info.get("template_id"))},
        "creator": {str(info["applyer"]["userid"])},
        "department": {str(info["applyer"]["partyid"])},
        "sp_status": {str(info.get("sp_status"))},
        "record_type": set(),  # the sandbox's expense form is none of the built-in record types
    }
    return all(facts[key] & allowed for key, allowed in filters.items())


def _reply(errcode: int = 0, errmsg: str = "ok", **fields: Any) -> JSONResponse:
    return JSONResponse({"errcode": errcode, "errmsg": errmsg, **fields})


def _bad_param(detail: str, **fields: Any) -> JSONResponse:
    return _reply(BAD_PARAM, f"invalid parameter: {detail}", **fields)


async def _body(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _int(value: Any) -> int | None:
    """A number, or a string of digits (wechatpy sends starttime/endtime as strings)."""
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _filters(body: dict[str, Any]) -> dict[str, set[str]] | str:
    """The filters by key, or what is wrong with them. ``filter`` is wechatpy's spelling (§1.3)."""
    given = body.get("filters", body.get("filter")) or []
    if not isinstance(given, list):
        return "filters must be a list of {key, value}"
    out: dict[str, set[str]] = {}
    for item in given:
        if (
            not isinstance(item, dict)
            or item.get("key") not in FILTER_KEYS
            or item.get("value") in (None, "")
        ):
            return f"bad filter {item!r}; keys: {', '.join(FILTER_KEYS)}"
        out.setdefault(str(item["key"]), set()).add(str(item["value"]))
    return out


def create_wecom_app(
    dataset: Dataset, faults: FaultPlan, calls: CallLog, token_lifetime: float = TOKEN_LIFETIME
) -> Starlette:
    state = WeComState(dataset, token_lifetime)

    def refused(request: Request, endpoint: str) -> JSONResponse | None:
        if state.tokens.check(request.query_params.get("access_token")) != "valid":
            return _reply(**EXPIRY_ENVELOPES[state.expiry_envelope])
        if not state.throttle.allow(endpoint):
            return JSONResponse(dict(RATE_LIMIT_BODY))
        return None

    async def gettoken(request: Request) -> JSONResponse:
        q = request.query_params
        if q.get("corpid") != credentials.WECOM_CORP_ID:
            return _reply(*BAD_CORPID)
        if q.get("corpsecret") != credentials.WECOM_CORP_SECRET:
            return _reply(*BAD_SECRET)
        token = state.tokens.issue()
        lifetime = state.tokens.lifetime
        expires_in = int(lifetime) if lifetime == int(lifetime) else lifetime
        return _reply(access_token=token, expires_in=expires_in)

    async def getapprovalinfo(request: Request) -> JSONResponse:
        if (answer := refused(request, "getapprovalinfo")) is not None:
            return answer
        body = await _body(request)
        if body is None:
            return _bad_param("body is not a JSON object", sp_no_list=[])
        start, end = _int(body.get("starttime")), _int(body.get("endtime"))
        if start is None or end is None or start >= MAX_SECONDS or end >= MAX_SECONDS:
            # §2.2 gotcha: milliseconds give 301025 "invalid starttime or endtime"
            return _bad_param("invalid starttime or endtime", sp_no_list=[])
        if end <= start or end - start > MAX_SPAN:
            return _bad_param("endtime must be after starttime, at most 31 days later", sp_no_list=[])
        size = _int(body.get("size", MAX_SIZE))
        if size is None or not 1 <= size <= MAX_SIZE:
            return _bad_param(f"size must be 1..{MAX_SIZE}", sp_no_list=[])
        filters = _filters(body)
        if isinstance(filters, str):
            return _bad_param(filters, sp_no_list=[])
        sp_nos = state.list_sp_nos(start, end, filters)
        if "new_cursor" in body:
            new = body.get("new_cursor")
            offset = decode_cursor(new) if isinstance(new, str) else None
            if offset is None:
                return _bad_param("invalid new_cursor", sp_no_list=[])
            more = offset + size < len(sp_nos)
            # real-clients.md §2.1: new_next_cursor is "" at the end
            following = encode_cursor(offset + size) if more else ""
            return _reply(sp_no_list=sp_nos[offset : offset + size], new_next_cursor=following)
        offset = _int(body.get("cursor", 0))
        if offset is None or offset < 0:
            return _bad_param("cursor must be a non-negative integer", sp_no_list=[])
        page: dict[str, Any] = {"sp_no_list": sp_nos[offset : offset + size]}
        if offset + size < len(sp_nos):
            page["next_cursor"] = offset + size  # absent at the end (real-clients.md §2.1)
        return _reply(**page)

    async def getapprovaldetail(request: Request) -> JSONResponse:
        if (answer := refused(request, "getapprovaldetail")) is not None:
            return answer
        body = await _body(request)
        if body is None:
            return _bad_param("body is not a JSON object")
        state.desk.on_read(str(body.get("sp_no") or ""))  # the scripted approver acts when its reads are done
        info = state.approvals.get(str(body.get("sp_no") or ""))
        if info is None:
            return _bad_param(f"sp_no {body.get('sp_no')!r} does not exist")
        return _reply(info=info)

    async def gettemplatedetail(request: Request) -> JSONResponse:
        if (answer := refused(request, "gettemplatedetail")) is not None:
            return answer
        body = await _body(request)
        if body is None:
            return _bad_param("body is not a JSON object")
        try:
            return _reply(**state.desk.template(str(body.get("template_id") or "")))
        except WeComDeskError as exc:
            return _reply(exc.code, str(exc))

    async def applyevent(request: Request) -> JSONResponse:
        # real-clients.md §4.2: {"errcode":0,"errmsg":"ok","sp_no":"..."}
        if (answer := refused(request, "applyevent")) is not None:
            return answer
        body = await _body(request)
        if body is None:
            return _bad_param("body is not a JSON object")
        try:
            return _reply(sp_no=state.desk.apply(body))
        except WeComDeskError as exc:
            return _reply(exc.code, str(exc))

    def expire(scope: Scope) -> None:
        state.tokens.expire(Request(scope).query_params.get("access_token"))

    faults.register("wecom", FAULTS)  # now: faults may be armed before the first call
    app = Starlette(
        routes=[
            Route("/cgi-bin/gettoken", gettoken, methods=["GET"]),
            Route("/cgi-bin/oa/getapprovalinfo", getapprovalinfo, methods=["POST"]),
            Route("/cgi-bin/oa/getapprovaldetail", getapprovaldetail, methods=["POST"]),
            Route("/cgi-bin/oa/gettemplatedetail", gettemplatedetail, methods=["POST"]),
            Route("/cgi-bin/oa/applyevent", applyevent, methods=["POST"]),
        ],
        middleware=[
            Middleware(
                SandboxMiddleware,
                system="wecom",
                faults=faults,
                calls=calls,
                expire_credential=expire,
                is_authed=lambda path: not path.endswith("/gettoken"),
                profile=FAULTS,
            )
        ],
    )
    app.state.wecom = state
    return app


def create_app(dataset: Dataset, calls: CallLog, faults: FaultPlan) -> tuple[Starlette, WeComState]:
    app = create_wecom_app(dataset, faults, calls)
    return app, app.state.wecom


TWIN: Final = Twin(
    name="wecom",
    role="oa",
    create_app=create_app,
    default_port=18704,
    credentials={"corp_id": credentials.WECOM_CORP_ID, "corp_secret": credentials.WECOM_CORP_SECRET},
    files=lambda dataset: {"wecom_approvals.json": approvals(dataset)},
    url_path="/cgi-bin",
)
