"""The conformance suite's adapter for Yonyou YonBIP (issue #15): vouchers read with ``queryVouchers``.

One record kind (``vouchers``): the month's reimbursement bills and payments, each booked as a
voucher (``oafin/systems/yonyou/twin_render.py``), windowed on ``header.ts`` and served by
``maketime`` then id. The twin also serves a chain's vouchers booking an expense platform's
payments (kind ``platform_vouchers``, ``tests/test_systems_chain.py``); the ledger query (subject
2241) leaves them out.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from oafin.connectors import AuthError, BadResponseError, SourceError, TransientError
from oafin.connectors.http import SystemClient
from oafin.connectors.limits import no_limit
from oafin.records import RawRecord
from oafin.sandbox.dataset import Dataset
from oafin.sandbox.model import Bill, Payment
from oafin.sandbox.twin import TwinState
from oafin.systems.yonyou.client import YonyouClient
from oafin.systems.yonyou.twin import TWIN as YONYOU_TWIN
from oafin.systems.yonyou.twin import YonyouState
from oafin.systems.yonyou.twin_render import VOUCHER_ID_BASE, YONYOU_FORMAT, vouchers
from tests.conformance.systems import FAST, SHANGHAI, ErrorShape, Served, SystemUnderTest

KIND = "vouchers"
SUBJECTS = ["2241"]  # the ledger query's accsubjectCodeList (YonyouSettings.accsubject_codes)


def _open(base_url: str, *, page_size: int | None = None, bad_credentials: bool = False) -> SystemClient:
    c = YONYOU_TWIN.credentials
    secret = "not-the-secret" if bad_credentials else str(c["app_secret"])
    return YonyouClient(
        base_url,
        str(c["app_key"]),
        secret,
        accbook_code=str(c["accbook_code"]),
        page_size=page_size or 500,
        retry=FAST,
        limiter=no_limit,
    )


def _read(client: SystemClient, kind: str, start: datetime, end: datetime) -> Iterator[RawRecord]:
    assert isinstance(client, YonyouClient)
    return client.iter_vouchers(start, end, kind=kind, accsubject_codes=SUBJECTS)


def _served(dataset: Dataset, kind: str) -> Served:
    if kind != KIND:
        return []
    return [  # the twin serves by maketime, then id; ts = maketime for the month's vouchers
        (datetime.strptime(v["header"]["ts"], YONYOU_FORMAT).replace(tzinfo=SHANGHAI), str(v["header"]["id"]))
        for v in vouchers(dataset)
        if any(line["accsubject"]["code"] in SUBJECTS for line in v["body"])
    ]


def _doc_of(dataset: Dataset, raw: RawRecord) -> Bill | Payment:
    doc_id = int(raw.source_id) - VOUCHER_ID_BASE
    return next(d for d in [*dataset.bills, *dataset.payments] if d.doc_id == doc_id)


def _envelope(state: TwinState, envelope: str) -> None:
    assert isinstance(state, YonyouState)
    state.expiry_envelope = envelope


QUERY = "queryVouchers"
TOKEN = "getAccessToken"

YONYOU = SystemUnderTest(
    name="yonyou",
    twin=YONYOU_TWIN,
    kinds=(KIND,),
    open=_open,
    fetch_token=lambda client: str(client._fetch_token().value),  # type: ignore[attr-defined]
    read=_read,
    served=_served,
    page_size=9,
    token_call=TOKEN,
    list_call=QUERY,
    list_path=QUERY,
    # real-clients.md §2.6 [U]: code 401 (here with HTTP 401) and 10004 (with HTTP 200)
    expiry_envelopes=("401", "10004"),
    use_expiry_envelope=_envelope,
    rate_limits=("http_429",),  # YonBIP documents no rate-limit code (source-systems.md §0)
    error_shapes=(
        ErrorShape(
            "310037 not authorised",
            QUERY,
            {"code": "310037", "message": "该应用未被授权访问此API"},
            AuthError,
            QUERY,
            "310037",
        ),
        ErrorShape(
            "310036 token of another gateway",
            QUERY,
            {"code": "310036", "message": "token与网关域名不一致"},
            AuthError,
            QUERY,
            "310036",
        ),
        ErrorShape(
            "310005 app does not exist",
            "selfAppAuth",
            {"code": "310005", "message": "应用不存在"},
            AuthError,
            TOKEN,
            "310005",
        ),
        ErrorShape(
            "999 parameter type",
            QUERY,
            {"code": "999", "message": "fields 参数类型错误"},
            SourceError,
            QUERY,
            "999",
        ),
        ErrorShape(
            "no recordList",
            QUERY,
            {"code": "200", "message": "OK", "data": {"recordCount": 3}},
            BadResponseError,
            QUERY,
            "recordList",
        ),
        ErrorShape(
            "not JSON",
            QUERY,
            b'{"code": "200", "data": {"recordList": [',
            BadResponseError,
            QUERY,
            "not JSON",
        ),
        ErrorShape("HTTP 503", QUERY, b"service unavailable", TransientError, QUERY, "503", status=503),
    ),
    month_item=_doc_of,
    mapping_context={"company_code": "C01"},
)
