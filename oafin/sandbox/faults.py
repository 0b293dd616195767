"""Call log and fault injection for the fake servers, as one ASGI middleware per app.

Tests arm faults on the running sandbox (``handle.faults.inject("dingtalk", "http_429")``);
the next matching call gets the fault instead of (or on top of) its normal answer, and
every call is logged with its final status and the time it was answered.

``faults.set_rate(0.1, seed=7)`` adds random faults: each read call (token, login, list, get,
query) that no armed fault matches gets, with probability 0.1, one kind drawn (seeded) from
those that apply to it. ``oafin sandbox serve --fault-rate R`` and ``oafin demo --fault-rate R``
use this with ``RANDOM_KINDS``: the faults a correct client survives without any change to what
it finally lands (so a demo's exceptions.csv equals the fault-free one's).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

from starlette.types import ASGIApp, Message, Receive, Scope, Send

System = Literal["dingtalk", "kingdee"]
FaultKind = Literal[
    "http_429",
    "http_500",
    "http_502",
    "http_503",
    "rate_limit_code",
    "malformed_json",
    "token_expired",
    "slow",
    "connection_reset",
    "duplicate_record",
    "edited_record",
    "schema_drift",
    "renamed_field",
    "invalid_utf8",
]
SYSTEMS: Final = ("dingtalk", "kingdee")
FAULT_KINDS: Final = get_args(FaultKind)
# Faults on the wire: any call may get them.
TRANSPORT_KINDS: Final = (
    "http_429",
    "http_500",
    "http_502",
    "http_503",
    "slow",
    "connection_reset",
    "malformed_json",
)
# Faults in the data, and the calls they apply to (a path fragment per system).
DATA_KINDS: Final[dict[str, dict[str, str]]] = {
    # the same record on two pages: DingTalk's cursor is the server's, so the page starts one
    # record early; a Kingdee page repeats a row (one row per entry line does that for real)
    "duplicate_record": {"dingtalk": "/processinstance/listids", "kingdee": "ExecuteBillQuery"},
    # the record as it was just before an edit that lands right after it was read: an approved
    # DingTalk instance still running, an audited Kingdee bill still in review
    "edited_record": {"dingtalk": "/processinstance/get", "kingdee": "ExecuteBillQuery"},
    # a field the mapping does not know appears (top level and in the form)
    "schema_drift": {"dingtalk": "/processinstance/get"},
    # a form field renamed (报销金额 → 报销金额(元)): the record cannot be mapped
    "renamed_field": {"dingtalk": "/processinstance/get"},
    # bytes that are not UTF-8 inside a text field of the page (the claim's purpose, 报销事由)
    "invalid_utf8": {"dingtalk": "/processinstance/get"},
}
# What --fault-rate draws from: every fault a correct client survives with the same final data.
RANDOM_KINDS: Final = (
    *TRANSPORT_KINDS,
    "rate_limit_code",
    "token_expired",
    "duplicate_record",
    "schema_drift",
)
# Random faults only hit the read API, never the write-back calls.
READ_PATHS: Final = (
    "/gettoken",
    "/processinstance/listids",
    "/processinstance/get",
    "LoginByAppSecret",
    "ExecuteBillQuery",
)
DEFAULT_SLOW_SECONDS: Final = 1.5
RENAMED_FIELD: Final = ("报销金额", "报销金额(元)")
DRIFT_FIELD: Final = "biz_data_v2"
UTF8_FIELD: Final = "报销事由"
_UTF8_MARK: Final = "@@oafin-invalid-utf8@@"
# Systems with a documented "too many calls" code answered with HTTP 200 (source-systems.md §1.6:
# DingTalk 90018). Kingdee documents none (§7.5), so it has no such fault.
RATE_LIMIT_BODIES: Final[dict[str, dict[str, Any]]] = {
    "dingtalk": {"errcode": 90018, "errmsg": "当前企业调用该接口超过限制，请稍后再试"},
}
_HTTP_FAULTS: Final = {"http_429": 429, "http_500": 500, "http_502": 502, "http_503": 503}


@dataclass(frozen=True)
class Call:
    system: str
    method: str
    path: str
    status: int
    fault: str | None = None
    at: float = field(default_factory=time.monotonic)


class CallLog:
    """Every call the fake servers answered, in order (thread-safe; the servers run in threads)."""

    def __init__(self) -> None:
        self._calls: list[Call] = []
        self._lock = threading.Lock()

    def record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()

    def snapshot(self, system: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if system is None or c.system == system]

    def count(self, path_contains: str = "", system: str | None = None) -> int:
        return sum(path_contains in c.path for c in self.snapshot(system))

    def __iter__(self) -> Iterator[Call]:
        return iter(self.snapshot())

    def __len__(self) -> int:
        return len(self.snapshot())


@dataclass
class Fault:
    system: str
    kind: str
    path_contains: str
    times: int


def applies(kind: str, system: str, path: str, *, authed: bool) -> bool:
    """Whether ``kind`` can hit this call (a random fault is drawn only among those that can)."""
    if kind in TRANSPORT_KINDS:
        return True
    if kind == "token_expired":
        return authed
    if kind == "rate_limit_code":
        return system in RATE_LIMIT_BODIES
    target = DATA_KINDS.get(kind, {}).get(system)
    return target is not None and target in path


class FaultPlan:
    """Faults armed for the next matching calls, first armed first served; random ones at a rate."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.rate = 0.0
        self.kinds: tuple[str, ...] = RANDOM_KINDS
        self.slow_seconds = DEFAULT_SLOW_SECONDS
        self._random = random.Random(0)

    def set_rate(
        self,
        rate: float,
        *,
        seed: int = 0,
        kinds: tuple[str, ...] | list[str] | None = None,
        slow_seconds: float | None = None,
    ) -> None:
        """Give each read call a random fault with probability ``rate`` (0 turns it off).

        ``kinds`` (default ``RANDOM_KINDS``) are drawn from, seeded; ``slow_seconds`` is how long
        a ``slow`` answer waits (set the client's read timeout below it to see a timeout).
        """
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        kinds = tuple(kinds) if kinds is not None else RANDOM_KINDS
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")
        with self._lock:
            self.rate = rate
            self.kinds = kinds
            self._random = random.Random(seed)
            if slow_seconds is not None:
                self.slow_seconds = slow_seconds

    def inject(self, system: System, kind: FaultKind, *, path_contains: str = "", times: int = 1) -> None:
        """Answer the next ``times`` calls to ``system`` whose path contains ``path_contains`` with ``kind``.

        ``http_429`` (with ``Retry-After: 0``), ``http_500``, ``http_503``: that HTTP status.
        ``rate_limit_code``: HTTP 200 with the system's rate-limit error code (DingTalk 90018).
        ``malformed_json``: the real answer, truncated. ``token_expired``: the token or session
        the call carries is expired first, so the call fails as an expired one would (token and
        login calls themselves are never hit by this fault). ``http_502`` too; ``slow``: the
        answer after ``slow_seconds``; ``connection_reset``: half the answer, then the
        connection drops. Data faults (``DATA_KINDS``) hit only the calls they apply to.
        """
        if system not in SYSTEMS:
            raise ValueError(f"system must be one of {SYSTEMS}, got {system!r}")
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}, got {kind!r}")
        if kind == "rate_limit_code" and system not in RATE_LIMIT_BODIES:
            raise ValueError(f"{system} has no documented rate-limit code")
        if kind in DATA_KINDS and system not in DATA_KINDS[kind]:
            raise ValueError(f"{kind} applies to {sorted(DATA_KINDS[kind])} only")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults.append(Fault(system, kind, path_contains, times))

    def take(self, system: str, path: str, *, authed: bool) -> str | None:
        """The fault for this call, if one is armed; counts it down."""
        with self._lock:
            for fault in self._faults:
                if fault.system != system or fault.path_contains not in path:
                    continue
                if not applies(fault.kind, system, path, authed=authed):
                    continue
                fault.times -= 1
                if fault.times == 0:
                    self._faults.remove(fault)
                return fault.kind
            if self.rate <= 0 or not any(p in path for p in READ_PATHS):
                return None
            if self._random.random() >= self.rate:
                return None
            candidates = [k for k in self.kinds if applies(k, system, path, authed=authed)]
            return self._random.choice(candidates) if candidates else None

    def pending(self) -> list[Fault]:
        with self._lock:
            return [Fault(f.system, f.kind, f.path_contains, f.times) for f in self._faults]

    def clear(self) -> None:
        """Disarm every fault and stop random ones."""
        with self._lock:
            self._faults.clear()
            self.rate = 0.0
            self.kinds = RANDOM_KINDS
            self.slow_seconds = DEFAULT_SLOW_SECONDS


class _ConnectionReset(Exception):
    """Raised inside the app after half an answer went out: uvicorn drops the connection."""


class _QuietReset(logging.Filter):
    """uvicorn logs an app exception as an error; the injected reset is not one."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, _ConnectionReset)


_uvicorn_error = logging.getLogger("uvicorn.error")
if not any(isinstance(f, _QuietReset) for f in _uvicorn_error.filters):
    _uvicorn_error.addFilter(_QuietReset())


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app ``body`` once, then whatever the client sends next."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"{}")
    except ValueError:
        return None


class SandboxMiddleware:
    """Logs each call and applies the armed fault, if any, around one fake system's app.

    ``expire_credential`` expires the token or session the request carries; ``is_authed``
    tells calls that need one from token and login calls.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        system: str,
        faults: FaultPlan,
        calls: CallLog,
        expire_credential: Callable[[Scope], None],
        is_authed: Callable[[str], bool],
    ) -> None:
        self.app = app
        self.system = system
        self.faults = faults
        self.calls = calls
        self.expire_credential = expire_credential
        self.is_authed = is_authed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        kind = self.faults.take(self.system, path, authed=self.is_authed(path))

        async def logged(message: Message) -> None:
            if message["type"] == "http.response.start":  # logged before the client can see the answer
                self.calls.record(Call(self.system, scope["method"], path, message["status"], kind))
            await send(message)

        if kind in _HTTP_FAULTS:
            headers = {"retry-after": "0"} if kind == "http_429" else {}
            await _send(logged, _HTTP_FAULTS[kind], b"sandbox fault: " + kind.encode(), "text/plain", headers)
        elif kind == "rate_limit_code":
            body = {**RATE_LIMIT_BODIES[self.system], "request_id": uuid.uuid4().hex}
            await _send(logged, 200, json.dumps(body, ensure_ascii=False).encode(), "application/json")
        elif kind == "malformed_json":
            await self._truncated(scope, receive, logged)
        elif kind == "slow":
            # The request is read first: by the time the answer is ready the client may be gone.
            request_body = await _read_body(receive)
            await asyncio.sleep(self.faults.slow_seconds)  # past the client's read timeout, if short
            await self.app(scope, _replay(request_body, receive), logged)
        elif kind == "connection_reset":
            await self._reset(scope, receive, logged)
        elif kind in DATA_KINDS:
            await self._rewritten(kind, scope, receive, logged)
        else:
            if kind == "token_expired":
                self.expire_credential(scope)
            await self.app(scope, receive, logged)

    async def _truncated(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The real answer cut in half: a body no JSON parser accepts, with a matching length."""
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        body = body[: max(1, len(body) // 2)]
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": start.get("status", 200), "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _captured(self, scope: Scope, receive: Receive) -> tuple[dict[str, Any], bytes]:
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        return start, b"".join(chunks)

    async def _reset(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Half the answer, then the connection drops (the client sees an incomplete body)."""
        start, body = await self._captured(scope, receive)
        await send(
            {
                "type": "http.response.start",
                "status": start.get("status", 200),
                "headers": start.get("headers", []),
            }
        )
        await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
        raise _ConnectionReset("sandbox fault: connection_reset")

    async def _rewritten(self, kind: str, scope: Scope, receive: Receive, send: Send) -> None:
        """The real answer with its data changed as ``kind`` says (``DATA_KINDS``)."""
        raw = await _read_body(receive)
        request = _json(raw)
        if kind == "duplicate_record" and self.system == "dingtalk" and isinstance(request, dict):
            cursor = request.get("cursor") or 0
            if isinstance(cursor, int) and cursor > 0:
                request = {**request, "cursor": cursor - 1}  # the page starts one record early
                raw = json.dumps(request).encode()
        start, body = await self._captured(scope, _replay(raw, receive))
        answer = _json(body)
        if answer is not None:
            answer = _change(kind, self.system, request, answer)
            body = json.dumps(answer, ensure_ascii=False).encode()
            if kind == "invalid_utf8":
                body = body.replace(_UTF8_MARK.encode(), b"\xff\xfe", 1)
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": start.get("status", 200), "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _kingdee_keys(request: Any) -> list[str]:
    data = request.get("data") if isinstance(request, dict) else None
    if isinstance(data, str):
        data = _json(data.encode())
    keys = data.get("FieldKeys", "") if isinstance(data, dict) else ""
    return [k.strip().lower() for k in str(keys).split(",")]


def _change(kind: str, system: str, request: Any, answer: Any) -> Any:
    """The data fault applied to a decoded answer (unchanged where it does not apply)."""
    if system == "kingdee":
        rows = answer if isinstance(answer, list) and all(isinstance(r, list) for r in answer) else None
        if not rows:
            return answer
        data = request.get("data") if isinstance(request, dict) else None
        limit = data.get("Limit") if isinstance(data, dict) else None
        if kind == "duplicate_record" and isinstance(limit, int) and len(rows) < limit:
            return [*rows, list(rows[0])]
        if kind == "edited_record":
            keys = _kingdee_keys(request)
            for name, before in (("fdocumentstatus", "B"),):
                if name in keys:
                    i = keys.index(name)
                    for row in rows:
                        if row[i] == "C":
                            row[i] = before  # audited → still in review when read
                            break
        return rows
    instance = answer.get("process_instance") if isinstance(answer, dict) else None
    if not isinstance(instance, dict):
        return answer
    if kind == "edited_record" and instance.get("status") == "COMPLETED":
        instance.update(status="RUNNING", result="")
    elif kind == "schema_drift":
        instance[DRIFT_FIELD] = {"source": "sandbox schema drift", "version": 2}
        forms = list(instance.get("form_component_values") or [])
        forms.append(
            {"name": "新增字段", "value": "drift", "id": "TextField_DRIFT", "component_type": "TextField"}
        )
        instance["form_component_values"] = forms
    elif kind == "invalid_utf8":
        for comp in instance.get("form_component_values") or []:
            if isinstance(comp, dict) and comp.get("name") == UTF8_FIELD:
                comp["value"] = f"{comp.get('value') or ''}{_UTF8_MARK}"  # becomes bytes 0xFF 0xFE
                break
    elif kind == "renamed_field":
        old, new = RENAMED_FIELD
        instance["form_component_values"] = [
            {**c, "name": new} if isinstance(c, dict) and c.get("name") == old else c
            for c in instance.get("form_component_values") or []
        ]
    return answer


async def _send(
    send: Send, status: int, body: bytes, media: str, extra: dict[str, str] | None = None
) -> None:
    headers = [
        (b"content-type", f"{media}; charset=utf-8".encode()),
        (b"content-length", str(len(body)).encode()),
        *((k.encode(), v.encode()) for k, v in (extra or {}).items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
