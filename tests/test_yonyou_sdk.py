"""Yonyou's own SDK reads the Yonyou twin, and agrees with oafin's connector (issue #15).

``yonyouopenapisdk1`` 0.0.2 (import ``yonbip_open_api_sdk``; author e-mail @yonyou.com, a test-only
dev dependency whose broken metadata pyproject.toml replaces, real-clients.md §1.9) mints a
self-built-app token with its own HMAC signature and sends business calls with the token in an
``access_token`` header. Pointed at the twin over real HTTP it must get a token, page through
``queryVouchers`` and read every voucher of a small seed field by field as oafin's connector
(token in the query, ``pageIndex`` paging on ``tsStart``/``tsEnd``) reads it. A twin the SDK
cannot read is not the real shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from yonbip_open_api_sdk import request_opt, sign_opt, token_opt

from oafin.connectors import AuthError
from oafin.connectors.limits import no_limit
from oafin.sandbox import credentials
from oafin.sandbox.generator import generate
from oafin.sandbox_server import SandboxHandle, running_sandbox
from oafin.systems.yonyou.client import QUERY_VOUCHERS, YonyouClient, signature
from oafin.systems.yonyou.twin import GATEWAY
from oafin.systems.yonyou.twin import TWIN as YONYOU_TWIN
from oafin.systems.yonyou.twin_render import vouchers

SEED = 23
N_CLAIMS = 50
SDK_PAGE = 13  # a small page: the SDK pages several times
SHANGHAI = ZoneInfo("Asia/Shanghai")
# A window wider than the month: every voucher of the seed
START, END = datetime(2026, 1, 1, tzinfo=SHANGHAI), datetime(2027, 1, 1, tzinfo=SHANGHAI)


@pytest.fixture(scope="module")
def yonyou() -> Iterator[SandboxHandle]:
    with running_sandbox(generate(seed=SEED, n_claims=N_CLAIMS), twins=[YONYOU_TWIN]) as handle:
        yield handle


def gateway(handle: SandboxHandle) -> str:
    return handle.url("yonyou")  # http://127.0.0.1:<port>/iuap-api-gateway


def root(handle: SandboxHandle) -> str:
    """What the SDK is given: it appends /iuap-api-auth/open-auth/selfAppAuth/getAccessToken."""
    url = gateway(handle)
    assert url.endswith(GATEWAY)
    return url[: -len(GATEWAY)]


def connector(handle: SandboxHandle, **kwargs: Any) -> YonyouClient:
    return YonyouClient(
        gateway(handle),
        credentials.YONYOU_APP_KEY,
        kwargs.pop("app_secret", credentials.YONYOU_APP_SECRET),
        accbook_code=credentials.YONYOU_ACCBOOK_CODE,
        limiter=no_limit,
        **kwargs,
    )


def sdk_vouchers(handle: SandboxHandle, query: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """Every voucher the query matches, paged by the SDK as its snippet does (sdk-snippets/yonyou.py)."""
    token = token_opt.opt_self_token(credentials.YONYOU_APP_KEY, credentials.YONYOU_APP_SECRET, root(handle))
    records: list[dict[str, Any]] = []
    index, pages = 1, 0
    while True:
        body = {**query, "pager": {"pageIndex": index, "pageSize": SDK_PAGE}}
        response = request_opt.opt_self_app_request_with_access_token(
            "post",
            gateway(handle) + QUERY_VOUCHERS,
            {},
            json.dumps(body, ensure_ascii=False).encode(),
            None,  # the token only in the SDK's access_token header
            token["access_token"],
        )
        reply = response.json()
        assert reply["code"] == "200", reply
        pages += 1
        page = reply["data"]["recordList"]
        records += page
        if not page or len(records) >= reply["data"]["recordCount"]:
            return records, pages
        index += 1


def comparable(value: Any) -> Any:
    """A JSON value as text-keyed facts: numbers as Decimal (the SDK reads floats, oafin Decimals)."""
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def test_the_sdk_mints_a_token_with_its_own_signature(yonyou: SandboxHandle) -> None:
    data = token_opt.opt_self_token(credentials.YONYOU_APP_KEY, credentials.YONYOU_APP_SECRET, root(yonyou))
    assert data["access_token"] and data["expire"] == 7200
    calls = [c for c in yonyou.calls if "selfAppAuth/getAccessToken" in c.path]
    assert calls and calls[-1].status == 200


def test_the_connector_signs_exactly_as_the_sdk_does() -> None:
    params = {"appKey": "k+/=1", "timestamp": "1767225600000"}
    expected = sign_opt.opt_sha256("s3cret/+=", sign_opt.opt_sort_data(params))  # bytes, sent as they are
    assert signature("s3cret/+=", params) == expected.decode()


def test_a_wrong_secret_is_refused_to_the_sdk_and_to_the_connector(yonyou: SandboxHandle) -> None:
    with pytest.raises(Exception, match="签名不正确"):
        token_opt.opt_self_token(credentials.YONYOU_APP_KEY, "not-the-secret", root(yonyou))
    with connector(yonyou, app_secret="not-the-secret") as client, pytest.raises(AuthError) as caught:
        list(client.iter_vouchers(START, END))
    assert str(caught.value).startswith("yonyou getAccessToken"), str(caught.value)
    assert "not-the-secret" not in str(caught.value)


@pytest.mark.parametrize("token_path", ["selfAppAuth", "base/v1"])
def test_the_sdk_reads_every_voucher_as_the_connector_does(yonyou: SandboxHandle, token_path: str) -> None:
    with connector(yonyou, page_size=SDK_PAGE + 4, token_path=token_path) as client:  # type: ignore[arg-type]
        raws = list(client.iter_vouchers(START, END, accsubject_codes=["2241"]))
        query = client.window_query(START, END, ["2241"])
    month = yonyou.dataset
    assert len(raws) == len(month.bills) + len(month.payments)
    by_sdk, pages = sdk_vouchers(yonyou, query)
    assert pages > 2, "the SDK did not page"
    assert len(by_sdk) == len(raws)
    for raw, theirs in zip(raws, by_sdk, strict=True):
        # 19-digit ids: the SDK sees a JSON number, oafin keeps it as text, digit for digit
        assert raw.source_id == str(theirs["header"]["id"]) and len(raw.source_id) == 19
        ours = raw.payload
        assert set(ours) == set(theirs) == {"header", "body"}
        for key in sorted(set(ours["header"]) | set(theirs["header"])):
            mine, sdk = ours["header"].get(key), theirs["header"].get(key)
            if key == "id":
                sdk = str(sdk)
            assert comparable(mine) == comparable(sdk), (raw.source_id, "header", key, mine, sdk)
        assert len(ours["body"]) == len(theirs["body"])
        for line, sdk_line in zip(ours["body"], theirs["body"], strict=True):
            for key in sorted(set(line) | set(sdk_line)):
                assert comparable(line.get(key)) == comparable(sdk_line.get(key)), (raw.source_id, key)


def test_without_periods_a_query_reads_nothing_through_the_sdk(yonyou: SandboxHandle) -> None:
    """real-clients.md §2.6 [U]: a real system returns no rows unless periodStart/periodEnd are given."""
    records, _ = sdk_vouchers(yonyou, {"accbookCode": credentials.YONYOU_ACCBOOK_CODE})
    assert records == []
    with connector(yonyou) as client:
        query = client.window_query(START, END)
    assert query["periodStart"] <= "2026-01" and query["periodEnd"] == "2026-12"
    records, _ = sdk_vouchers(yonyou, query)
    # every voucher served: the month's bills and payments, and a chain's vouchers booking payments
    assert (
        len(records)
        == len(vouchers(yonyou.dataset))
        > len(yonyou.dataset.bills) + len(yonyou.dataset.payments)
    )
