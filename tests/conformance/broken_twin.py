"""A deliberately broken DingTalk twin: it drops a last page that is exactly full.

When the ids left for a ``listids`` call fill the page exactly, it answers an empty list with no
``next_cursor`` instead of that page: a client that trusts it ends one page early. Everything else
is the real twin, so only the conformance check for an exactly full last page can notice.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oafin.sandbox.dataset import Dataset
from oafin.sandbox.faults import CallLog, FaultPlan
from oafin.sandbox.twin import Twin, TwinState
from oafin.systems.dingtalk.twin import TWIN as DINGTALK_TWIN

BROKEN_ENV = "OAFIN_CONFORMANCE_BROKEN_TWIN"  # "1": conftest runs the suite against this twin


class DropsTheLastFullPage:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/processinstance/listids"):
            await self.app(scope, receive, send)
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                chunks.append(message.get("body", b""))

        await self.app(scope, replay, capture)
        body = b"".join(chunks)
        answer = json.loads(body)
        request = json.loads(raw or b"{}")
        result = answer.get("result") if isinstance(answer, dict) else None
        full = isinstance(result, dict) and len(result.get("list", [])) == int(request.get("size", 10))
        if isinstance(result, dict) and full and "next_cursor" not in result:
            result["list"] = []  # the bug: the exactly full last page goes missing
            body = json.dumps(answer, ensure_ascii=False).encode()
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _create_app(dataset: Dataset, calls: CallLog, faults: FaultPlan) -> tuple[ASGIApp, TwinState]:
    app, state = DINGTALK_TWIN.create_app(dataset, calls, faults)
    return DropsTheLastFullPage(app), state


BROKEN_DINGTALK = Twin(
    name="dingtalk",
    role="oa",
    create_app=_create_app,
    default_port=0,
    credentials=DINGTALK_TWIN.credentials,
    files=DINGTALK_TWIN.files,
)
