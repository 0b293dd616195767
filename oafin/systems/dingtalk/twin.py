"""Fake DingTalk, old (topapi) API: gettoken, processinstance/listids, processinstance/get,
process/instance/comment/add, and for correction batches (issue #17) processinstance/create,
process/instance/execute and process/instance/terminate with a scripted approver
(``twin_approvals``).

Shapes from source-systems.md §1.1-1.3 and §1.6: the token travels as the ``access_token``
query parameter, every answer is ``{errcode, errmsg, ...}`` with HTTP 200, ``listids``
pages with ``cursor``/``size`` (≤ 20) and leaves ``next_cursor`` out on the last page.
A dead token is answered as real topapi does, ``errcode 88`` with ``sub_code 40014``
(issue #10 item 1), or with another documented expiry envelope a test chooses.
``TWIN`` is what the sandbox server mounts.
"""

from __future__ import annotations

import bisect
import json
import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

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
from oafin.systems.dingtalk.twin_approvals import ApprovalDesk, DeskError
from oafin.systems.dingtalk.twin_faults import FAULTS
from oafin.systems.dingtalk.twin_render import instances

SHANGHAI: Final = ZoneInfo("Asia/Shanghai")
TOKEN_LIFETIME: Final = 7200.0  # seconds; source-systems.md §1.1 ("expires_in" 7200)
MAX_SIZE: Final = 20  # listids "size 最多传20" (§1.2)
DEFAULT_SIZE: Final = 10
# errcodes: 40014 invalid token and 42001 expired token (§2.1 shares them; DingTalk uses the same),
# 40089 bad app key/secret, 40035 bad parameter, 820004 "流程不存在" (§1.5 example).
# How a dead (expired or unknown) token is answered. Real topapi: errcode 88 with the reason in
# sub_code (source-systems.md §1.6: "on errcode 88 read sub_code"; issue #10 item 1). 40014 and
# 42001 at the top level are the codes DingTalk shares with WeCom (§2.5) and that the SDKs retry
# on (real-clients.md §1.2): a test may choose them (DingTalkState.expiry_envelope).
EXPIRY_ENVELOPES: Final[dict[str, dict[str, Any]]] = {
    "88/40014": {
        "errcode": 88,
        "errmsg": "ding talk error[subcode=40014,submsg=不合法的access_token]",
        "sub_code": "40014",
        "sub_msg": "不合法的access_token",
    },
    "40014": {"errcode": 40014, "errmsg": "不合法的access_token"},
    "42001": {"errcode": 42001, "errmsg": "access_token超时"},
}
DEFAULT_EXPIRY: Final = "88/40014"
BAD_APP: Final = (40089, "不合法的appkey或appsecret")
BAD_PARAM: Final = 40035
NO_INSTANCE: Final = (820004, "流程不存在")


class DingTalkState:
    """The instances indexed for the endpoints, and the token store."""

    def __init__(self, dataset: Dataset, token_lifetime: float = TOKEN_LIFETIME) -> None:
        self.tokens = TokenStore(token_lifetime, reuse=True)
        self.expiry_envelope = DEFAULT_EXPIRY  # a key of EXPIRY_ENVELOPES
        self.instances: dict[str, dict[str, Any]] = {}
        created: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for inst in instances(dataset):
            # The real object carries no id of its own (§1.3): serve it without.
            body = {k: v for k, v in inst.items() if k != "process_instance_id"}
            iid = inst["process_instance_id"]
            self.instances[iid] = body
            created[dataset.process_code].append((_epoch_ms(body["create_time"]), iid))
        self.by_process = {code: sorted(pairs) for code, pairs in created.items()}
        # issue #17: instances oafin creates for correction batches, and the scripted approver
        people = sorted(dataset.people, key=lambda p: p.person_id)
        heads = [p.userid for p in people if p.role == "director"] or [p.userid for p in people[:1]]
        self.desk = ApprovalDesk(
            self.instances,
            self._index,
            known_users={p.userid for p in people},
            default_approvers=heads[:1],
            applicant_of_claim={c.claim_no: c.originator.userid for c in dataset.claims},
        )
        for code in self.desk.forms:
            self.by_process.setdefault(code, [])
        # Write calls received (issue #6), in order: {"call", "body", "at"}; a test reads them
        # through SandboxHandle.received_writes().
        self.writes: list[dict[str, Any]] = []

    def _index(self, process_code: str, create_time: str, instance_id: str) -> None:
        bisect.insort(self.by_process.setdefault(process_code, []), (_epoch_ms(create_time), instance_id))

    def list_ids(self, process_code: str, start_ms: int, end_ms: int | None) -> list[str]:
        """Ids created in ``[start_ms, end_ms]`` in a stable order (creation time, then id)."""
        pairs = self.by_process.get(process_code, [])
        lo = bisect.bisect_left(pairs, (start_ms, ""))
        hi = len(pairs) if end_ms is None else bisect.bisect_right(pairs, (end_ms, "\uffff"))
        return [iid for _, iid in pairs[lo:hi]]


def _epoch_ms(beijing: str) -> int:
    moment = datetime.strptime(beijing, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
    return int(moment.timestamp()) * 1000


def _reply(errcode: int = 0, errmsg: str = "ok", **fields: Any) -> JSONResponse:
    return JSONResponse({"errcode": errcode, "errmsg": errmsg, **fields, "request_id": uuid.uuid4().hex})


def _error(code_msg: tuple[int, str], **fields: Any) -> JSONResponse:
    return _reply(code_msg[0], code_msg[1], **fields)


def _bad_param(detail: str) -> JSONResponse:
    return _reply(BAD_PARAM, "不合法的参数", sub_code=str(BAD_PARAM), sub_msg=detail)


async def _body(request: Request) -> dict[str, Any] | None:
    """The JSON body (topapi also takes form-encoded fields)."""
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return dict(await request.form())
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _token_error(state: DingTalkState, request: Request) -> JSONResponse | None:
    if state.tokens.check(request.query_params.get("access_token")) == "valid":
        return None
    return _reply(**EXPIRY_ENVELOPES[state.expiry_envelope])


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _request_of(body: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``request`` object of a TOP-style write (a JSON object or its JSON text), or the body."""
    if body is None:
        return None
    req = body.get("request", body)
    if isinstance(req, str):
        try:
            req = json.loads(req)
        except ValueError:
            return None
    return req if isinstance(req, dict) else None


def create_dingtalk_app(
    dataset: Dataset, faults: FaultPlan, calls: CallLog, token_lifetime: float = TOKEN_LIFETIME
) -> Starlette:
    state = DingTalkState(dataset, token_lifetime)

    async def gettoken(request: Request) -> JSONResponse:
        q = request.query_params
        if (
            q.get("appkey") != credentials.DINGTALK_APP_KEY
            or q.get("appsecret") != credentials.DINGTALK_APP_SECRET
        ):
            return _error(BAD_APP)
        token = state.tokens.issue()
        lifetime = state.tokens.lifetime
        expires_in = int(lifetime) if lifetime == int(lifetime) else lifetime
        return JSONResponse({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": expires_in})

    async def listids(request: Request) -> JSONResponse:
        if (refused := _token_error(state, request)) is not None:
            return refused
        body = await _body(request)
        if body is None:
            return _bad_param("body is not a JSON object")
        process_code = body.get("process_code")
        start_ms, end_ms = _int(body.get("start_time")), _int(body.get("end_time"))
        size, cursor = _int(body.get("size", DEFAULT_SIZE)), _int(body.get("cursor", 0))
        if not process_code:
            return _bad_param("process_code is required")
        if process_code not in state.by_process:
            return _bad_param(f"process_code {process_code} does not exist")
        if start_ms is None:
            return _bad_param("start_time (ms) is required")
        if body.get("end_time") is not None and end_ms is None:
            return _bad_param("end_time must be ms since the epoch")
        if size is None or not 1 <= size <= MAX_SIZE:
            return _bad_param(f"size must be 1..{MAX_SIZE}")
        if cursor is None or cursor < 0:
            return _bad_param("cursor must be a non-negative integer")
        ids = state.list_ids(process_code, start_ms, end_ms)
        result: dict[str, Any] = {"list": ids[cursor : cursor + size]}
        if cursor + size < len(ids):
            result["next_cursor"] = cursor + size  # absent on the last page (§1.2)
        return _reply(result=result)

    async def get(request: Request) -> JSONResponse:
        if (refused := _token_error(state, request)) is not None:
            return refused
        body = await _body(request)
        if body is None:
            return _bad_param("body is not a JSON object")
        iid = str(body.get("process_instance_id", ""))
        instance = state.instances.get(iid)
        if instance is None:
            return _error(NO_INSTANCE)
        if iid in state.desk.created:  # the scripted approver acts when its reads are done
            state.desk.on_read(iid)
            return _reply(process_instance=json.loads(json.dumps(instance)))
        return _reply(process_instance=instance)

    async def create(request: Request) -> JSONResponse:
        # real-clients.md §4.1 (old topapi create): {process_instance_id} at the top level
        if (refused := _token_error(state, request)) is not None:
            return refused
        body = await _body(request)
        if body is None:
            return _bad_param("body is not a JSON object")
        try:
            return _reply(process_instance_id=state.desk.create(body))
        except DeskError as exc:
            return _bad_param(str(exc))

    async def execute(request: Request) -> JSONResponse:
        # source-systems.md §1.5 (old execute): agree or refuse one task
        if (refused := _token_error(state, request)) is not None:
            return refused
        req = _request_of(await _body(request))
        if req is None:
            return _bad_param("request is not a JSON object")
        iid = str(req.get("process_instance_id") or "")
        if iid not in state.instances:
            return _error(NO_INSTANCE)
        try:
            state.desk.execute(
                iid,
                str(req.get("actioner_userid") or ""),
                str(req.get("result") or ""),
                req.get("task_id"),
                str(req.get("remark") or ""),
            )
        except DeskError as exc:
            return _bad_param(str(exc))
        return _reply(result=True, success=True)

    async def terminate(request: Request) -> JSONResponse:
        # source-systems.md §1.5 (old terminate): the originator withdraws (撤销)
        if (refused := _token_error(state, request)) is not None:
            return refused
        req = _request_of(await _body(request))
        if req is None:
            return _bad_param("request is not a JSON object")
        iid = str(req.get("process_instance_id") or "")
        if iid not in state.instances:
            return _error(NO_INSTANCE)
        try:
            state.desk.terminate(
                iid, str(req.get("operating_userid") or ""), str(req.get("remark") or "撤销")
            )
        except DeskError as exc:
            return _bad_param(str(exc))
        return _reply(result=True, success=True)

    async def comment_add(request: Request) -> JSONResponse:
        # source-systems.md §1.5 (old API): the comment shows afterwards in the instance's
        # operation_records as ADD_REMARK (§1.4), which is how a client checks it landed.
        if (refused := _token_error(state, request)) is not None:
            return refused
        body = await _body(request)
        if body is None:
            return _bad_param("body is not a JSON object")
        req = body.get("request", body)
        if isinstance(req, str):
            try:
                req = json.loads(req)
            except ValueError:
                return _bad_param("request is not a JSON object")
        if not isinstance(req, dict):
            return _bad_param("request is not a JSON object")
        iid = str(req.get("process_instance_id") or "")
        text, userid = req.get("text"), req.get("comment_userid")
        if not text or not userid:
            return _bad_param("text and comment_userid are required")
        instance = state.instances.get(iid)
        if instance is None:
            return _error(NO_INSTANCE)
        now = datetime.now(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
        record = {
            "userid": str(userid),
            "date": now,
            "operation_type": "ADD_REMARK",
            "operation_result": "NONE",
            "remark": str(text),
        }
        # A new list: the generated dataset the instance came from stays untouched.
        instance["operation_records"] = [*instance.get("operation_records", []), record]
        state.writes.append({"call": "process/instance/comment/add", "body": req, "at": now})
        return _reply(result=True, success=True)

    def expire(scope: Scope) -> None:
        token = Request(scope).query_params.get("access_token")
        state.tokens.expire(token)

    faults.register("dingtalk", FAULTS)  # now: faults may be armed before the first call
    app = Starlette(
        routes=[
            Route("/gettoken", gettoken, methods=["GET"]),
            Route("/topapi/processinstance/listids", listids, methods=["POST"]),
            Route("/topapi/processinstance/get", get, methods=["POST"]),
            Route("/topapi/process/instance/comment/add", comment_add, methods=["POST"]),
            Route("/topapi/processinstance/create", create, methods=["POST"]),
            Route("/topapi/process/instance/execute", execute, methods=["POST"]),
            Route("/topapi/process/instance/terminate", terminate, methods=["POST"]),
        ],
        middleware=[
            Middleware(
                SandboxMiddleware,
                system="dingtalk",
                faults=faults,
                calls=calls,
                expire_credential=expire,
                is_authed=lambda path: path != "/gettoken",
                profile=FAULTS,
            )
        ],
    )
    app.state.dingtalk = state
    return app


def create_app(dataset: Dataset, calls: CallLog, faults: FaultPlan) -> tuple[Starlette, DingTalkState]:
    app = create_dingtalk_app(dataset, faults, calls)
    return app, app.state.dingtalk


TWIN: Final = Twin(
    name="dingtalk",
    role="oa",
    create_app=create_app,
    default_port=18701,
    credentials={"app_key": credentials.DINGTALK_APP_KEY, "app_secret": credentials.DINGTALK_APP_SECRET},
    files=lambda dataset: {"dingtalk_instances.json": instances(dataset)},
)
