"""Fake Feishu approval v4: tenant token, instance list by approval code, instance get, comments.

Shapes from source-systems.md §3 and the real production log in real-clients.md §2.2 (newer):
every answer is ``{code, msg, data}``, ``msg`` ``""`` on success; the token goes in
``Authorization: Bearer t-...``; the list takes ``approval_code``, ms-string ``start_time`` and
``end_time`` (all required) and ``page_size`` 1..100, pages with an opaque ``page_token`` and
``has_more``, and ends with ``page_token: ""``; get returns ``form`` as a JSON string.
The tenant token behaves as §3.1 says: asked again with 30 minutes or more left, the same token
comes back with what is left of its life; with less, a new one, and the old one stays valid.
The official SDK (``lark-oapi``) reads this twin (tests/test_feishu_sdk.py). ``TWIN`` is what the
sandbox server mounts.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import time
from collections import defaultdict
from datetime import datetime
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
from oafin.systems.feishu import twin_faults
from oafin.systems.feishu.twin_approvals import CORRECTIONS_APPROVAL_CODE, FeishuApprovalDesk, FeishuDeskError
from oafin.systems.feishu.twin_faults import INSTANCES_PATH, TOKEN_PATH
from oafin.systems.feishu.twin_render import epoch_ms_text, instances, open_id, user_id

TOKEN_LIFETIME: Final = 7200.0  # seconds: "expire" 7200, the maximum (source-systems.md §3.1)
KEEP_IF_LEFT: Final = 1800.0  # "with 30 minutes or more left, you get the same token back" (§3.1)
MAX_PAGE_SIZE: Final = 100  # 1..100 (real-clients.md §2.2)
DEFAULT_PAGE_SIZE: Final = 100
# Token refusals the SDK knows (source-systems.md §3.1); which HTTP status Feishu sends with them
# is not in the reference [U]: 400, as its other errors here.
EXPIRY_ENVELOPES: Final[dict[str, dict[str, Any]]] = {
    "99991663": {
        "code": 99991663,
        "msg": "Invalid access token for authorization. Please make a request with token attached.",
    },
    "99991671": {"code": 99991671, "msg": "Invalid access token for authorization."},
}
DEFAULT_EXPIRY: Final = "99991663"
# Approval errors (source-systems.md §3.3 [C]); a refused app secret: 10014 [U] (not in the reference).
PARAM_INVALID: Final = 1390001
NO_APPROVAL: Final = (1390002, "approval code not found")
NO_INSTANCE: Final = (1390003, "instance code not found")
BAD_APP: Final = (10014, "app secret invalid")


class FeishuTokens(TokenStore):
    """Tenant access tokens as §3.1 describes (``TokenStore`` without ``reuse``, plus the 30-minute rule)."""

    def issue_tenant_token(self) -> tuple[str, int]:
        """The current token and its seconds left when 30 minutes or more remain, else a new one."""
        now = time.monotonic()
        with self._lock:
            current = self._current
            left = self._expiry.get(current or "", float("-inf")) - now
            if current is not None and left >= min(KEEP_IF_LEFT, self.lifetime / 2):
                return current, max(1, int(left))
        token = self.issue()
        return token, max(1, int(self.lifetime))


class FeishuState:
    """The instances indexed for the endpoints, the page tokens handed out, and the token store."""

    def __init__(self, dataset: Dataset, token_lifetime: float = TOKEN_LIFETIME) -> None:
        self.tenant_tokens = FeishuTokens(token_lifetime, reuse=False)
        self.tokens: TokenStore = self.tenant_tokens  # what the sandbox server resets and tests expire
        self.expiry_envelope = DEFAULT_EXPIRY  # a key of EXPIRY_ENVELOPES
        self.instances: dict[str, dict[str, Any]] = {}
        created: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for inst in instances(dataset):
            code = inst["instance_code"]
            self.instances[code] = inst
            created[inst["approval_code"]].append((int(inst["start_time"]), code))
        self.by_approval = {code: sorted(pairs) for code, pairs in created.items()}
        self.pages: twin_faults.Pages = {}
        # Write calls received (comments), in order: {"call", "body", "at"}.
        self.writes: list[dict[str, Any]] = []
        self.comments: dict[str, list[dict[str, Any]]] = defaultdict(list)
        # issue #17: instances oafin creates for correction batches, and the scripted approver
        people = sorted(dataset.people, key=lambda p: p.person_id)
        heads = [open_id(p) for p in people if p.role == "director"] or [open_id(p) for p in people[:1]]
        self.desk = FeishuApprovalDesk(
            self.instances,
            self._index,
            users={open_id(p): user_id(p) for p in people},
            default_approvers=heads[:1],
            applicant_of_claim={c.claim_no: open_id(c.originator) for c in dataset.claims},
        )
        self.by_approval.setdefault(CORRECTIONS_APPROVAL_CODE, [])

    def _index(self, approval_code: str, start_ms: int, instance_code: str) -> None:
        bisect.insort(self.by_approval.setdefault(approval_code, []), (start_ms, instance_code))

    def list_codes(self, approval_code: str, start_ms: int, end_ms: int) -> list[str]:
        """Instance codes created in ``[start_ms, end_ms]`` (creation time, then code)."""
        pairs = self.by_approval.get(approval_code, [])
        lo = bisect.bisect_left(pairs, (start_ms, ""))
        hi = bisect.bisect_right(pairs, (end_ms, "\uffff"))
        return [code for _, code in pairs[lo:hi]]

    def page_token(self, ids: list[str], key: str, offset: int) -> str:
        """An opaque token opening the page at ``offset`` of the window ``key`` (the same every time)."""
        token = hashlib.sha256(f"{key}|{offset}".encode()).hexdigest()[:24]
        self.pages[token] = (ids, offset)
        return token


def _reply(code: int = 0, msg: str = "", data: Any = None, status: int = 200) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "msg": msg}
    if data is not None or code == 0:
        body["data"] = {} if data is None else data
    return JSONResponse(body, status_code=status)


def _error(code_msg: tuple[int, str], status: int = 400) -> JSONResponse:
    return _reply(code_msg[0], code_msg[1], status=status)


def _bad_param(detail: str) -> JSONResponse:
    return _reply(PARAM_INVALID, f"param is invalid: {detail}", status=400)


def _bearer(headers: Any) -> str | None:
    value = headers.get("authorization") or ""
    return value[len("Bearer ") :] if value.startswith("Bearer ") else None


def _token_error(state: FeishuState, request: Request) -> JSONResponse | None:
    if state.tokens.check(_bearer(request.headers)) == "valid":
        return None
    envelope = EXPIRY_ENVELOPES[state.expiry_envelope]
    return _reply(envelope["code"], envelope["msg"], status=400)


def _ms(value: str | None) -> int | None:
    if value is None or not value.isdigit():
        return None
    return int(value)


def create_feishu_app(
    dataset: Dataset, faults: FaultPlan, calls: CallLog, token_lifetime: float = TOKEN_LIFETIME
) -> Starlette:
    state = FeishuState(dataset, token_lifetime)
    profile = twin_faults.profile(state.pages)

    async def tenant_token(request: Request) -> JSONResponse:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return _bad_param("body is not JSON")
        if not isinstance(body, dict):
            return _bad_param("body is not a JSON object")
        if (
            body.get("app_id") != credentials.FEISHU_APP_ID
            or body.get("app_secret") != credentials.FEISHU_APP_SECRET
        ):
            return _error(BAD_APP)
        token, left = state.tenant_tokens.issue_tenant_token()
        # §3.1: {"code":0,"msg":"ok","tenant_access_token":"t-...","expire":7200}
        return JSONResponse({"code": 0, "msg": "ok", "tenant_access_token": token, "expire": left})

    async def list_instances(request: Request) -> JSONResponse:
        if (refused := _token_error(state, request)) is not None:
            return refused
        q = request.query_params
        approval_code = q.get("approval_code")
        start_ms, end_ms = _ms(q.get("start_time")), _ms(q.get("end_time"))
        size_text = q.get("page_size", str(DEFAULT_PAGE_SIZE))
        if not approval_code:
            return _bad_param("approval_code is required")
        if start_ms is None or end_ms is None:
            return _bad_param("start_time and end_time are required, in ms since the epoch")
        if not size_text.isdigit() or not 1 <= int(size_text) <= MAX_PAGE_SIZE:
            return _bad_param(f"page_size must be 1..{MAX_PAGE_SIZE}")
        if approval_code not in state.by_approval:
            return _error(NO_APPROVAL)
        size = int(size_text)
        ids = state.list_codes(approval_code, start_ms, end_ms)
        token = q.get("page_token") or ""
        offset = 0
        if token:
            opened = state.pages.get(token)
            if opened is None:
                return _bad_param("page_token is invalid")
            offset = opened[1]
        page = ids[offset : offset + size]
        following = offset + size
        has_more = following < len(ids)
        key = f"{approval_code}|{start_ms}|{end_ms}|{size}"
        data = {
            "has_more": has_more,
            "instance_code_list": page,
            "page_token": state.page_token(ids, key, following) if has_more else "",
        }
        return _reply(data=data)

    async def get_instance(request: Request) -> JSONResponse:
        if (refused := _token_error(state, request)) is not None:
            return refused
        instance_id = request.path_params["instance_id"]
        if instance_id in state.desk.created:  # the scripted approver acts when its reads are done
            state.desk.on_read(instance_id)
        instance = state.instances.get(instance_id)
        if instance is None:
            return _error(NO_INSTANCE)
        comments = state.comments.get(instance["instance_code"])
        # comment_list is absent when there are none (real-clients.md §2.2)
        return _reply(data={**instance, "comment_list": list(comments)} if comments else instance)

    async def create_comment(request: Request) -> JSONResponse:
        # POST /open-apis/approval/v4/instances/:instance_id/comments (source-systems.md §3.3);
        # body {content: a JSON string {"text": ...}, ...}, query user_id_type and user_id (lark-oapi).
        if (refused := _token_error(state, request)) is not None:
            return refused
        instance = state.instances.get(request.path_params["instance_id"])
        if instance is None:
            return _error(NO_INSTANCE)
        user = request.query_params.get("user_id")
        try:
            body = json.loads(await request.body() or b"{}")
            content = json.loads(body.get("content") or "")
        except (ValueError, AttributeError, TypeError):
            return _bad_param("content must be a JSON string")
        if not user or not isinstance(content, dict) or not content.get("text"):
            return _bad_param("user_id and content.text are required")
        now = epoch_ms_text(datetime.now().astimezone())
        comment_id = hashlib.sha256(f"{instance['instance_code']}|{len(state.writes)}".encode()).hexdigest()[
            :19
        ]
        record = {
            "id": comment_id,
            "comment": content["text"],
            "create_time": now,
            "open_id": user if user.startswith("ou_") else "",
            "user_id": "" if user.startswith("ou_") else user,
        }
        state.comments[instance["instance_code"]].append(record)
        state.writes.append({"call": "instances/comments", "body": body, "at": now})
        return _reply(data={"comment_id": comment_id})

    async def create_instance(request: Request) -> JSONResponse:
        # POST /open-apis/approval/v4/instances (real-clients.md §4.3): data.instance_code
        if (refused := _token_error(state, request)) is not None:
            return refused
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return _bad_param("body is not JSON")
        if not isinstance(body, dict):
            return _bad_param("body is not a JSON object")
        try:
            code = state.desk.create(body)
        except FeishuDeskError as exc:
            return _reply(exc.code, str(exc), status=400)
        return _reply(data={"instance_code": code})

    def expire(scope: Scope) -> None:
        state.tokens.expire(_bearer(Request(scope).headers))

    faults.register("feishu", profile)  # now: faults may be armed before the first call
    app = Starlette(
        routes=[
            Route(TOKEN_PATH, tenant_token, methods=["POST"]),
            Route(INSTANCES_PATH, list_instances, methods=["GET"]),
            Route(INSTANCES_PATH, create_instance, methods=["POST"]),
            Route(INSTANCES_PATH + "/{instance_id}", get_instance, methods=["GET"]),
            Route(INSTANCES_PATH + "/{instance_id}/comments", create_comment, methods=["POST"]),
        ],
        middleware=[
            Middleware(
                SandboxMiddleware,
                system="feishu",
                faults=faults,
                calls=calls,
                expire_credential=expire,
                is_authed=lambda path: path != TOKEN_PATH,
                profile=profile,
            )
        ],
    )
    app.state.feishu = state
    return app


def create_app(dataset: Dataset, calls: CallLog, faults: FaultPlan) -> tuple[Starlette, FeishuState]:
    app = create_feishu_app(dataset, faults, calls)
    return app, app.state.feishu


TWIN: Final = Twin(
    name="feishu",
    role="oa",
    create_app=create_app,
    default_port=18705,
    credentials={"app_id": credentials.FEISHU_APP_ID, "app_secret": credentials.FEISHU_APP_SECRET},
    files=lambda dataset: {"feishu_instances.json": instances(dataset)},
)
