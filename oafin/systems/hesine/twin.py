"""Fake Hesine/Ekuaibao (合思/易快报) open API: token, document list and detail, voucher write-back, comment.

Shapes from source-systems.md §6 and real-clients.md §2.5:

- ``POST /api/openapi/v1/auth/getAccessToken`` with a JSON body ``{appKey, appSecurity}`` (in the
  query string: 403) → ``{"value": {accessToken, refreshToken, expireTime (ms), corporationId}}``;
  ``POST /api/openapi/v2/auth/refreshToken?accessToken=&refreshToken=&powerCode=219904`` renews a
  token that has not expired yet (both tokens change; an expired one cannot be refreshed);
- the token travels as the ``accessToken`` query parameter on every business call;
- ``GET /api/openapi/v1.1/docs/getApplyList``: ``type`` (required), ``start`` (from 0) and
  ``count`` (1..100; more is 412 "超过最大查询数量100！"), ``state`` (comma-separated; ``paying``
  finds the documents whose payment is ``PROCESSING``, ``state=PROCESSING`` finds nothing),
  ``orderBy``/``orderByType``, ``startDate``/``endDate`` (``yyyy-MM-dd HH:mm:ss``, China time,
  on the ``orderBy`` time), ``active`` (absent: all; ``true``: live; anything else: only
  deleted) → ``{"count": <total>, "items": [...]}``; a ``start`` past the end is 412 "…不存在";
- ``GET /api/openapi/v1.1/flowDetails?flowId=`` → ``{"value": {...}}``; a deleted document is
  412 "单据已删除";
- ``PUT /api/openapi/v2.1/flow/data/erpVoucher`` ``{"voucher": [{flowId, voucherNo,
  voucherCreateTime}]}`` → ``{"value": true}``, only for documents in ``paid`` (else 400
  "单据不是已支付状态"; an unknown flowId 412);
- ``POST /api/openapi/v2.2/flow/data/comment/$<flowId>?staffId=`` → 204 with no body (some
  writes answer so, real-clients.md §2.5); too often: 400 "评论太过频繁".

Errors are HTTP 400/403/412 with ``{errorCode, errorMessage, errorDetails, code, data}``
(real-clients.md §2.5). ``TWIN`` is what the sandbox server mounts.
"""

from __future__ import annotations

import copy
import json
import time
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

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
from oafin.systems.hesine.twin_faults import FAULTS
from oafin.systems.hesine.twin_render import CORP, documents

SHANGHAI: Final = ZoneInfo("Asia/Shanghai")
TOKEN_LIFETIME: Final = 7200.0  # 2 h (source-systems.md §6.1)
REFRESHED_LIFETIME: Final = 32 * 24 * 3600.0  # after a refresh: 32 days (§6.1)
MAX_COUNT: Final = 100  # §6.2
DATE_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
ORDER_FIELDS: Final = {
    "createTime": "createTime",
    "updateTime": "updateTime",
    "submitDate": "form.submitDate",
}
COMMENT_SPACING_SECONDS: Final = 0.0  # a test may raise it to see "评论太过频繁"
MAX_APPROVE_IDS: Final = 10  # flow-approval.md (§6.5)
APPROVE_ACTIONS: Final = ("freeflow.agree", "freeflow.reject", "freeflow.nullify")


def _error(status: int, message: str, details: Any = None) -> JSONResponse:
    body = {"errorCode": status, "errorMessage": message, "errorDetails": details, "code": None, "data": None}
    return JSONResponse(body, status_code=status)


class HesineState:
    """The documents by flowId and by type, the tokens, and the writes received."""

    def __init__(self, dataset: Dataset, token_lifetime: float = TOKEN_LIFETIME) -> None:
        self.tokens = TokenStore(token_lifetime, reuse=False)
        self.refresh_tokens: dict[str, str] = {}  # refreshToken -> the accessToken it renews
        # A copy: write-backs change the twin's documents, never the shared rendering.
        self.by_type: dict[str, list[dict[str, Any]]] = copy.deepcopy(documents(dataset))
        self.by_id = {doc["id"]: doc for docs in self.by_type.values() for doc in docs}
        self.writes: list[dict[str, Any]] = []
        self.comment_spacing = COMMENT_SPACING_SECONDS
        self._last_comment = float("-inf")
        # the documented minute between approval calls; 0 by default so tests need not wait it
        # out in real time (the client keeps it on its own clock; a test raises this to see 400)
        self.approve_spacing = 0.0
        self._last_approve = float("-inf")

    def issue(self, lifetime: float | None = None) -> dict[str, Any]:
        saved = self.tokens.lifetime
        if lifetime is not None:
            self.tokens.lifetime = lifetime
        try:
            token = self.tokens.issue()
        finally:
            self.tokens.lifetime = saved
        refresh = f"r{token}"
        self.refresh_tokens[refresh] = token
        expire = int((time.time() + (lifetime or self.tokens.lifetime)) * 1000)
        return {"accessToken": token, "refreshToken": refresh, "expireTime": expire, "corporationId": CORP}

    def listed(self, q: Any) -> list[dict[str, Any]] | JSONResponse:
        kind = q.get("type")
        if not kind:
            return _error(400, "type 不能为空")
        docs = self.by_type.get(kind, [])
        if "active" in q:
            live = q.get("active") == "true"
            docs = [d for d in docs if bool(d.get("active", True)) == live]
        states = [s for s in (q.get("state") or "").split(",") if s]
        if states:
            docs = [d for d in docs if d.get("state") in states]
        order = ORDER_FIELDS.get(q.get("orderBy") or "createTime")
        if order is None:
            return _error(400, f"orderBy 不支持: {q.get('orderBy')}")

        def moment(doc: dict[str, Any]) -> int:
            value: Any = doc
            for part in order.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            return int(value or 0)

        for name, keep in (("startDate", lambda m, b: m >= b), ("endDate", lambda m, b: m <= b)):
            text = q.get(name)
            if text:
                try:
                    bound = int(
                        datetime.strptime(text, DATE_FORMAT).replace(tzinfo=SHANGHAI).timestamp() * 1000
                    )
                except ValueError:
                    return _error(400, f"{name} 格式错误，应为 yyyy-MM-dd HH:mm:ss")
                if name == "endDate":
                    bound += 999  # the whole second
                docs = [d for d in docs if keep(moment(d), bound)]
        descending = (q.get("orderByType") or "desc") == "desc"
        return sorted(docs, key=lambda d: (moment(d), d["id"]), reverse=descending)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"null")
    except ValueError:
        return None


def create_hesine_app(
    dataset: Dataset, faults: FaultPlan, calls: CallLog, token_lifetime: float = TOKEN_LIFETIME
) -> Starlette:
    state = HesineState(dataset, token_lifetime)

    def refused(request: Request) -> JSONResponse | None:
        verdict = state.tokens.check(request.query_params.get("accessToken"))
        if verdict == "valid":
            return None
        return _error(403, "accessToken 已过期" if verdict == "expired" else "accessToken 无效")

    async def get_token(request: Request) -> JSONResponse:
        if "appKey" in request.query_params or "appSecurity" in request.query_params:
            return _error(403, "请使用 JSON body 传递 appKey 和 appSecurity")  # §6.1
        body = await _json_body(request)
        if not isinstance(body, dict):
            return _error(412, "请求参数不是合法的 JSON")
        if (
            body.get("appKey") != credentials.HESINE_APP_KEY
            or body.get("appSecurity") != credentials.HESINE_APP_SECURITY
        ):
            return _error(403, "appKey 或 appSecurity 错误")
        return JSONResponse({"value": state.issue()})

    async def refresh_token(request: Request) -> JSONResponse:
        q = request.query_params
        old = state.refresh_tokens.get(q.get("refreshToken") or "")
        if old is None or old != q.get("accessToken") or q.get("powerCode") != "219904":
            return _error(403, "refreshToken 无效")
        if state.tokens.check(old) != "valid":
            return _error(403, "accessToken 已过期，无法刷新")  # §6.1: an expired token cannot be refreshed
        state.tokens.revoke(old)
        state.refresh_tokens.pop(q.get("refreshToken") or "", None)
        lifetime = REFRESHED_LIFETIME if state.tokens.lifetime == state.tokens.default_lifetime else None
        return JSONResponse({"value": state.issue(lifetime)})

    async def apply_list(request: Request) -> JSONResponse:
        if (no := refused(request)) is not None:
            return no
        q = request.query_params
        start, count = _int(q.get("start")), _int(q.get("count"))
        if start is None or start < 0 or count is None or count < 1:
            return _error(400, "start 和 count 必填且为非负整数")
        if count > MAX_COUNT:
            return _error(412, f"超过最大查询数量{MAX_COUNT}！")  # real-clients.md §2.5
        docs = state.listed(q)
        if isinstance(docs, JSONResponse):
            return docs
        if start > 0 and start >= len(docs):
            return _error(412, "查询的单据不存在")  # past the end (real-clients.md §2.5)
        return JSONResponse({"count": len(docs), "items": docs[start : start + count]})

    async def flow_details(request: Request) -> JSONResponse:
        if (no := refused(request)) is not None:
            return no
        doc = state.by_id.get(request.query_params.get("flowId") or "")
        if doc is None:
            return _error(412, "单据不存在")
        if not doc.get("active", True):
            return _error(412, "单据已删除")  # §6.3
        return JSONResponse({"value": doc})

    async def erp_voucher(request: Request) -> JSONResponse:
        if (no := refused(request)) is not None:
            return no
        body = await _json_body(request)
        items = body.get("voucher") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            return _error(412, "请求参数不是合法的 JSON")
        for item in items:
            doc = state.by_id.get(str(item.get("flowId") or "")) if isinstance(item, dict) else None
            if doc is None:
                return _error(412, f"单据不存在: {item.get('flowId') if isinstance(item, dict) else item}")
            if doc.get("state") != "paid":
                return _error(400, "单据不是已支付状态")  # §6.5
        for item in items:
            form = state.by_id[str(item["flowId"])]["form"]
            form["voucherNo"] = str(item.get("voucherNo") or "")  # "" clears it (§6.5)
            form["voucherCreateTime"] = str(item.get("voucherCreateTime") or "")
            form["voucherStatus"] = "已生成" if form["voucherNo"] else "未生成"
        state.writes.append({"call": "flow/data/erpVoucher", "body": body, "at": time.time()})
        return JSONResponse({"value": True})

    async def comment(request: Request) -> Response:
        if (no := refused(request)) is not None:
            return no
        flow = request.path_params["flow"]
        if not flow.startswith("$"):
            return _error(412, "路径中的 id 需以 $ 开头")  # getting-started.md path convention (§6.5)
        doc = state.by_id.get(flow[1:])
        if doc is None:
            return _error(412, "单据不存在")
        body = await _json_body(request)
        params = body.get("params") if isinstance(body, dict) else None
        staff = request.query_params.get("staffId")
        if not isinstance(params, dict) or not params.get("comment") or not staff:
            return _error(400, "comment 和 staffId 必填")
        now = time.monotonic()
        if now - state._last_comment < state.comment_spacing:
            return _error(400, "评论太过频繁")  # §6.5
        state._last_comment = now
        log = {
            "action": "freeflow.comment",
            "state": doc.get("state"),
            "operatorId": staff,
            "time": int(time.time() * 1000),
            "attributes": {"comment": str(params["comment"])},
        }
        doc["logs"] = [*doc.get("logs", []), log]
        state.writes.append(
            {"call": "flow/data/comment", "flowId": flow[1:], "body": body, "at": time.time()}
        )
        return Response(status_code=204)

    async def backlog(request: Request) -> JSONResponse:
        # Approve/reject (§6.5): flowIds in brackets in the path, at most 10 a call, calls a minute
        # apart; the answer is asynchronous {total, success, error, residue, errorMsg}.
        if (no := refused(request)) is not None:
            return no
        ids_text = request.path_params["ids"]
        if not (ids_text.startswith("[") and ids_text.endswith("]")):
            return _error(412, "单据 id 列表需写作 [id1,id2]")
        ids = [i for i in ids_text[1:-1].split(",") if i]
        if not ids or len(ids) > MAX_APPROVE_IDS:
            return _error(400, f"每次最多审批{MAX_APPROVE_IDS}张单据")
        now = time.monotonic()
        if now - state._last_approve < state.approve_spacing:
            return _error(400, "调用过于频繁，请间隔1分钟")
        state._last_approve = now
        body = await _json_body(request)
        action = body.get("action") if isinstance(body, dict) else None
        if (
            not isinstance(action, dict)
            or action.get("name") not in APPROVE_ACTIONS
            or not body.get("approveId")
        ):
            return _error(400, "approveId 和 action.name 必填")
        known = [i for i in ids if i in state.by_id]
        state.writes.append({"call": "backlog/data", "flowIds": ids, "body": body, "at": time.time()})
        errors = len(ids) - len(known)
        return JSONResponse(
            {
                "value": {
                    "total": len(ids),
                    "success": len(known),
                    "error": errors,
                    "residue": 0,
                    "errorMsg": "单据不存在" if errors else "",
                }
            }
        )

    def expire(scope: Scope) -> None:
        state.tokens.expire(Request(scope).query_params.get("accessToken"))

    faults.register("hesine", FAULTS)
    app = Starlette(
        routes=[
            Route("/api/openapi/v1/auth/getAccessToken", get_token, methods=["POST"]),
            Route("/api/openapi/v2/auth/refreshToken", refresh_token, methods=["POST"]),
            Route("/api/openapi/v1.1/docs/getApplyList", apply_list, methods=["GET"]),
            Route("/api/openapi/v1.1/flowDetails", flow_details, methods=["GET"]),
            Route("/api/openapi/v2.1/flow/data/erpVoucher", erp_voucher, methods=["PUT"]),
            Route("/api/openapi/v2.2/flow/data/comment/{flow}", comment, methods=["POST"]),
            Route("/api/openapi/v1/backlog/data/{ids}", backlog, methods=["POST"]),
        ],
        middleware=[
            Middleware(
                SandboxMiddleware,
                system="hesine",
                faults=faults,
                calls=calls,
                expire_credential=expire,
                is_authed=lambda path: "/auth/" not in path,
                profile=FAULTS,
            )
        ],
    )
    app.state.hesine = state
    return app


def create_app(dataset: Dataset, calls: CallLog, faults: FaultPlan) -> tuple[Starlette, HesineState]:
    app = create_hesine_app(dataset, faults, calls)
    return app, app.state.hesine


TWIN: Final = Twin(
    name="hesine",
    role="expense",
    create_app=create_app,
    default_port=18708,
    credentials={"app_key": credentials.HESINE_APP_KEY, "app_security": credentials.HESINE_APP_SECURITY},
    files=lambda dataset: {"hesine_documents.json": documents(dataset)},
)
