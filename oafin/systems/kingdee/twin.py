"""Fake Kingdee K/3 Cloud WebAPI: LoginByAppSecret, ExecuteBillQuery, BillQuery, View (and Logout).

Shapes from source-systems.md §7.1-7.4: ``POST /k3cloud/<Service>.common.kdsvc`` with a
JSON body; a query answers a bare 2-D array in ``FieldKeys`` order (``BillQuery``: JSON objects
keyed by field key), and an error as a ``ResponseStatus`` nested in one, with HTTP 200 either
way. A caller is authenticated either by the ``kdservice-sessionid`` session of a
``LoginByAppSecret`` (cookie, or the header the SDK echoes) or, as the official SDK does, by
signing every request (``X-Api-*``/``X-Kd-*`` headers, real-clients.md §1.8): both signatures
are checked for the sandbox's public credentials. ``TWIN`` is what the sandbox server mounts.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Scope

from oafin.connectors.auth import kingdee_signature_headers
from oafin.sandbox import credentials
from oafin.sandbox.dataset import Dataset
from oafin.sandbox.faults import CallLog, FaultPlan, SandboxMiddleware
from oafin.sandbox.tokens import TokenStore
from oafin.sandbox.twin import Twin
from oafin.systems.kingdee.twin_faults import FAULTS
from oafin.systems.kingdee.twin_filter import FilterError, Predicate, parse_filter, parse_order, sort_key
from oafin.systems.kingdee.twin_render import FORM_FIELDS, form_rows, voucher_form_rows

PREFIX: Final = "Kingdee.BOS.WebApi.ServicesStub."  # §7.1
LOGIN: Final = PREFIX + "AuthService.LoginByAppSecret"
LOGOUT: Final = PREFIX + "AuthService.Logout"
QUERY: Final = PREFIX + "DynamicFormService.ExecuteBillQuery"
BILL_QUERY: Final = PREFIX + "DynamicFormService.BillQuery"  # JSON objects (SDK 2023-09, §7.3 [U])
VIEW: Final = PREFIX + "DynamicFormService.View"  # §7.4
SAVE: Final = PREFIX + "DynamicFormService.Save"  # §7.4 (issue #6 write-back)
SUBMIT: Final = PREFIX + "DynamicFormService.Submit"
AUDIT: Final = PREFIX + "DynamicFormService.Audit"
SESSION_COOKIE: Final = "kdservice-sessionid"  # §7.2
SESSION_LIFETIME: Final = 3600.0  # seconds; not documented (§7.5), so a guess
MAX_LIMIT: Final = 2000  # §7.3: Limit ≤ 2000
SESSION_LOST: Final = "会话信息已丢失，请重新登录"  # §7.2, with MsgCode 1
# The SDK's signature headers (k3cloud_webapi_sdk/const/header_param.py; real-clients.md §1.8).
SIGNATURE_HEADERS: Final = (
    "X-Api-ClientID",
    "X-Api-Auth-Version",
    "x-api-timestamp",
    "x-api-nonce",
    "x-api-signheaders",
    "X-Api-Signature",
    "X-Kd-Appkey",
    "X-Kd-Appdata",
    "X-Kd-Signature",
)


class FormTable:
    """One FormId's rows, and its field keys (matched without regard to case, as Kingdee does)."""

    def __init__(self, form_id: str, rows: list[dict[str, Any]], fields: Iterable[str] = ()) -> None:
        self.form_id = form_id
        self.rows = rows
        self.keys = {key.lower(): key for key in fields}
        for row in rows:
            for key in row:
                self.keys.setdefault(key.lower(), key)

    def resolve(self, key: str) -> str:
        canonical = self.keys.get(key.strip().lower())
        if canonical is None:
            raise FilterError(f"元数据中标识为{key.strip()}的字段不存在", field=key.strip())
        return canonical


class KingdeeState:
    def __init__(self, dataset: Dataset, session_lifetime: float = SESSION_LIFETIME) -> None:
        self.sessions = TokenStore(session_lifetime, reuse=False)
        self.tokens = self.sessions  # the name every twin's state shares (oafin.sandbox.twin)
        self.forms = {
            form: FormTable(form, list(rows), FORM_FIELDS.get(form, ()))
            for form, rows in {**form_rows(dataset), **voucher_form_rows(dataset)}.items()
        }
        self._selections: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        # Write calls received (issue #6), in order: {"call", "formid", "data"}.
        self.writes: list[dict[str, Any]] = []

    def changed(self) -> None:
        """A write changed some rows: forget the cached query selections."""
        self._selections.clear()

    def select(self, form: FormTable, filter_string: str, order_string: str) -> list[dict[str, Any]]:
        """Rows matching the filter, in the asked order (then FID), cached for the next pages."""
        cache_key = (form.form_id, filter_string or "", order_string or "")
        rows = self._selections.get(cache_key)
        if rows is None:
            predicate: Predicate = parse_filter(filter_string, form.resolve)
            order = parse_order(order_string, form.resolve)
            rows = [row for row in form.rows if predicate(row)]  # form.rows are in FID order
            for field, descending in reversed(order):
                rows.sort(key=lambda row, f=field: sort_key(row[f]), reverse=descending)  # type: ignore[misc]  # f binds the loop variable
            if len(self._selections) > 256:
                self._selections.clear()
            self._selections[cache_key] = rows
        return rows


def kingdee_error(message: str, field: str | None = None, msg_code: int = 0) -> list[Any]:
    """A failed call's answer: the ResponseStatus nested in the 2-D array (§7.3)."""
    status = {
        "ErrorCode": 500,
        "IsSuccess": False,
        "Errors": [{"FieldName": field, "Message": message, "DIndex": 0}],
        "SuccessEntitys": [],
        "SuccessMessages": [],
        "MsgCode": msg_code,
    }
    return [[{"Result": {"ResponseStatus": status}}]]


def signature_problem(headers: Any, path: str) -> tuple[str, str] | None:
    """Why a request's SDK signature headers do not authenticate it, as (header, reason), or None.

    Every header must be present and well formed (real-clients.md §1.8); ``X-Kd-Appkey`` and the
    data centre and user in ``X-Kd-Appdata`` must be the sandbox's; both signatures must be what
    the SDK computes from the sandbox's AppID and AppSecret (``kingdee_signature_headers``).
    """
    for name in SIGNATURE_HEADERS:
        if not headers.get(name):
            return name, "missing"
    if headers["X-Api-Auth-Version"] != "2.0":
        return "X-Api-Auth-Version", "must be 2.0"
    timestamp, nonce = headers["x-api-timestamp"], headers["x-api-nonce"]
    if not timestamp.isdigit() or len(timestamp) > 13:
        return "x-api-timestamp", "must be Unix seconds"
    if len(nonce) > 64 or not nonce.isascii() or not nonce.isalnum():
        return "x-api-nonce", "must be up to 64 letters or digits"
    signed = [h.strip().lower() for h in headers["x-api-signheaders"].split(",")]
    if sorted(signed) != ["x-api-nonce", "x-api-timestamp"]:
        return "x-api-signheaders", "must name x-api-timestamp,x-api-nonce"
    app_id = headers["X-Kd-Appkey"]
    if app_id != credentials.KINGDEE_APP_ID:
        return "X-Kd-Appkey", "unknown AppID"
    if headers["X-Api-ClientID"] != app_id.split("_", 1)[0]:
        return "X-Api-ClientID", "is not the AppID's client id"
    try:
        app_data = base64.b64decode(headers["X-Kd-Appdata"], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return "X-Kd-Appdata", "is not base64 of UTF-8 text"
    parts = app_data.split(",")
    if len(parts) != 4 or not parts[2].isdigit() or not parts[3].lstrip("-").isdigit():
        return "X-Kd-Appdata", "must be base64 of acctId,userName,lcid,orgNum"
    if (parts[0], parts[1]) != (credentials.KINGDEE_ACCT_ID, credentials.KINGDEE_USERNAME):
        return "X-Kd-Appdata", "unknown data centre or user"
    expected = kingdee_signature_headers(
        path=path,
        app_id=app_id,
        app_secret=credentials.KINGDEE_APP_SECRET,
        app_data=app_data,
        timestamp=timestamp,
        nonce=nonce,
    )
    for name in ("X-Kd-Signature", "X-Api-Signature"):
        if not hmac.compare_digest(headers[name].encode(), expected[name].encode()):
            return name, "signature does not verify"
    return None


def nest(row: dict[str, Any]) -> dict[str, Any]:
    """Dotted field keys as nested objects (``FProposerID.FStaffNumber`` -> ``{"FProposerID": {...}}``).

    The inverse of the flattening Save does: a View package nests base-data references as a
    Save model does (§7.4).
    """
    out: dict[str, Any] = {}
    for key, value in row.items():
        *parents, leaf = key.split(".")
        target = out
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    return out


def _login_args(body: Any) -> tuple[str, ...] | None:
    """(acctID, userName, appId, appSecret) from the positional or the named body (§7.2)."""
    if not isinstance(body, dict):
        return None
    params = body.get("parameters")
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except ValueError:
            return None
    if isinstance(params, list) and len(params) >= 4:
        return tuple(str(p) for p in params[:4])
    secret = body.get("appSecret", body.get("appSec", body.get("appsecret")))
    named = (
        body.get("acctID", body.get("acctId")),
        body.get("username", body.get("userName")),
        body.get("appId"),
        secret,
    )
    return tuple(str(v) for v in named) if all(v is not None for v in named) else None


def _query_data(body: Any) -> dict[str, Any] | None:
    """``{"data": {...}}`` (data may be a JSON string), or the older ``{"parameters": [data]}``."""
    if not isinstance(body, dict):
        return None
    data = body.get("data")
    if data is None and isinstance(body.get("parameters"), list) and body["parameters"]:
        data = body["parameters"][-1]
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return None
    return data if isinstance(data, dict) else None


def _int(value: Any, default: int) -> int | None:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def create_kingdee_app(
    dataset: Dataset, faults: FaultPlan, calls: CallLog, session_lifetime: float = SESSION_LIFETIME
) -> Starlette:
    state = KingdeeState(dataset, session_lifetime)
    expected = (
        credentials.KINGDEE_ACCT_ID,
        credentials.KINGDEE_USERNAME,
        credentials.KINGDEE_APP_ID,
        credentials.KINGDEE_APP_SECRET,
    )

    async def login(body: Any, request: Request) -> Response:
        args = _login_args(body)
        if args != expected:
            return JSONResponse(
                {
                    "Message": "第三方系统登录授权验证失败，请检查数据中心、用户名、应用ID和应用密钥",
                    "MessageCode": "CheckPasswordPolicy",
                    "LoginResultType": 0,
                    "Context": None,
                    "KDSVCSessionId": None,
                    "IsSuccessByAPI": False,
                }
            )
        session = state.sessions.issue()
        response = JSONResponse(
            {
                "Message": None,
                "MessageCode": "CheckPasswordPolicy",
                "LoginResultType": 1,
                "Context": {
                    "UserLocale": "zh-CN",
                    "UserId": 100_008,
                    "UserName": credentials.KINGDEE_USERNAME,
                    "DBid": credentials.KINGDEE_ACCT_ID,
                    "DataCenterName": "oafin sandbox",
                    "SessionId": session,
                },
                "KDSVCSessionId": session,
                "IsSuccessByAPI": True,
            }
        )
        response.set_cookie(SESSION_COOKIE, session, path="/", httponly=True)
        response.set_cookie("ASP.NET_SessionId", session[:24], path="/", httponly=True)
        return response

    async def logout(body: Any, request: Request) -> Response:
        session = request.cookies.get(SESSION_COOKIE)
        if session:
            state.sessions.revoke(session)
        return JSONResponse(True)

    def refusal(request: Request) -> list[Any] | None:
        """None if the request is authenticated (session or SDK signature), else the error (§7.2)."""
        session = request.cookies.get(SESSION_COOKIE) or request.headers.get(SESSION_COOKIE)
        if session and state.sessions.check(session) == "valid":
            return None
        if any(name in request.headers for name in SIGNATURE_HEADERS):
            problem = signature_problem(request.headers, request.url.path)
            if problem is None:
                # A signed call without a live session gets a new one, silently (§7.2 gotcha);
                # the SDK echoes it as a header and a cookie (real-clients.md §1.8).
                request.state.new_session = state.sessions.issue()
                return None
            header, reason = problem
            error = kingdee_error(SESSION_LOST, msg_code=1)
            error[0][0]["Result"]["ResponseStatus"]["Errors"].append(
                {"FieldName": header, "Message": f"{header}: {reason}", "DIndex": 0}
            )
            return error
        return kingdee_error(SESSION_LOST, msg_code=1)

    def selection(body: Any) -> tuple[tuple[list[str], list[str]], list[dict[str, Any]]] | list[Any]:
        """((keys as asked, canonical keys), the page's rows) of a query, or its error answer."""
        data = _query_data(body)
        if data is None:
            return kingdee_error("请求参数 data 不是合法的 JSON 对象")
        form = state.forms.get(str(data.get("FormId", "")))
        if form is None:
            return kingdee_error("业务对象不存在", field="FormId")
        start, limit, top = (
            _int(data.get("StartRow"), 0),
            _int(data.get("Limit"), 0),
            _int(data.get("TopRowCount"), 0),
        )
        if start is None or start < 0 or limit is None or limit < 0 or top is None or top < 0:
            return kingdee_error("StartRow、Limit、TopRowCount 必须是非负整数")
        if limit > MAX_LIMIT:
            return kingdee_error(f"Limit 不能大于 {MAX_LIMIT}", field="Limit")
        raw_keys = data.get("FieldKeys", "")
        if not isinstance(raw_keys, str) or not raw_keys.strip():
            return kingdee_error("FieldKeys 必须是以逗号分隔的字段标识字符串", field="FieldKeys")
        try:
            keys = [form.resolve(k) for k in raw_keys.split(",")]
            rows = state.select(form, str(data.get("FilterString") or ""), str(data.get("OrderString") or ""))
        except FilterError as exc:
            return kingdee_error(str(exc), field=exc.field)
        if top:
            rows = rows[:top]
        page = rows[start : start + (limit or MAX_LIMIT)]
        requested = [k.strip() for k in raw_keys.split(",")]
        return (requested, keys), page

    async def query(body: Any, request: Request) -> Response:
        refused = refusal(request)
        if refused is not None:
            return JSONResponse(refused)
        picked = selection(body)
        if isinstance(picked, list):
            return JSONResponse(picked)
        (_, keys), page = picked
        return JSONResponse([[row[k] for k in keys] for row in page])

    async def bill_query(body: Any, request: Request) -> Response:
        # BillQuery: the same query, each row a JSON object keyed by the field keys as asked (§7.3).
        refused = refusal(request)
        if refused is not None:
            return JSONResponse(refused)
        picked = selection(body)
        if isinstance(picked, list):
            return JSONResponse(picked)
        (requested, keys), page = picked
        return JSONResponse([{r: row[k] for r, k in zip(requested, keys, strict=True)} for row in page])

    async def view(body: Any, request: Request) -> Response:
        # View {"formid", "data": {"Number"} | {"Id"}} -> {"Result": {"ResponseStatus", "Result": bill}} (§7.4)
        args = write_args(body, request)
        if isinstance(args, Response):
            return args
        form, data = args
        number_key = form.resolve("FBillNo")
        number, fid = data.get("Number"), _int(data.get("Id"), 0)
        if not number and not fid:
            return write_error("Number 和 Id 不能同时为空", field="Number")
        row = next(
            (r for r in form.rows if (number and r[number_key] == number) or (fid and r["FID"] == fid)),
            None,
        )
        if row is None:
            return write_error(f"单据 {number or fid} 不存在", field="Number" if number else "Id")
        package = {"Id": row["FID"], "Number": row[number_key], **nest(row)}
        return write_reply([{"Id": row["FID"], "Number": row[number_key], "DIndex": 0}], Result=package)

    def write_reply(ok: list[dict[str, Any]], **extra: Any) -> JSONResponse:
        status = {
            "ErrorCode": 0,
            "IsSuccess": True,
            "Errors": [],
            "SuccessEntitys": ok,
            "SuccessMessages": [],
            "MsgCode": 0,
        }
        return JSONResponse({"Result": {"ResponseStatus": status, **extra}})

    def write_error(message: str, field: str | None = None) -> JSONResponse:
        return JSONResponse(kingdee_error(message, field)[0][0])

    def write_args(body: Any, request: Request) -> tuple[FormTable, dict[str, Any]] | Response:
        refused = refusal(request)
        if refused is not None:
            return JSONResponse(refused[0][0])
        data = _query_data(body)
        if data is None:
            return write_error("请求参数 data 不是合法的 JSON 对象")
        form = state.forms.get(str(body.get("formid") or body.get("FormId") or ""))
        if form is None:
            return write_error("业务对象不存在", field="FormId")
        return form, data

    def flatten(model: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        # Save models nest base-data references ({"FProposerID": {"FStaffNumber": ...}});
        # queries name them with dots (FProposerID.FStaffNumber), as the rows here are keyed.
        flat: dict[str, Any] = {}
        for key, value in model.items():
            if isinstance(value, dict):
                flat |= flatten(value, f"{prefix}{key}.")
            else:
                flat[f"{prefix}{key}"] = value
        return flat

    async def save(body: Any, request: Request) -> Response:
        args = write_args(body, request)
        if isinstance(args, Response):
            return args
        form, data = args
        model = data.get("Model")
        if not isinstance(model, dict):
            return write_error("Model 不能为空", field="Model")
        fields = {form.resolve(k) if k.lower() in form.keys else k: v for k, v in flatten(model).items()}
        fid = _int(fields.pop("FID", 0), 0) or 0
        state.writes.append({"call": "Save", "formid": form.form_id, "data": data})
        if fid:
            index = next((i for i, row in enumerate(form.rows) if row["FID"] == fid), None)
            if index is None:
                return write_error(f"单据 FID={fid} 不存在", field="FID")
            update = data.get("NeedUpDateFields") or list(fields)
            wanted = {form.resolve(k) for k in update if k.lower() in form.keys}
            form.rows[index] = {**form.rows[index], **{k: v for k, v in fields.items() if k in wanted}}
            row = form.rows[index]
        else:
            fid = max((r["FID"] for r in form.rows), default=0) + 1
            number_key = form.resolve("FBillNo")
            prefix = "FYBX" if form.form_id == "ER_ExpReimbursement" else "FKD"
            row = {key: "" for key in form.keys.values()}
            status_key = next((k for k in form.keys.values() if k.lower() == "fdocumentstatus"), None)
            row |= fields | {"FID": fid, number_key: fields.get(number_key) or f"{prefix}W{fid:08d}"}
            if status_key:
                row[status_key] = "A"
            form.rows.append(row)
        state.changed()
        number = row[form.resolve("FBillNo")]
        return write_reply(
            [{"Id": fid, "Number": number, "DIndex": 0}], Id=fid, Number=number, NeedReturnData=[]
        )

    def status_change(
        service: str, allowed: tuple[str, ...], to: str, refusal: str
    ) -> Callable[[Any, Request], Awaitable[Response]]:
        async def handler(body: Any, request: Request) -> Response:
            args = write_args(body, request)
            if isinstance(args, Response):
                return args
            form, data = args
            numbers = data.get("Numbers") or []
            ids = {_int(i, 0) for i in str(data.get("Ids") or "").split(",") if i.strip()}
            state.writes.append({"call": service, "formid": form.form_id, "data": data})
            number_key = form.resolve("FBillNo")
            status_key = next(k for k in form.keys.values() if k.lower() == "fdocumentstatus")
            hits = [i for i, r in enumerate(form.rows) if r[number_key] in numbers or r["FID"] in ids]
            if not hits:
                return write_error("单据不存在", field="Numbers")
            for i in hits:
                if form.rows[i][status_key] not in allowed:
                    return write_error(f"{form.rows[i][number_key]}: {refusal}")
            ok = []
            for dindex, i in enumerate(hits):
                form.rows[i] = {**form.rows[i], status_key: to}
                ok.append({"Id": form.rows[i]["FID"], "Number": form.rows[i][number_key], "DIndex": dindex})
            state.changed()
            return write_reply(ok)

        return handler

    services: dict[str, Callable[[Any, Request], Awaitable[Response]]] = {
        SAVE: save,
        SUBMIT: status_change("Submit", ("Z", "A", "D"), "B", "单据状态不是暂存、创建或重新审核，不能提交"),
        AUDIT: status_change("Audit", ("B",), "C", "单据状态不是审核中，不能审核"),
        LOGIN: login,
        LOGOUT: logout,
        QUERY: query,
        BILL_QUERY: bill_query,
        VIEW: view,
    }

    async def dispatch(request: Request) -> Response:
        service = request.path_params["service"]
        handler = services.get(service)
        if handler is None:
            return PlainTextResponse(
                f"unknown service {service} (the sandbox serves {sorted(services)})", 404
            )
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            body = None
        response = await handler(body, request)
        new_session = getattr(request.state, "new_session", None)
        if new_session:
            response.set_cookie(SESSION_COOKIE, new_session, path="/", httponly=True)
        return response

    def expire(scope: Scope) -> None:
        request = Request(scope)
        state.sessions.expire(request.cookies.get(SESSION_COOKIE) or request.headers.get(SESSION_COOKIE))

    faults.register("kingdee", FAULTS)  # now: faults may be armed before the first call
    app = Starlette(
        routes=[Route("/k3cloud/{service}.common.kdsvc", dispatch, methods=["POST"])],
        middleware=[
            Middleware(
                SandboxMiddleware,
                system="kingdee",
                faults=faults,
                calls=calls,
                expire_credential=expire,
                is_authed=lambda path: "AuthService." not in path,
                profile=FAULTS,
            )
        ],
    )
    app.state.kingdee = state
    return app


def create_app(dataset: Dataset, calls: CallLog, faults: FaultPlan) -> tuple[Starlette, KingdeeState]:
    app = create_kingdee_app(dataset, faults, calls)
    return app, app.state.kingdee


TWIN: Final = Twin(
    name="kingdee",
    role="erp",
    create_app=create_app,
    default_port=18702,
    credentials={
        "acct_id": credentials.KINGDEE_ACCT_ID,
        "username": credentials.KINGDEE_USERNAME,
        "app_id": credentials.KINGDEE_APP_ID,
        "app_secret": credentials.KINGDEE_APP_SECRET,
        "lcid": credentials.KINGDEE_LCID,
    },
    files=lambda dataset: {f"kingdee_{form}.json": rows for form, rows in form_rows(dataset).items()},
    url_path="/k3cloud/",
)
