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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

from starlette.types import ASGIApp, Message, Receive, Scope, Send

System = str  # a twin's name; the twins register what faults they support (FaultProfile)
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
    "ignored_start_row",
    "empty_pages",
    "deep_json",
    "more_without_token",
]
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
# Faults in the data: each twin says which it supports and on which call (FaultProfile.data_paths),
# and how it changes its own answers (FaultProfile.change). The last three make paging that never
# ends (issue #10 item 11) and a value nested 100,000 levels deep (issue #10 item 12);
# ``more_without_token``: a page that says there is more and gives no way to ask for it.
DATA_KINDS: Final = (
    "duplicate_record",
    "edited_record",
    "schema_drift",
    "renamed_field",
    "invalid_utf8",
    "ignored_start_row",
    "empty_pages",
    "deep_json",
    "more_without_token",
)
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
    "/oa/getapprovalinfo",  # WeCom
    "/oa/getapprovaldetail",
    "LoginByAppSecret",
    "ExecuteBillQuery",
    "selfAppAuth/",  # Yonyou token (both paths)
    "queryVouchers",
    "/api/ec/dev/auth/",  # Weaver regist/applytoken (source-systems.md §4.1)
    "/paService/get",  # Weaver lists, counts, details, logs (§4.2); writes are do*/submit*
    "/seeyon/rest/token",
    "/cap4/form/soap/export",
    "/seeyon/rest/flow/state/",
    "/auth/getAccessToken",
    "/docs/getApplyList",
    "/flowDetails",
)
DEFAULT_SLOW_SECONDS: Final = 1.5
# A twin's ``invalid_utf8`` change writes this into a text value; the bytes go out as 0xFF 0xFE.
INVALID_UTF8_MARK: Final = "@@oafin-invalid-utf8@@"
# A twin's ``deep_json`` change writes this string; it goes out as DEEP_LEVELS nested arrays.
DEEP_JSON_MARK: Final = "@@oafin-deep-json@@"
DEEP_LEVELS: Final = 100_000
HOSTILE_KEY: Final = "oafin_nested"  # where deep_json puts its value in a record of named fields


def hostile_value(kind: str, record: Any, key: str | int) -> bool:
    """The hostile-input faults on one record, as every twin applies them (issue #10 item 12):

    ``invalid_utf8``: ``INVALID_UTF8_MARK`` appended to the text at ``record[key]`` (a field the
    mapping reads, so the record is quarantined naming it); ``deep_json``: ``DEEP_JSON_MARK`` put
    beside the record's fields (``HOSTILE_KEY``) or, for a row of cells, at cell ``key``. The
    middleware turns the first mark of an answer into its bytes. False: ``kind`` is neither, or
    the record has no such value.
    """
    if kind == "invalid_utf8":
        if isinstance(record, dict):
            value = record.get(key)
        elif isinstance(record, list) and isinstance(key, int) and -len(record) <= key < len(record):
            value = record[key]
        else:
            return False
        record[key] = f"{'' if value is None else value}{INVALID_UTF8_MARK}"
        return True
    if kind == "deep_json":
        if isinstance(record, dict):
            record[HOSTILE_KEY] = DEEP_JSON_MARK
            return True
        if isinstance(record, list) and isinstance(key, int) and -len(record) <= key < len(record):
            record[key] = DEEP_JSON_MARK
            return True
    return False


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
    body: bytes | None = None  # a canned answer (kind ANSWER): sent as it is, with ``status``
    status: int = 200


ANSWER: Final = "answer"  # the kind of a canned answer armed with FaultPlan.answer


@dataclass(frozen=True)
class FaultProfile:
    """What one twin supports beyond the transport faults every twin gets.

    ``rate_limit_body``: the system's documented "too many calls" answer sent with HTTP 200
    (None: it documents none, so no ``rate_limit_code`` fault). ``data_paths``: data fault kind ->
    a fragment of the path of the call it applies to (or several: a list and a detail call). ``change(kind, request, answer)``: the
    decoded answer with the data fault applied; ``shift_request(kind, request)``: the request the
    twin answers instead (e.g. a page that starts one record early).
    """

    rate_limit_body: Mapping[str, Any] | None = None
    data_paths: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    change: Callable[[str, Any, Any], Any] | None = None
    shift_request: Callable[[str, Any], Any] | None = None
    # The HTTP status the rate-limit answer comes with (DingTalk v1.0 throttles with 403), and the
    # key its request id goes under (``request_id`` on topapi, ``requestid`` on v1.0).
    rate_limit_status: int = 200
    request_id_key: str = "request_id"
    # The body of an injected HTTP error (status -> JSON), for a system whose clients need its
    # error envelope on every 4xx/5xx (the DingTalk v1.0 SDK); None: plain text.
    http_error_body: Callable[[int], Mapping[str, Any]] | None = None
    # Which paths are read calls that random faults may hit; None: any path containing one of
    # READ_PATHS. A system whose write paths extend a read path says it exactly.
    is_read: Callable[[str], bool] | None = None

    def reads(self, path: str) -> bool:
        return self.is_read(path) if self.is_read is not None else any(p in path for p in READ_PATHS)


def applies(kind: str, profile: FaultProfile, path: str, *, authed: bool) -> bool:
    """Whether ``kind`` can hit this call (a random fault is drawn only among those that can)."""
    if kind in TRANSPORT_KINDS:
        return True
    if kind == "token_expired":
        return authed
    if kind == "rate_limit_code":
        return profile.rate_limit_body is not None
    target = profile.data_paths.get(kind)
    if target is None:
        return False
    return any(t in path for t in ((target,) if isinstance(target, str) else target))


class FaultPlan:
    """Faults armed for the next matching calls, first armed first served; random ones at a rate."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._profiles: dict[str, FaultProfile] = {}
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

    def register(self, system: str, profile: FaultProfile) -> None:
        """A twin named ``system`` serves with this plan and supports what ``profile`` says."""
        with self._lock:
            self._profiles[system] = profile

    def profile(self, system: str) -> FaultProfile:
        return self._profiles.get(system, FaultProfile())

    def systems_for(self, kind: str) -> list[str]:
        """The registered twins a data or rate-limit fault ``kind`` applies to."""
        return sorted(
            name
            for name, p in self._profiles.items()
            if kind in p.data_paths or (kind == "rate_limit_code" and p.rate_limit_body is not None)
        )

    def inject(self, system: System, kind: FaultKind, *, path_contains: str = "", times: int = 1) -> None:
        """Answer the next ``times`` calls to ``system`` whose path contains ``path_contains`` with ``kind``.

        ``http_429`` (with ``Retry-After: 0``), ``http_500``, ``http_503``: that HTTP status.
        ``rate_limit_code``: HTTP 200 with the system's rate-limit error code (DingTalk 90018).
        ``malformed_json``: the real answer, truncated. ``token_expired``: the token or session
        the call carries is expired first, so the call fails as an expired one would (token and
        login calls themselves are never hit by this fault). ``http_502`` too; ``slow``: the
        answer after ``slow_seconds``; ``connection_reset``: half the answer, then the
        connection drops. Data faults (``DATA_KINDS``) hit only the calls the twin's
        ``FaultProfile`` applies them to.
        """
        if system not in self._profiles:
            raise ValueError(
                f"system must be one of the running twins {sorted(self._profiles)}, got {system!r}"
            )
        profile = self._profiles[system]
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}, got {kind!r}")
        if kind == "rate_limit_code" and profile.rate_limit_body is None:
            raise ValueError(f"{system} has no documented rate-limit code")
        if kind in DATA_KINDS and kind not in profile.data_paths:
            raise ValueError(f"{kind} applies to {self.systems_for(kind)} only")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults.append(Fault(system, kind, path_contains, times))

    def answer(
        self, system: str, body: Any, *, status: int = 200, path_contains: str = "", times: int = 1
    ) -> None:
        """Answer the next ``times`` calls to ``system`` whose path contains ``path_contains`` with
        ``body`` (JSON-encoded unless it is ``bytes``) and HTTP ``status``: a documented error shape
        the twin does not produce by itself (the conformance suite's error cases)."""
        if times < 1:
            raise ValueError("times must be at least 1")
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        with self._lock:
            self._faults.append(Fault(system, ANSWER, path_contains, times, raw, status))

    def take(self, system: str, path: str, *, authed: bool) -> str | None:
        """The kind of the fault for this call, if one is armed; counts it down."""
        fault = self.take_fault(system, path, authed=authed)
        return fault.kind if fault is not None else None

    def take_fault(self, system: str, path: str, *, authed: bool) -> Fault | None:
        """The fault for this call (armed first, else random), if any; counts an armed one down."""
        with self._lock:
            for fault in self._faults:
                if fault.system != system or fault.path_contains not in path:
                    continue
                if fault.body is None and not applies(fault.kind, self.profile(system), path, authed=authed):
                    continue
                fault.times -= 1
                if fault.times == 0:
                    self._faults.remove(fault)
                return fault
            profile = self.profile(system)
            if self.rate <= 0 or not profile.reads(path):
                return None
            if self._random.random() >= self.rate:
                return None
            candidates = [k for k in self.kinds if applies(k, profile, path, authed=authed)]
            return Fault(system, self._random.choice(candidates), path, 0) if candidates else None

    def pending(self) -> list[Fault]:
        with self._lock:
            return [Fault(f.system, f.kind, f.path_contains, f.times, f.body, f.status) for f in self._faults]

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
        profile: FaultProfile | None = None,
    ) -> None:
        self.app = app
        self.system = system
        self.faults = faults
        self.profile = profile or FaultProfile()
        faults.register(system, self.profile)  # again, if the twin did not (it is built lazily)
        self.calls = calls
        self.expire_credential = expire_credential
        self.is_authed = is_authed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        fault = self.faults.take_fault(self.system, path, authed=self.is_authed(path))
        kind = fault.kind if fault is not None else None

        async def logged(message: Message) -> None:
            if message["type"] == "http.response.start":  # logged before the client can see the answer
                self.calls.record(Call(self.system, scope["method"], path, message["status"], kind))
            await send(message)

        if fault is not None and fault.body is not None:
            await _read_body(receive)
            await _send(logged, fault.status, fault.body, "application/json")
        elif kind in _HTTP_FAULTS:
            headers = {"retry-after": "0"} if kind == "http_429" else {}
            status = _HTTP_FAULTS[kind]
            if self.profile.http_error_body is not None:
                error = {
                    **self.profile.http_error_body(status),
                    self.profile.request_id_key: uuid.uuid4().hex,
                }
                await _send(
                    logged,
                    status,
                    json.dumps(error, ensure_ascii=False).encode(),
                    "application/json",
                    headers,
                )
            else:
                await _send(logged, status, b"sandbox fault: " + kind.encode(), "text/plain", headers)
        elif kind == "rate_limit_code":
            body = {**(self.profile.rate_limit_body or {}), self.profile.request_id_key: uuid.uuid4().hex}
            raw = json.dumps(body, ensure_ascii=False).encode()
            await _send(logged, self.profile.rate_limit_status, raw, "application/json")
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
        start, body = await self._captured(scope, receive)
        await _send_replaced(send, start, body[: max(1, len(body) // 2)])

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
        """The real answer with its data changed as the twin's ``FaultProfile`` says."""
        raw = await _read_body(receive)
        request = _json(raw)
        if self.profile.shift_request is not None:
            shifted = self.profile.shift_request(kind, request)
            if shifted is not request:
                request, raw = shifted, json.dumps(shifted).encode()
        start, body = await self._captured(scope, _replay(raw, receive))
        answer = _json(body)
        if answer is not None and self.profile.change is not None:
            answer = self.profile.change(kind, request, answer)
            body = json.dumps(answer, ensure_ascii=False).encode()
            if kind == "invalid_utf8":
                body = body.replace(INVALID_UTF8_MARK.encode(), b"\xff\xfe", 1)
            if kind == "deep_json":  # written as bytes: json.dumps cannot nest this deep either
                body = body.replace(
                    f'"{DEEP_JSON_MARK}"'.encode(), b"[" * DEEP_LEVELS + b"]" * DEEP_LEVELS, 1
                )
        await _send_replaced(send, start, body)


async def _send_replaced(send: Send, start: dict[str, Any], body: bytes) -> None:
    """A captured answer sent on with ``body`` in place of its own (the length header to match)."""
    headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": start.get("status", 200), "headers": headers})
    await send({"type": "http.response.body", "body": body})


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
