"""Fake Yonyou YonBIP OpenAPI: self-built-app token, queryVouchers, queryVoucherById, addVoucher.

Shapes from source-systems.md §8.1 and real-clients.md §1.9, §2.6:

- token: ``GET /iuap-api-auth/open-auth/selfAppAuth/getAccessToken`` and the ``…/base/v1/…`` path
  (both served, §1.9), checking ``appKey`` and the HMAC-SHA256 ``signature`` over the sorted
  ``name+value`` pairs; ``{"code": "00000", "data": {"access_token", "expire": 7200}}``;
- business calls under ``/iuap-api-gateway``: the token as the ``access_token`` query parameter or,
  as the SDK sends it, the ``access_token`` header (§1.9: a twin should accept both);
- ``queryVouchers``: ``accbookCode`` required, ``periodStart``/``periodEnd`` or no rows at all (§2.6
  [U]), filters ``tsStart``/``tsEnd``, ``accsubjectCodeList``, ``voucherStatusList``,
  ``voucherTypeCodeList``; ``pager.pageIndex`` from 1; ``data{pageIndex, pageSize, recordCount,
  recordList}``;
- ``addVoucher``: creates a voucher (status 01 保存); one carrying an OA number (``defines.define1``)
  that a voucher of the book already carries is refused with 310504 (§8.1 duplicate codes).

``TWIN`` is what the sandbox server mounts.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import re
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
from oafin.standard import BUSINESS_TZ
from oafin.systems.yonyou.twin_faults import FAULTS
from oafin.systems.yonyou.twin_render import (
    ACCRUAL_TYPE,
    CNY,
    LINE_ID_BASE,
    MAKER,
    PAYMENT_TYPE,
    VOUCHER_ID_BASE,
    YONYOU_FORMAT,
    vouchers,
)

AUTH: Final = "/iuap-api-auth/open-auth/selfAppAuth"
GATEWAY: Final = "/iuap-api-gateway"
VOUCHER_API: Final = "/yonbip/fi/ficloud/openapi/voucher"
TOKEN_LIFETIME: Final = 7200.0  # §8.1
MAX_PAGE_SIZE: Final = 1000  # §2.6 [U]
# Token-expiry envelopes clients act on (§2.6 [U]): "401" comes with HTTP 401, "10004" with 200.
EXPIRY_ENVELOPES: Final = {
    "401": (401, {"code": "401", "message": "access_token 无效或已过期"}),
    "10004": (200, {"code": "10004", "message": "token已过期，请重新获取"}),
}
_PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_TS = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ZONE = ZoneInfo(BUSINESS_TZ)


def sign(secret: str, params: dict[str, str]) -> str:
    message = "".join(f"{k}{params[k]}" for k in sorted(params) if k != "signature")
    return base64.b64encode(hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()).decode()


def envelope(code: str, message: str, data: Any = None, status: int = 200) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        body["data"] = data
    return JSONResponse(body, status_code=status)


def _lines_have(voucher: dict[str, Any], codes: set[str]) -> bool:
    return any(
        str((line.get("accsubject") or {}).get("code", "")).startswith(tuple(codes))
        for line in voucher.get("body") or []
    )


class YonyouState:
    def __init__(self, dataset: Dataset, token_lifetime: float = TOKEN_LIFETIME) -> None:
        # A new token on every fetch; earlier ones live on until they expire [U].
        self.tokens = TokenStore(token_lifetime, reuse=False)
        self.accbook = (
            dataset.company_code
        )  # accbookCode: the company's book (credentials.YONYOU_ACCBOOK_CODE)
        self.vouchers: list[dict[str, Any]] = [copy.deepcopy(v) for v in vouchers(dataset)]
        self.expiry_envelope = "401"
        # Write calls received, in order: {"call", "body"}.
        self.writes: list[dict[str, Any]] = []

    def select(self, query: dict[str, Any]) -> list[dict[str, Any]] | str:
        """The vouchers a query matches, in the served order, or why the query is refused (code 999)."""
        start, end = query.get("periodStart"), query.get("periodEnd")
        if not start or not end:
            return []  # §2.6 [U]: no periods, no rows
        for name in ("periodStart", "periodEnd"):
            if not isinstance(query[name], str) or not _PERIOD.match(query[name]):
                return f"{name} 格式应为 yyyy-MM"
        ts_start, ts_end = query.get("tsStart"), query.get("tsEnd")
        for name, value in (("tsStart", ts_start), ("tsEnd", ts_end)):
            if value is not None and (not isinstance(value, str) or not _TS.match(value)):
                return f"{name} 格式应为 yyyy-MM-dd HH:mm:ss"
        subjects = query.get("accsubjectCodeList")
        statuses = query.get("voucherStatusList")
        types = query.get("voucherTypeCodeList")
        for name, value in (
            ("accsubjectCodeList", subjects),
            ("voucherStatusList", statuses),
            ("voucherTypeCodeList", types),
        ):
            if value is not None and not isinstance(value, list):
                return f"{name} 必须是数组"
        chosen = []
        for voucher in self.vouchers:
            header = voucher["header"]
            if not start <= header["period"] <= end:
                continue
            if ts_start and header["ts"] < ts_start or ts_end and header["ts"] > ts_end:
                continue
            if subjects and not _lines_have(voucher, {str(s) for s in subjects}):
                continue
            if statuses and header["voucherstatus"] not in {str(s) for s in statuses}:
                continue
            if types and header["vouchertype"]["code"] not in {str(t) for t in types}:
                continue
            chosen.append(voucher)
        return chosen


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _money(value: Any) -> int:
    """Yuan (number or text) as fen, exactly."""
    from decimal import Decimal, InvalidOperation

    try:
        amount = Decimal(str(value or "0"))
    except InvalidOperation:
        raise ValueError(f"金额 {value!r} 不是数字") from None
    fen = amount * 100
    if fen != fen.to_integral_value():
        raise ValueError(f"金额 {value!r} 超过两位小数")
    return int(fen)


def create_yonyou_app(
    dataset: Dataset, faults: FaultPlan, calls: CallLog, token_lifetime: float = TOKEN_LIFETIME
) -> Starlette:
    state = YonyouState(dataset, token_lifetime)

    async def token(request: Request) -> Response:
        params = dict(request.query_params)
        if params.get("appKey") != credentials.YONYOU_APP_KEY:
            return envelope("310005", "应用不存在")  # §2.6
        timestamp = params.get("timestamp", "")
        if not timestamp.isdigit() or len(timestamp) != 13:
            return envelope("310001", "timestamp 应为毫秒时间戳")  # [U]: the code is the sandbox's
        given = params.get("signature", "")
        expected = sign(credentials.YONYOU_APP_SECRET, {k: v for k, v in params.items() if k != "tenantId"})
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return envelope("310001", "签名不正确")  # §2.6 wording; the code is the sandbox's [U]
        issued = state.tokens.issue()
        return envelope("00000", "成功", {"access_token": issued, "expire": int(state.tokens.lifetime)})

    def refused(request: Request) -> Response | None:
        """None if the call carries a live token (query parameter or header, §1.9), else the answer."""
        given = request.query_params.get("access_token") or request.headers.get("access_token")
        if given and state.tokens.check(given) == "valid":
            return None
        status, body = EXPIRY_ENVELOPES[state.expiry_envelope]
        return JSONResponse(body, status_code=status)

    async def body_of(request: Request) -> dict[str, Any] | None:
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    async def query(request: Request) -> Response:
        answer = refused(request)
        if answer is not None:
            return answer
        body = await body_of(request)
        if body is None:
            return envelope("999", "请求体不是合法的 JSON 对象")
        book = body.get("accbookCode")
        if not book:
            return envelope("999", "accbookCode 不能为空")
        if book != state.accbook:
            return envelope("999", f"账簿 {book} 不存在")
        pager = body.get("pager") or {}
        index, size = _int(pager.get("pageIndex", 1)), _int(pager.get("pageSize", 10))
        if (
            not isinstance(pager, dict)
            or index is None
            or size is None
            or index < 1
            or not 1 <= size <= MAX_PAGE_SIZE
        ):
            return envelope("999", f"pager.pageIndex 从 1 开始, pageSize 为 1..{MAX_PAGE_SIZE}")
        chosen = state.select(body)
        if isinstance(chosen, str):
            return envelope("999", chosen)
        page = chosen[(index - 1) * size : index * size]
        data = {"pageIndex": index, "pageSize": size, "recordCount": len(chosen), "recordList": page}
        return envelope("200", "OK", data)

    async def by_id(request: Request) -> Response:
        answer = refused(request)
        if answer is not None:
            return answer
        body = await body_of(request) or {}
        wanted = str(body.get("voucherId", ""))
        found = next((v for v in state.vouchers if str(v["header"]["id"]) == wanted), None)
        if found is None:
            return envelope("404", "凭证不存在！")  # §8.1
        return envelope("200", "OK", found)

    async def add(request: Request) -> Response:
        answer = refused(request)
        if answer is not None:
            return answer
        body = await body_of(request)
        if body is None:
            return envelope("999", "请求体不是合法的 JSON 对象")
        state.writes.append({"call": "addVoucher", "body": body})
        if body.get("accbookCode") != state.accbook:
            return envelope("999", f"账簿 {body.get('accbookCode')} 不存在")
        lines = body.get("bodies")
        if not isinstance(lines, list) or len(lines) < 2:
            return envelope("999", "bodies 至少两行分录")
        oa_no = str((body.get("defines") or {}).get("define1") or "").strip()
        if oa_no and any(
            str(v["header"]["defines"].get("define1") or "").strip() == oa_no for v in state.vouchers
        ):
            return envelope("310504", f"凭证重复：自定义项1 {oa_no} 已有凭证")  # §8.1 duplicate code
        make = str(body.get("makeTime") or "")
        if _DATE.match(make):
            make += " 00:00:00"
        if not _TS.match(make):
            return envelope("999", "makeTime 格式应为 yyyy-MM-dd")
        try:
            debit = [_money(line.get("debitOrg", line.get("debitOriginal"))) for line in lines]
            credit = [_money(line.get("creditOrg", line.get("creditOriginal"))) for line in lines]
        except (ValueError, AttributeError) as exc:
            return envelope("999", str(exc))
        if sum(debit) != sum(credit) or sum(debit) <= 0:
            return envelope("999", "借贷不平衡")
        vid = (
            max(int(v["header"]["id"]) for v in state.vouchers) + 1 if state.vouchers else VOUCHER_ID_BASE + 1
        )
        kind = PAYMENT_TYPE if str(body.get("voucherTypeCode")) == PAYMENT_TYPE["code"] else ACCRUAL_TYPE
        billcode = f"{kind['voucherstr']}-W{vid - VOUCHER_ID_BASE:06d}"
        now = datetime.now(_ZONE).strftime(YONYOU_FORMAT)
        total = debit and f"{sum(debit) // 100}.{sum(debit) % 100:02d}"
        header = {
            "id": vid,
            "billcode": billcode,
            "vouchertype": dict(kind),
            "voucherstatus": "01",  # 保存 (§2.6)
            "maketime": make,
            "period": make[:7],
            "ts": now,
            "maker": dict(MAKER),
            "srcsystem": "OPENAPI",
            "accbook": {"code": state.accbook, "name": f"{state.accbook} 主账簿"},
            "currency": dict(CNY),
            "totaldebit_org": total,
            "totalcredit_org": total,
            "defines": {"define1": oa_no},
        }
        entries = []
        for n, (line, dr, cr) in enumerate(zip(lines, debit, credit, strict=True), start=1):
            aux = [
                {
                    "type": {"code": a.get("type"), "name": a.get("type")},
                    "code": a.get("valueCode"),
                    "name": "",
                }
                for a in line.get("clientAuxiliary") or []
                if isinstance(a, dict)
            ]
            entries.append(
                {
                    "id": str(LINE_ID_BASE + (vid - VOUCHER_ID_BASE) * 10 + n),
                    "recordnumber": n,
                    "description": line.get("description") or "",
                    "accsubject": {"code": str(line.get("accsubjectCode") or ""), "name": ""},
                    "currency": dict(CNY),
                    "debit_original": f"{dr // 100}.{dr % 100:02d}",
                    "credit_original": f"{cr // 100}.{cr % 100:02d}",
                    "debit_org": f"{dr // 100}.{dr % 100:02d}",
                    "credit_org": f"{cr // 100}.{cr % 100:02d}",
                    "rate_org": 1,
                    "clientauxiliary": aux,
                    "defines": dict(line.get("defines") or {}),
                }
            )
        state.vouchers.append({"header": header, "body": entries})
        return envelope("200", "OK", {"voucherId": str(vid), "billCode": billcode})

    def expire(scope: Scope) -> None:
        request = Request(scope)
        state.tokens.expire(request.query_params.get("access_token") or request.headers.get("access_token"))

    faults.register("yonyou", FAULTS)  # now: faults may be armed before the first call
    routes = [
        Route(f"{AUTH}/getAccessToken", token, methods=["GET"]),
        Route(f"{AUTH}/base/v1/getAccessToken", token, methods=["GET"]),
        Route(f"{GATEWAY}{VOUCHER_API}/queryVouchers", query, methods=["POST"]),
        Route(f"{GATEWAY}{VOUCHER_API}/addVoucher", add, methods=["POST"]),
        Route(f"{GATEWAY}/yonbip/EFI/openapi/voucher/queryVoucherById", by_id, methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(
                SandboxMiddleware,
                system="yonyou",
                faults=faults,
                calls=calls,
                expire_credential=expire,
                is_authed=lambda path: path.startswith(GATEWAY),
                profile=FAULTS,
            )
        ],
    )
    app.state.yonyou = state
    return app


def create_app(dataset: Dataset, calls: CallLog, faults: FaultPlan) -> tuple[Starlette, YonyouState]:
    app = create_yonyou_app(dataset, faults, calls)
    return app, app.state.yonyou


TWIN: Final = Twin(
    name="yonyou",
    role="erp",
    create_app=create_app,
    default_port=18709,
    credentials={
        "app_key": credentials.YONYOU_APP_KEY,
        "app_secret": credentials.YONYOU_APP_SECRET,
        "accbook_code": credentials.YONYOU_ACCBOOK_CODE,
    },
    files=lambda dataset: {"yonyou_vouchers.json": vouchers(dataset)},
    url_path=GATEWAY,
)
