"""Fake DingTalk v1.0 (``api.dingtalk.com``): accessToken, instanceIds/query, processInstances, comments.

Shapes from source-systems.md §1.1-1.5 ("New v1.0") and real-clients.md §1.1 (what the official
``alibabacloud-dingtalk`` SDK sends and needs) and §2.7:

- ``POST /v1.0/oauth2/accessToken`` takes a JSON body ``{appKey, appSecret}`` (a form body is
  refused with HTTP 400 "body is mandatory", §1.1) and answers ``{accessToken, expireIn}``;
- every other call carries the token in the ``x-acs-dingtalk-access-token`` header;
- ``POST /v1.0/workflow/processes/instanceIds/query`` takes ``processCode, startTime, endTime
  (ms), nextToken (int, from 0), maxResults (≤ 20)`` and answers
  ``{"result": {"list": [...], "nextToken": "<string>"}, "success": true}``, leaving ``nextToken``
  out on the last page (§1.2);
- ``GET /v1.0/workflow/processInstances?processInstanceId=`` answers
  ``{"result": {...}, "success": "true"}`` (``success`` is a string in the SDK's model, §1.3);
- ``POST /v1.0/workflow/processInstances/comments`` takes ``{processInstanceId, text,
  commentUserId}`` (§1.5); the comment then shows in ``operationRecords`` as ``ADD_REMARK``;
- every error is an HTTP 4xx/5xx with ``{code, message, requestid}`` (§1.6, real-clients.md §1.1).
  A dead token is HTTP 400 "不合法的access_token" (§1.6) under code ``InvalidAuthentication`` [U:
  the code]; ``EXPIRY_ENVELOPES`` holds the variants a test may choose.

``TWIN`` is what the sandbox server mounts.
"""

from __future__ import annotations

import bisect
import json
import uuid
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
from oafin.systems.dingtalk_v1.twin_approvals import CORRECTIONS_PROCESS_CODE, DeskError, V1ApprovalDesk
from oafin.systems.dingtalk_v1.twin_faults import FAULTS, GET_PATH, LIST_PATH, TOKEN_PATH
from oafin.systems.dingtalk_v1.twin_render import instances, utc_minute

NAME: Final = "dingtalk-v1"
TOKEN_HEADER: Final = "x-acs-dingtalk-access-token"
TOKEN_LIFETIME: Final = 7200.0  # "expireIn" 7200 (source-systems.md §1.1)
MAX_RESULTS: Final = 20  # "每页大小，最多传20" (§1.2)
COMMENTS_PATH: Final = "/v1.0/workflow/processInstances/comments"
# (HTTP status, body) of a dead token. §1.6: HTTP 400 "不合法的access_token"; the code is [U].
EXPIRY_ENVELOPES: Final[dict[str, tuple[int, dict[str, str]]]] = {
    "400 InvalidAuthentication": (400, {"code": "InvalidAuthentication", "message": "不合法的access_token"}),
    "401 InvalidAuthentication": (401, {"code": "InvalidAuthentication", "message": "access_token已过期"}),
}
DEFAULT_EXPIRY: Final = "400 InvalidAuthentication"
BAD_APP: Final = (400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")  # [U] the code
NO_INSTANCE: Final = (400, "InvalidProcessInstanceId", "流程实例不存在")  # [U] the code


class DingTalkV1State:
    """The instances indexed for the endpoints, and the token store."""

    def __init__(self, dataset: Dataset, token_lifetime: float = TOKEN_LIFETIME) -> None:
        self.tokens = TokenStore(token_lifetime, reuse=True)
        self.expiry_envelope = DEFAULT_EXPIRY  # a key of EXPIRY_ENVELOPES
        self.instances: dict[str, dict[str, Any]] = {}
        created: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for claim, inst in zip(dataset.claims, instances(dataset), strict=True):
            iid = inst["processInstanceId"]
            self.instances[iid] = {k: v for k, v in inst.items() if k != "processInstanceId"}
            created[dataset.process_code].append((_epoch_ms(claim.created), iid))
        self.by_process = {code: sorted(pairs) for code, pairs in created.items()}
        self.writes: list[dict[str, Any]] = []
        # issue #17: instances oafin creates for correction batches, and the scripted approver
        people = sorted(dataset.people, key=lambda p: p.person_id)
        heads = [p.userid for p in people if p.role == "director"] or [p.userid for p in people[:1]]
        self.desk = V1ApprovalDesk(
            self._index,
            known_users={p.userid for p in people},
            default_approvers=heads[:1],
            applicant_of_claim={c.claim_no: c.originator.userid for c in dataset.claims},
        )
        self.by_process.setdefault(CORRECTIONS_PROCESS_CODE, [])

    def _index(self, process_code: str, created_ms: int, instance_id: str) -> None:
        bisect.insort(self.by_process.setdefault(process_code, []), (created_ms, instance_id))

    def list_ids(self, process_code: str, start_ms: int, end_ms: int | None) -> list[str]:
        """Ids created in ``[start_ms, end_ms]``, by creation time then id."""
        pairs = self.by_process.get(process_code, [])
        lo = bisect.bisect_left(pairs, (start_ms, ""))
        hi = len(pairs) if end_ms is None else bisect.bisect_right(pairs, (end_ms, "\uffff"))
        return [iid for _, iid in pairs[lo:hi]]


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp()) * 1000


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "requestid": uuid.uuid4().hex}, status_code=status)


def _bad_param(detail: str) -> JSONResponse:
    return _error(400, "InvalidParameter", detail)


async def _body(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _token_error(state: DingTalkV1State, request: Request) -> JSONResponse | None:
    if state.tokens.check(request.headers.get(TOKEN_HEADER)) == "valid":
        return None
    status, body = EXPIRY_ENVELOPES[state.expiry_envelope]
    return _error(status, body["code"], body["message"])


def create_dingtalk_v1_app(
    dataset: Dataset, faults: FaultPlan, calls: CallLog, token_lifetime: float = TOKEN_LIFETIME
) -> Starlette:
    state = DingTalkV1State(dataset, token_lifetime)

    async def access_token(request: Request) -> JSONResponse:
        if not request.headers.get("content-type", "").startswith("application/json"):
            return _error(400, "MissingBody", "body is mandatory")  # §1.1: JSON only
        body = await _body(request)
        if body is None:
            return _error(400, "MissingBody", "body is mandatory")
        if (
            body.get("appKey") != credentials.DINGTALK_V1_APP_KEY
            or body.get("appSecret") != credentials.DINGTALK_V1_APP_SECRET
        ):
            return _error(*BAD_APP)
        lifetime = state.tokens.lifetime
        expire_in = int(lifetime) if lifetime == int(lifetime) else lifetime
        return JSONResponse({"accessToken": state.tokens.issue(), "expireIn": expire_in})

    async def list_ids(request: Request) -> JSONResponse:
        if (refused := _token_error(state, request)) is not None:
            return refused
        body = await _body(request)
        if body is None:
            return _bad_param("body is not a JSON object")
        process_code = body.get("processCode")
        start_ms, end_ms = _int(body.get("startTime")), _int(body.get("endTime"))
        size, token = _int(body.get("maxResults")), _int(body.get("nextToken"))
        if not process_code:
            return _bad_param("processCode is required")
        if process_code not in state.by_process:
            return _bad_param(f"processCode {process_code} does not exist")
        if start_ms is None:
            return _bad_param("startTime (ms) is required")
        if body.get("endTime") is not None and end_ms is None:
            return _bad_param("endTime must be ms since the epoch")
        if size is None or not 1 <= size <= MAX_RESULTS:
            return _bad_param(f"maxResults is required, 1..{MAX_RESULTS}")
        if token is None or token < 0:
            return _bad_param("nextToken is required, a non-negative integer")
        ids = state.list_ids(process_code, start_ms, end_ms)
        result: dict[str, Any] = {"list": ids[token : token + size]}
        if token + size < len(ids):
            result["nextToken"] = str(token + size)  # a string in the answer, absent at the end (§1.2)
        return JSONResponse({"result": result, "success": True})

    async def get(request: Request) -> JSONResponse:
        if (refused := _token_error(state, request)) is not None:
            return refused
        iid = request.query_params.get("processInstanceId", "")
        if not iid:
            return _bad_param("processInstanceId is required")
        if iid in state.desk.created:  # the scripted approver acts when its reads are done
            return JSONResponse({"result": state.desk.read_v1(iid), "success": "true"})
        instance = state.instances.get(iid)
        if instance is None:
            return _error(*NO_INSTANCE)
        return JSONResponse({"result": instance, "success": "true"})

    async def create_instance(request: Request) -> JSONResponse:
        # real-clients.md §4.1: POST /v1.0/workflow/processInstances -> {"instanceId": ...}
        if (refused := _token_error(state, request)) is not None:
            return refused
        body = await _body(request)
        if body is None:
            return _bad_param("body is not a JSON object")
        try:
            return JSONResponse({"instanceId": state.desk.create_v1(body)})
        except DeskError as exc:
            return _bad_param(str(exc))

    async def add_comment(request: Request) -> JSONResponse:
        # §1.5: POST /v1.0/workflow/processInstances/comments {processInstanceId, text, commentUserId}
        if (refused := _token_error(state, request)) is not None:
            return refused
        body = await _body(request)
        if body is None:
            return _bad_param("body is not a JSON object")
        iid = str(body.get("processInstanceId") or "")
        text, userid = body.get("text"), body.get("commentUserId")
        if not iid or not text or not userid:
            return _bad_param("processInstanceId, text and commentUserId are required")
        instance = state.instances.get(iid)
        if instance is None:
            return _error(*NO_INSTANCE)
        now = datetime.now().astimezone()
        record = {
            "userId": str(userid),
            "date": utc_minute(now),
            "type": "ADD_REMARK",
            "result": "NONE",
            "remark": str(text),
            "showName": "",
            "attachments": [],
        }
        # A new list: the generated dataset the instance came from stays untouched.
        instance["operationRecords"] = [*instance.get("operationRecords", []), record]
        state.writes.append({"call": "processInstances/comments", "body": body, "at": now.isoformat()})
        return JSONResponse({"result": {"success": True}, "success": True})

    def expire(scope: Scope) -> None:
        state.tokens.expire(Request(scope).headers.get(TOKEN_HEADER))

    faults.register(NAME, FAULTS)
    app = Starlette(
        routes=[
            Route(TOKEN_PATH, access_token, methods=["POST"]),
            Route(LIST_PATH, list_ids, methods=["POST"]),
            Route(GET_PATH, get, methods=["GET"]),
            Route(GET_PATH, create_instance, methods=["POST"]),
            Route(COMMENTS_PATH, add_comment, methods=["POST"]),
        ],
        middleware=[
            Middleware(
                SandboxMiddleware,
                system=NAME,
                faults=faults,
                calls=calls,
                expire_credential=expire,
                is_authed=lambda path: path != TOKEN_PATH,
                profile=FAULTS,
            )
        ],
    )
    app.state.dingtalk_v1 = state
    return app


def create_app(dataset: Dataset, calls: CallLog, faults: FaultPlan) -> tuple[Starlette, DingTalkV1State]:
    app = create_dingtalk_v1_app(dataset, faults, calls)
    return app, app.state.dingtalk_v1


TWIN: Final = Twin(
    name=NAME,
    role="oa",
    create_app=create_app,
    default_port=18703,
    credentials={
        "app_key": credentials.DINGTALK_V1_APP_KEY,
        "app_secret": credentials.DINGTALK_V1_APP_SECRET,
    },
    files=lambda dataset: {"dingtalk_v1_instances.json": instances(dataset)},
)
