"""The conformance suite's adapter for Seeyon A8/V5 (CAP4 export + flow state)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from mappings.loader import default_mapping_path, load_mapping
from oafin.connectors import AuthError, BadResponseError, SourceError, TransientError
from oafin.connectors.http import SystemClient
from oafin.connectors.limits import no_limit
from oafin.records import RawRecord
from oafin.sandbox.dataset import Dataset
from oafin.sandbox.model import Claim
from oafin.sandbox.twin import TwinState
from oafin.systems.seeyon import wanted_fields
from oafin.systems.seeyon.client import SeeyonClient, WhitelistClosedError
from oafin.systems.seeyon.twin import TOKEN_DEAD, WHITELIST_PAGE
from oafin.systems.seeyon.twin import TWIN as SEEYON_TWIN
from oafin.systems.seeyon.twin_render import TEMPLATE_CODE, records
from tests.conformance.systems import FAST, ErrorShape, Served, SystemUnderTest


def _open(base_url: str, *, page_size: int | None = None, bad_credentials: bool = False) -> SystemClient:
    creds = SEEYON_TWIN.credentials
    password = "not-the-password" if bad_credentials else str(creds["password"])
    return SeeyonClient(
        base_url,
        str(creds["user_name"]),
        password,
        page_size=page_size or 100,
        retry=FAST,
        limiter=no_limit,
        workers=1,  # as DingTalk's adapter: tokens that die every 3 calls and 4 racing threads
    )


def _read(client: SystemClient, kind: str, start: datetime, end: datetime) -> Iterator[RawRecord]:
    assert isinstance(client, SeeyonClient)
    mapping = load_mapping(default_mapping_path("seeyon"))
    return client.iter_form_records(kind, start, end, wanted=wanted_fields(mapping, kind))


def _served(dataset: Dataset, kind: str) -> Served:
    if kind != TEMPLATE_CODE:
        return []
    # the twin exports by start-time text, then record id (SeeyonState.rows); the record id is
    # the source id the client lands
    rows = sorted(
        (r["masterData"]["start_date"]["value"], r["masterData"]["id"]["value"], c.created)
        for c, r, _ in records(dataset)
    )
    return [(created, record_id) for _, record_id, created in rows]


def _claim(dataset: Dataset, raw: RawRecord) -> Claim:
    return next(c for c, r, _ in records(dataset) if r["masterData"]["id"]["value"] == raw.source_id)


def _envelope(state: TwinState, envelope: str) -> None:
    """One documented expiry answer (401 {"code":"1010","message":"被迫下线"}, source-systems.md §5)."""


EXPORT = "/cap4/form/soap/export"

SEEYON = SystemUnderTest(
    name="seeyon",
    twin=SEEYON_TWIN,
    kinds=(TEMPLATE_CODE,),
    open=_open,
    fetch_token=lambda client: str(client._fetch_token().value),  # type: ignore[attr-defined]
    read=_read,
    served=_served,
    # Dates are whole days (real-clients.md §2.4): the server answers the rest of the window's last
    # day too, so a page must be larger than a day of the sandbox month for the page-count check.
    page_size=50,
    token_call="token",
    list_call="cap4/form/soap/export",
    list_path=EXPORT,
    expiry_envelopes=("401/1010",),
    use_expiry_envelope=_envelope,
    rate_limits=("http_429",),  # Seeyon documents no rate-limit code (§5)
    error_shapes=(
        ErrorShape(
            "REST whitelist closed on the token call",
            "/seeyon/rest/token",
            WHITELIST_PAGE.encode(),
            WhitelistClosedError,
            "token",
            "REST whitelist",
            status=401,
        ),
        ErrorShape(
            "REST whitelist closed on the export",
            EXPORT,
            WHITELIST_PAGE.encode(),
            WhitelistClosedError,
            "cap4/form/soap/export",
            "REST whitelist",
            status=401,
        ),
        ErrorShape(
            "token refused twice",
            EXPORT,
            TOKEN_DEAD,
            AuthError,
            "cap4/form/soap/export",
            "1010",
            status=401,
        ),
        ErrorShape(
            "unknown template code",
            EXPORT,
            {"code": 1, "message": "模板编号[BX001]不存在", "data": None},
            SourceError,
            "cap4/form/soap/export",
            "模板编号",
        ),
        ErrorShape(
            "the CAP4 service refuses inside a success envelope",
            EXPORT,
            {
                "code": 0,
                "message": "",
                "data": {"code": 500, "message": "rightId[-1.-2]无权限", "data": None},
            },
            SourceError,
            "cap4/form/soap/export",
            "rightId",
        ),
        ErrorShape(
            "no data.data.data",
            EXPORT,
            {"code": 0, "message": "", "data": {"code": 0}},
            BadResponseError,
            "cap4/form/soap/export",
            "data.data.data",
        ),
        ErrorShape(
            "flow does not exist",
            "/flow/state/",
            {"code": 1, "message": "流程不存在", "data": None},
            SourceError,
            "flow/state",
            "流程不存在",
        ),
        ErrorShape(
            "not JSON",
            EXPORT,
            b'{"code": 0, "data": {"data": {"data": [',
            BadResponseError,
            "cap4/form/soap/export",
            "not JSON",
        ),
        ErrorShape(
            "HTTP 502",
            EXPORT,
            b"bad gateway",
            TransientError,
            "cap4/form/soap/export",
            "502",
            status=502,
        ),
    ),
    month_item=_claim,
    mapping_context={"company_code": "C01"},
    # the CAP4 export reports no count: a short or empty page is the last (source-systems.md §5),
    # so endless empty pages cannot exist (a page that does not advance is caught as repeated)
    hostile=("invalid_utf8", "deep_json"),
)
