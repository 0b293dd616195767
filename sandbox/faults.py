"""Call log and fault injection for the fake servers, as one ASGI middleware per app.

Tests arm faults on the running sandbox (``handle.faults.inject("dingtalk", "http_429")``);
the next matching call gets the fault instead of (or on top of) its normal answer, and
every call is logged with its final status.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

System = Literal["dingtalk", "kingdee"]
FaultKind = Literal["http_429", "http_500", "http_503", "rate_limit_code", "malformed_json", "token_expired"]
SYSTEMS: Final = ("dingtalk", "kingdee")
FAULT_KINDS: Final = (
    "http_429",
    "http_500",
    "http_503",
    "rate_limit_code",
    "malformed_json",
    "token_expired",
)
# Systems with a documented "too many calls" code answered with HTTP 200 (source-systems.md §1.6:
# DingTalk 90018). Kingdee documents none (§7.5), so it has no such fault.
RATE_LIMIT_BODIES: Final[dict[str, dict[str, Any]]] = {
    "dingtalk": {"errcode": 90018, "errmsg": "当前企业调用该接口超过限制，请稍后再试"},
}
_HTTP_FAULTS: Final = {"http_429": 429, "http_500": 500, "http_503": 503}


@dataclass(frozen=True)
class Call:
    system: str
    method: str
    path: str
    status: int
    fault: str | None = None


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


class FaultPlan:
    """Faults armed for the next matching calls, first armed first served."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def inject(self, system: System, kind: FaultKind, *, path_contains: str = "", times: int = 1) -> None:
        """Answer the next ``times`` calls to ``system`` whose path contains ``path_contains`` with ``kind``.

        ``http_429`` (with ``Retry-After: 0``), ``http_500``, ``http_503``: that HTTP status.
        ``rate_limit_code``: HTTP 200 with the system's rate-limit error code (DingTalk 90018).
        ``malformed_json``: the real answer, truncated. ``token_expired``: the token or session
        the call carries is expired first, so the call fails as an expired one would (token and
        login calls themselves are never hit by this fault).
        """
        if system not in SYSTEMS:
            raise ValueError(f"system must be one of {SYSTEMS}, got {system!r}")
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}, got {kind!r}")
        if kind == "rate_limit_code" and system not in RATE_LIMIT_BODIES:
            raise ValueError(f"{system} has no documented rate-limit code")
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
                if fault.kind == "token_expired" and not authed:
                    continue
                fault.times -= 1
                if fault.times == 0:
                    self._faults.remove(fault)
                return fault.kind
        return None

    def pending(self) -> list[Fault]:
        with self._lock:
            return [Fault(f.system, f.kind, f.path_contains, f.times) for f in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


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
