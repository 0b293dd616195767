"""Fake Seeyon A8/V5 REST: token, CAP4 form export, flow state.

Shapes from source-systems.md §5 and real-clients.md §2.4 (layouts the references do not show
are described, and marked [U], in ``twin_render``):

- ``POST /seeyon/rest/token`` ``{"userName", "password", "loginName"?}`` → ``{"id": "<token>"}``;
  wrong credentials → HTTP 401 ``{"code": "1001", "message": ...}`` [U];
- the token as header ``token:`` or query ``?token=``; a dead one → HTTP 401
  ``{"code": "1010", "message": "被迫下线"}`` (§5 [U]);
- ``POST /seeyon/rest/cap4/form/soap/export`` ``{templateCode, rightId, beginDateTime,
  endDateTime, page, pageSize}`` → ``{"code": 0, "data": {"code": 0, "data": {"definition",
  "data": [...]}}}``; dates ``yyyy-MM-dd`` (``yyyy-MM-dd HH:mm:ss`` accepted too), both days
  included [U], records of the flows started on those days, by start time then id, no count [U];
- ``GET /seeyon/rest/flow/state/{flowId}``;
- with ``SeeyonState.whitelist_closed`` every ``/seeyon/rest/**`` call gets HTTP 401 and an HTML
  page, as a real Seeyon whose REST whitelist does not admit the caller (§2.4 [C]).

``TWIN`` is what the sandbox server mounts.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any, Final

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import Scope

from oafin.sandbox import credentials
from oafin.sandbox.dataset import Dataset
from oafin.sandbox.faults import CallLog, FaultPlan, SandboxMiddleware
from oafin.sandbox.tokens import TokenStore
from oafin.sandbox.twin import Twin
from oafin.systems.seeyon.twin_faults import FAULTS
from oafin.systems.seeyon.twin_render import TEMPLATE_CODE, definition, files, records

REST: Final = "/seeyon/rest"
TOKEN_LIFETIME: Final = 1800.0  # undocumented (§2.4 "token lifetime is still unknown"); any will do
MAX_PAGE_SIZE: Final = 1000  # [U]
DEFAULT_PAGE_SIZE: Final = 20  # [U]
TOKEN_DEAD: Final = {"code": "1010", "message": "被迫下线"}  # §5 [U]
BAD_LOGIN: Final = {"code": "1001", "message": "REST用户名或密码错误"}  # [U]
# What Seeyon serves when the REST whitelist does not admit the caller (§2.4: HTTP 401, HTML).
WHITELIST_PAGE: Final = (
    '<!DOCTYPE html><html><head><meta charset="UTF-8"><title>异常处理页面</title></head>'
    '<body><div class="error">您没有权限访问此资源</div></body></html>'
)


class SeeyonState:
    """The records indexed for the endpoints, the token store, and the whitelist switch."""

    def __init__(self, dataset: Dataset, token_lifetime: float = TOKEN_LIFETIME) -> None:
        self.tokens = TokenStore(token_lifetime, reuse=False)
        self.whitelist_closed = False
        self.writes: list[dict[str, Any]] = []
        rendered = records(dataset)
        # (start_date text, formmain id) orders the export; the same text's first 10 chars is its day
        self.rows = sorted(
            (
                (r["masterData"]["start_date"]["value"], r["masterData"]["id"]["value"], r)
                for _, r, _ in rendered
            ),
            key=lambda t: (t[0], t[1]),
        )
        self.states = {r["summaryId"]: s for _, r, s in rendered}
        self.definition = definition()

    def between(self, first: date, last: date) -> list[dict[str, Any]]:
        lo, hi = first.isoformat(), last.isoformat()
        return [r for day_time, _, r in self.rows if lo <= day_time[:10] <= hi]


def _reply(data: Any = None, code: Any = 0, message: str = "", status: int = 200) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "data": data}, status_code=status)


def _refused(message: str) -> JSONResponse:
    return _reply(None, 1, message)


def _day(text: Any) -> date | None:
    for fmt in ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(str(text), fmt).date()
        except ValueError:
            continue
    return None


def _int(value: Any, default: int) -> int | None:
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


async def _json(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _token(request: Request) -> str | None:
    return request.headers.get("token") or request.query_params.get("token")


def create_seeyon_app(
    dataset: Dataset, faults: FaultPlan, calls: CallLog, token_lifetime: float = TOKEN_LIFETIME
) -> Starlette:
    state = SeeyonState(dataset, token_lifetime)

    def gate(request: Request, authed: bool = True) -> Response | None:
        if state.whitelist_closed:
            return HTMLResponse(WHITELIST_PAGE, status_code=401)
        if authed and state.tokens.check(_token(request)) != "valid":
            return JSONResponse(TOKEN_DEAD, status_code=401)
        return None

    async def token(request: Request) -> Response:
        if (refused := gate(request, authed=False)) is not None:
            return refused
        body = await _json(request)
        if (
            body is None
            or body.get("userName") != credentials.SEEYON_USER_NAME
            or body.get("password") != credentials.SEEYON_PASSWORD
        ):
            return JSONResponse(BAD_LOGIN, status_code=401)
        bound = body.get("loginName")
        return JSONResponse(
            {"id": state.tokens.issue(), "bindingUser": {"loginName": bound} if bound else None}
        )

    async def export(request: Request) -> Response:
        if (refused := gate(request)) is not None:
            return refused
        body = await _json(request)
        if body is None:
            return _refused("请求体不是JSON对象")
        if body.get("templateCode") != TEMPLATE_CODE:
            return _refused(f"模板编号[{body.get('templateCode')}]不存在")
        if not str(body.get("rightId") or "").strip():
            return _refused("rightId不能为空")
        first, last = _day(body.get("beginDateTime")), _day(body.get("endDateTime"))
        if first is None or last is None:
            return _refused("beginDateTime/endDateTime格式应为yyyy-MM-dd")
        page, size = _int(body.get("page"), 1), _int(body.get("pageSize"), DEFAULT_PAGE_SIZE)
        if page is None or page < 1 or size is None or not 1 <= size <= MAX_PAGE_SIZE:
            return _refused(f"page须大于0, pageSize须在1到{MAX_PAGE_SIZE}之间")
        rows = state.between(first, last)[(page - 1) * size : page * size]
        return _reply({"code": 0, "message": "", "data": {"definition": state.definition, "data": rows}})

    async def flow_state(request: Request) -> Response:
        if (refused := gate(request)) is not None:
            return refused
        found = state.states.get(request.path_params["flow_id"])
        if found is None:
            return _refused("流程不存在")
        return _reply(found)

    async def closed(request: Request) -> Response:
        refused = gate(request, authed=False)
        return (
            refused
            if refused is not None
            else JSONResponse({"code": 404, "message": "not found"}, status_code=404)
        )

    def expire(scope: Scope) -> None:
        state.tokens.expire(_token(Request(scope)))

    faults.register("seeyon", FAULTS)  # now: faults may be armed before the first call
    app = Starlette(
        routes=[
            Route(f"{REST}/token", token, methods=["POST"]),
            Route(f"{REST}/cap4/form/soap/export", export, methods=["POST"]),
            Route(f"{REST}/flow/state/{{flow_id}}", flow_state, methods=["GET"]),
            Route(f"{REST}/{{rest:path}}", closed, methods=["GET", "POST", "PUT"]),
        ],
        middleware=[
            Middleware(
                SandboxMiddleware,
                system="seeyon",
                faults=faults,
                calls=calls,
                expire_credential=expire,
                is_authed=lambda path: not path.endswith("/token"),
                profile=FAULTS,
            )
        ],
    )
    app.state.seeyon = state
    return app


def create_app(dataset: Dataset, calls: CallLog, faults: FaultPlan) -> tuple[Starlette, SeeyonState]:
    app = create_seeyon_app(dataset, faults, calls)
    return app, app.state.seeyon


TWIN: Final = Twin(
    name="seeyon",
    role="oa",
    create_app=create_app,
    default_port=18707,
    credentials={"user_name": credentials.SEEYON_USER_NAME, "password": credentials.SEEYON_PASSWORD},
    files=files,
)
