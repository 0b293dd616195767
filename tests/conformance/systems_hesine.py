"""The conformance adapter of Hesine/Ekuaibao (合思): documents by type, live then deleted, on updateTime."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from oafin.connectors import AuthError, BadResponseError, SourceError, TransientError
from oafin.connectors.http import SystemClient
from oafin.connectors.limits import no_limit
from oafin.records import RawRecord
from oafin.sandbox.dataset import Dataset
from oafin.sandbox.model import Bill, Payment
from oafin.systems.hesine.client import HesineClient
from oafin.systems.hesine.twin import TWIN as HESINE_TWIN
from oafin.systems.hesine.twin_render import documents
from tests.conformance.systems import FAST, ErrorShape, Served, SystemUnderTest

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _open(base_url: str, *, page_size: int | None = None, bad_credentials: bool = False) -> SystemClient:
    creds = HESINE_TWIN.credentials
    security = "not-the-security" if bad_credentials else str(creds["app_security"])
    return HesineClient(
        base_url, str(creds["app_key"]), security, page_size=page_size or 100, retry=FAST, limiter=no_limit
    )


def _read(client: SystemClient, kind: str, start: datetime, end: datetime) -> Iterator[RawRecord]:
    assert isinstance(client, HesineClient)
    return client.iter_documents(kind, start, end)


def _served(dataset: Dataset, kind: str) -> Served:
    """Live documents by (updateTime, id), then the deleted ones: the order the client reads them."""
    docs = documents(dataset).get(kind, [])

    def moment(doc: dict) -> datetime:
        return _EPOCH + timedelta(milliseconds=doc["updateTime"])

    live = sorted((d for d in docs if d["active"]), key=lambda d: (d["updateTime"], d["id"]))
    gone = sorted((d for d in docs if not d["active"]), key=lambda d: (d["updateTime"], d["id"]))
    return [(moment(d), d["id"]) for d in live + gone]


def _month_item(dataset: Dataset, raw: RawRecord) -> Bill | Payment:
    """The bill or payment a document renders; a deleted draft is its bill renumbered, without OA number."""
    flow = raw.source_id
    deleted = flow.endswith("D")
    doc_id = int(flow.removeprefix("ID01oafin").removesuffix("D"))
    docs: list[Bill] | list[Payment] = dataset.bills if raw.kind == "expense" else dataset.payments
    item = next(d for d in docs if d.doc_id == doc_id)
    if deleted and isinstance(item, Bill):
        return dataclasses.replace(item, doc_no=f"{item.doc_no}D", oa_no_text="")
    return item


def _error(status: int, message: str) -> dict:
    return {"errorCode": status, "errorMessage": message, "errorDetails": None, "code": None, "data": None}


HESINE = SystemUnderTest(
    name="hesine",
    twin=HESINE_TWIN,
    kinds=("expense", "payment"),
    open=_open,
    fetch_token=lambda client: str(client._fetch_token().value),  # type: ignore[attr-defined]
    read=_read,
    served=_served,
    page_size=6,
    token_call="auth/getAccessToken",
    list_call="docs/getApplyList",
    list_path="/docs/getApplyList",
    # a dead token: HTTP 403 naming accessToken (real-clients.md §2.5 envelope)
    expiry_envelopes=("403 accessToken",),
    use_expiry_envelope=lambda state, envelope: None,
    rate_limits=("http_429",),  # no documented rate-limit code (source-systems.md §6)
    error_shapes=(
        ErrorShape(
            "412 count past 100",
            "/docs/getApplyList",
            _error(412, "超过最大查询数量100！"),
            SourceError,
            "docs/getApplyList",
            "超过最大查询数量",
            status=412,
        ),
        ErrorShape(
            "400 business rule",
            "/docs/getApplyList",
            _error(400, "type 不能为空"),
            SourceError,
            "docs/getApplyList",
            "errorCode 400",
            status=400,
        ),
        ErrorShape(
            "403 credentials",
            "/auth/getAccessToken",
            _error(403, "appKey 或 appSecurity 错误"),
            AuthError,
            "auth/getAccessToken",
            "403",
            status=403,
        ),
        ErrorShape(
            "403 no permission",
            "/docs/getApplyList",
            _error(403, "没有权限"),
            AuthError,
            "docs/getApplyList",
            "没有权限",
            status=403,
        ),
        ErrorShape(
            "no items",
            "/docs/getApplyList",
            {"value": []},
            BadResponseError,
            "docs/getApplyList",
            "count and items",
        ),
        ErrorShape(
            "not JSON",
            "/docs/getApplyList",
            b'{"count": 10, "items": [',
            BadResponseError,
            "docs/getApplyList",
            "not JSON",
        ),
        ErrorShape(
            "HTTP 502",
            "/docs/getApplyList",
            b"bad gateway",
            TransientError,
            "docs/getApplyList",
            "502",
            status=502,
        ),
    ),
    month_item=_month_item,
    mapping_context={"company_code": "C01"},
    list_walks=2,  # live documents, then the deleted ones (source-systems.md §6.2 ``active``)
)
