"""Fake Weaver e-cology 9: the ``/api/ec/dev/auth`` handshake and the workflow ``paService`` reads.

Shapes from source-systems.md §4 and real-clients.md §2.3 (newer):

- ``POST /api/ec/dev/auth/regist`` (headers ``appid``, ``cpk``) answers ``status``, ``secrit`` (sic;
  ``WeaverState.secret_key`` switches to the ``secret`` spelling one C# client reads) and ``spk``,
  the server's RSA public key (base64 DER). ``POST /api/ec/dev/auth/applytoken`` (headers ``appid``,
  ``secret`` = Base64(RSA-PKCS1v1.5(spk, secrit)), ``time``) answers ``token``. The twin decrypts
  ``secret`` and, on every business call, the ``userid`` header with its private key, so a client
  that encrypts wrongly is refused as the real server refuses it ("secret解密失败").
- Lists ``POST /api/workflow/paService/get{ToDo,Handled,My,All}WorkflowRequestList`` (form fields
  ``pageNo`` from 1, ``pageSize``, ``conditions``) answer a bare JSON array of all-string items;
  ``...Count`` answers a bare integer. Each list is the impersonated user's own: the sysadmin
  (``userid`` 1) has every pending request to do and every finished one handled; anyone else sees
  what they created (my), approved or refused (handled), or must approve as a manager or director
  of the creator's department (to-do). The twin lists newest first (``createTime``, then id) [U].
  ``conditions`` may narrow by ``workflowIds`` and, as e-cology's search form filters
  ``createdate``, by ``createdatefrom``/``createdateto`` (a day or a second, inclusive) [U]: what
  oafin's opt-in ``date_conditions`` setting sends.
- ``GET .../getWorkflowRequest``, ``getRequestLog``, ``getRequestStatus`` (``requestId``) answer
  ``{code, data, errMsg}``; ``code`` is spelt as the build does (``WeaverState.code_style``:
  ``"SUCCESS"``, ``{"statusCode": "1"}`` or ``{"name": "SUCCESS"}``).
- A dead token is answered ``{"msg": "token不存在或者超时：<token>", "code": -1, "status": false}``
  or, by ``WeaverState.expiry_envelope``, ``{"msg": "登录信息超时", "errorCode": "002", ...}`` (§4.1).

``TWIN`` is what the sandbox server mounts (port 18706).
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Scope

from oafin.sandbox import credentials
from oafin.sandbox.dataset import Dataset
from oafin.sandbox.faults import CallLog, FaultPlan, SandboxMiddleware
from oafin.sandbox.tokens import TokenStore
from oafin.sandbox.twin import Twin
from oafin.systems.weaver.twin_faults import FAULTS
from oafin.systems.weaver.twin_render import WORKFLOW_ID, WeaverRequest, requests, weaver_id

SHANGHAI: Final = ZoneInfo("Asia/Shanghai")
AUTH_PREFIX: Final = "/api/ec/dev/auth/"
PA: Final = "/api/workflow/paService/"
TOKEN_LIFETIME: Final = 1800.0  # seconds; a Node client caches the token 30 minutes (§4.1)
LISTS: Final = ("ToDo", "Handled", "My", "All")
CODE_STYLES: Final = ("string", "statusCode", "name")
EXPIRY_ENVELOPES: Final = ("token", "session")
ADMIN: Final = credentials.WEAVER_ADMIN_USERID
MAX_PAGE_SIZE: Final = 1000  # undocumented [U]; the twin refuses more than this


def _fail(msg: str, **extra: Any) -> JSONResponse:
    """The auth layer's refusal (§4.1 error shapes), always HTTP 200."""
    return JSONResponse({"msg": msg, "code": -1, "msgShowType": "none", "status": False, **extra})


class WeaverState:
    """The requests, each user's lists, the RSA key pair, the app's secret and the token store."""

    def __init__(self, dataset: Dataset, token_lifetime: float = TOKEN_LIFETIME) -> None:
        self.tokens = TokenStore(token_lifetime, reuse=False)
        self.writes: list[dict[str, Any]] = []
        self.code_style = "string"  # a key of CODE_STYLES: how this build spells ``code``
        self.secret_key = "secrit"  # or "secret": the spelling of regist's secret
        self.expiry_envelope = "token"  # a key of EXPIRY_ENVELOPES
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.spk = base64.b64encode(der).decode()
        self.app_secret = secrets.token_hex(16)  # issued once per app id, returned by every regist
        self.registered: dict[str, str] = {}  # appid -> the client's public key (cpk)
        self.requests: list[WeaverRequest] = sorted(
            requests(dataset), key=lambda r: (r.created, int(r.request_id)), reverse=True
        )
        self.by_id = {r.request_id: r for r in self.requests}
        self.users = {weaver_id(p): p for p in dataset.people}
        self._approvers: dict[str, set[str]] = {}  # creator's dept code -> managers and directors
        for p in dataset.people:
            if p.role in ("manager", "director"):
                self._approvers.setdefault(p.dept_code, set()).add(weaver_id(p))

    # -- visibility -------------------------------------------------------------------------

    def listed(self, which: str, user: str) -> list[WeaverRequest]:
        """``which`` list (ToDo/Handled/My/All) as ``user`` sees it, in the twin's order."""
        if which == "All":
            if user == ADMIN:
                return list(self.requests)
            seen = {r.request_id for w in ("ToDo", "Handled", "My") for r in self.listed(w, user)}
            return [r for r in self.requests if r.request_id in seen]
        return [r for r in self.requests if self._on(which, r, user)]

    def _on(self, which: str, r: WeaverRequest, user: str) -> bool:
        if user == ADMIN:
            return {"ToDo": r.pending, "Handled": not r.pending, "My": False}[which]
        if which == "My":
            return r.creator_id == user
        if which == "Handled":
            return user in r.operators
        creator = self.users.get(r.creator_id)
        dept = creator.dept_code if creator is not None else ""
        return r.pending and user in self._approvers.get(dept, set()) and user not in r.operators

    def visible(self, request_id: str, user: str) -> WeaverRequest | None:
        r = self.by_id.get(request_id)
        if r is None or user == ADMIN:
            return r
        return r if any(x.request_id == request_id for x in self.listed("All", user)) else None

    # -- envelopes ----------------------------------------------------------------------------

    def code(self, ok: bool, failure: str = "NO_PERMISSION") -> Any:
        if self.code_style == "statusCode":
            return {"statusCode": "1" if ok else "0"}
        if self.code_style == "name":
            return {"name": "SUCCESS" if ok else failure}
        return "SUCCESS" if ok else failure

    def reply(self, data: Any) -> JSONResponse:
        return JSONResponse({"code": self.code(True), "data": data, "errMsg": {}})

    def refuse(self, failure: str, err: dict[str, Any]) -> JSONResponse:
        return JSONResponse({"code": self.code(False, failure), "errMsg": err, "reqFailMsg": {}})

    def expired(self, token: str) -> JSONResponse:
        if self.expiry_envelope == "session":
            return JSONResponse({"msg": "登录信息超时", "errorCode": "002", "status": False})
        return _fail(f"token不存在或者超时：{token}")

    def decrypt(self, value: str | None) -> str | None:
        """Base64(RSA-PKCS1v1.5(spk, text)) -> text, or None when it is not that."""
        try:
            raw = base64.b64decode(value or "", validate=True)
            return self.private_key.decrypt(raw, padding.PKCS1v15()).decode()
        except ValueError:
            return None


async def _form(request: Request) -> dict[str, Any]:
    """The body's fields: form-encoded (as the reference client sends) or a JSON object."""
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}
    # urlencoded fields, parsed here (Starlette's form parser needs python-multipart)
    pairs = parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return dict(pairs)


def _int(value: Any, default: int | None = None) -> int | None:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _bound(value: Any, end: bool) -> datetime | None:
    """A ``createdatefrom``/``createdateto`` value: a day (inclusive) or a second (inclusive)."""
    text = str(value).strip()
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            moment = datetime.strptime(text, fmt).replace(tzinfo=SHANGHAI)
        except ValueError:
            continue
        if fmt == "%Y-%m-%d" and end:
            return moment + timedelta(days=1) - timedelta(seconds=1)
        return moment
    return None


def _filter(conditions: Any) -> Callable[[WeaverRequest], bool] | None:
    """``conditions`` (a JSON string): ``workflowIds`` "1,2,3", and ``createdatefrom``/``createdateto``
    as e-cology's search form filters ``createdate`` (a day or a second, inclusive) [U];
    None if unreadable."""
    if conditions in (None, ""):
        return lambda r: True
    try:
        parsed = json.loads(conditions) if isinstance(conditions, str) else conditions
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    ids = {i.strip() for i in str(parsed.get("workflowIds") or "").split(",") if i.strip()}
    low = _bound(parsed["createdatefrom"], False) if parsed.get("createdatefrom") else None
    high = _bound(parsed["createdateto"], True) if parsed.get("createdateto") else None
    if (parsed.get("createdatefrom") and low is None) or (parsed.get("createdateto") and high is None):
        return None

    def keep(r: WeaverRequest) -> bool:
        if ids and WORKFLOW_ID not in ids:
            return False
        return (low is None or r.created >= low) and (high is None or r.created <= high)

    return keep


def create_weaver_app(
    dataset: Dataset, faults: FaultPlan, calls: CallLog, token_lifetime: float = TOKEN_LIFETIME
) -> Starlette:
    state = WeaverState(dataset, token_lifetime)

    async def regist(request: Request) -> JSONResponse:
        appid, cpk = request.headers.get("appid"), request.headers.get("cpk")
        if appid != credentials.WEAVER_APP_ID:
            return _fail("认证信息错误：appid未在ECOLOGY_BIZ_EC中登记")
        if not cpk:
            return _fail("cpk不能为空")
        state.registered[appid] = cpk
        body = {"msg": "ok", "code": 0, "msgShowType": "none", "status": True}
        body |= {state.secret_key: state.app_secret, "spk": state.spk}
        return JSONResponse(body)

    async def applytoken(request: Request) -> JSONResponse:
        appid = request.headers.get("appid")
        if appid != credentials.WEAVER_APP_ID or appid not in state.registered:
            return _fail("认证信息错误：appid未注册")
        if state.decrypt(request.headers.get("secret")) != state.app_secret:
            return _fail("secret解密失败,请检查加密内容.")
        body = {"msg": "获取成功!", "code": 0, "msgShowType": "none", "status": True}
        return JSONResponse({**body, "token": state.tokens.issue()})

    def caller(request: Request) -> tuple[str | None, JSONResponse | None]:
        """The impersonated user, or the refusal the auth layer answers."""
        headers = request.headers
        if headers.get("appid") != credentials.WEAVER_APP_ID:
            return None, _fail("认证信息错误：appid不正确")
        token = headers.get("token") or ""
        if state.tokens.check(token) != "valid":
            return None, state.expired(token)
        user = state.decrypt(headers.get("userid"))
        if user is None:
            return None, _fail("userid解密失败,请检查加密内容.")
        if user != ADMIN and user not in state.users:
            return None, _fail(f"人员不存在：{user}")
        return user, None

    def listing(which: str, counted: bool) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            user, refused = caller(request)
            if refused is not None:
                return refused
            assert user is not None
            form = await _form(request)
            keep = _filter(form.get("conditions"))
            if keep is None:
                return state.refuse("PARAM_ERROR", {"conditions": "conditions不是JSON"})
            rows = [r for r in state.listed(which, user) if keep(r)]
            if counted:
                return JSONResponse(len(rows))
            page, size = _int(form.get("pageNo"), 1), _int(form.get("pageSize"), 10)
            if page is None or size is None or page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
                return state.refuse(
                    "PARAM_ERROR", {"pageNo": form.get("pageNo"), "pageSize": form.get("pageSize")}
                )
            chosen = rows[(page - 1) * size : page * size]
            extra = {"userid": user, "isremark": "0" if which == "ToDo" else "2", "viewtype": "0"}
            return JSONResponse([{**r.item, **extra} for r in chosen])

        return endpoint

    def one(render: Callable[[WeaverRequest], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            user, refused = caller(request)
            if refused is not None:
                return refused
            assert user is not None
            request_id = request.query_params.get("requestId") or request.query_params.get("requestid")
            if not request_id:
                return state.refuse("PARAM_ERROR", {"requestId": "requestId不能为空"})
            found = state.visible(request_id, user)
            if found is None:
                if request_id not in state.by_id:
                    return state.refuse("PARAM_ERROR", {"requestId": f"流程不存在：{request_id}"})
                return state.refuse("NO_PERMISSION", {"requestId": request_id, "isremark": -1})
            return state.reply(render(found))

        return endpoint

    def expire(scope: Scope) -> None:
        token = Request(scope).headers.get("token")
        state.tokens.expire(token)

    routes = [
        Route(f"{AUTH_PREFIX}regist", regist, methods=["POST"]),
        Route(f"{AUTH_PREFIX}applytoken", applytoken, methods=["POST"]),
        Route(f"{PA}getWorkflowRequest", one(lambda r: r.detail), methods=["GET"]),
        Route(f"{PA}getRequestLog", one(lambda r: r.log), methods=["GET"]),
        Route(f"{PA}getRequestStatus", one(lambda r: r.status), methods=["GET"]),
    ]
    for which in LISTS:
        routes.append(Route(f"{PA}get{which}WorkflowRequestCount", listing(which, True), methods=["POST"]))
        routes.append(Route(f"{PA}get{which}WorkflowRequestList", listing(which, False), methods=["POST"]))

    faults.register("weaver", FAULTS)
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(
                SandboxMiddleware,
                system="weaver",
                faults=faults,
                calls=calls,
                expire_credential=expire,
                is_authed=lambda path: not path.startswith(AUTH_PREFIX),
                profile=FAULTS,
            )
        ],
    )
    app.state.weaver = state
    return app


def create_app(dataset: Dataset, calls: CallLog, faults: FaultPlan) -> tuple[Starlette, WeaverState]:
    app = create_weaver_app(dataset, faults, calls)
    return app, app.state.weaver


def _files(dataset: Dataset) -> dict[str, Any]:
    return {
        "weaver_requests.json": [
            {"item": r.item, "detail": r.detail, "log": r.log, "status": r.status} for r in requests(dataset)
        ]
    }


TWIN: Final = Twin(
    name="weaver",
    role="oa",
    create_app=create_app,
    default_port=18706,
    credentials={"app_id": credentials.WEAVER_APP_ID},
    files=_files,
)
