"""wechatpy reads the WeCom twin, and agrees with oafin's connector (issue #12).

``wechatpy`` 1.8.18 (a test-only dev dependency; the WeCom SDK in use, real-clients.md §1.3) is
pointed at the twin as real-clients.md says: ``API_BASE_URL`` on a subclass, and
``fetch_access_token`` overridden because upstream hard-codes qyapi.weixin.qq.com
(sdk-snippets/wecom_wechatpy.py). Over real HTTP it must fetch a token, list every approval of a
small seed with its own ``get_approval_info`` (which sends ``filter``, string times and the
legacy int cursor) and with a plain ``post`` carrying ``new_cursor``, read each one's detail
through ``get_approval_detail``, field by field the same as oafin's connector reads them, and
understand the twin's expiry and rate-limit answers as it understands WeCom's.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from wechatpy.enterprise import WeChatClient
from wechatpy.exceptions import APILimitedException, WeChatClientException

from mappings.apply import map_records
from mappings.code_tables import load_code_tables
from mappings.loader import default_mapping_path, load_mapping
from oafin.connectors.limits import no_limit
from oafin.connectors.windows import split_window
from oafin.records import RawRecord
from oafin.sandbox import credentials
from oafin.sandbox.dataset import Dataset
from oafin.sandbox.generator import generate
from oafin.sandbox_server import SandboxHandle, running_sandbox
from oafin.systems.wecom import DEFAULT_TEMPLATE_ID
from oafin.systems.wecom.client import MAX_WINDOW, WeComClient, epoch_s
from oafin.systems.wecom.twin import TWIN, WeComState

SEED = 23
N_CLAIMS = 50  # the generator's smallest month that still holds every kind of finding
SDK_PAGE = 17  # a small page: the SDK pages several times per window
SHANGHAI = ZoneInfo("Asia/Shanghai")
FILTERS = [{"key": "template_id", "value": DEFAULT_TEMPLATE_ID}]


@pytest.fixture(scope="module")
def month() -> Dataset:
    return generate(seed=SEED, n_claims=N_CLAIMS)


@pytest.fixture(scope="module")
def wecom(month: Dataset) -> Iterator[SandboxHandle]:
    with running_sandbox(month, twins=[TWIN]) as handle:
        yield handle


@pytest.fixture
def fresh(wecom: SandboxHandle) -> Iterator[SandboxHandle]:
    wecom.reset()
    yield wecom
    wecom.reset()


def make_sdk(base: str, secret: str = credentials.WECOM_CORP_SECRET) -> WeChatClient:
    """wechatpy's enterprise client on the twin (real-clients.md §1.3; sdk-snippets/wecom_wechatpy.py)."""
    base = base.rstrip("/") + "/"

    class LocalWeCom(WeChatClient):
        API_BASE_URL = base  # read per request by wechatpy/client/base.py _request

        def fetch_access_token(
            self,
        ) -> Any:  # upstream hard-codes https://qyapi.weixin.qq.com/cgi-bin/gettoken
            return self._fetch_access_token(
                url=base + "gettoken", params={"corpid": self.corp_id, "corpsecret": self.secret}
            )

    return LocalWeCom(corp_id=credentials.WECOM_CORP_ID, secret=secret)


def connector(base: str) -> WeComClient:
    return WeComClient(base, credentials.WECOM_CORP_ID, credentials.WECOM_CORP_SECRET, limiter=no_limit)


def whole_month(month: Dataset) -> tuple[datetime, datetime]:
    """From the first claim's day to the day after the last: more than 31 days, so split."""
    first = min(c.created for c in month.claims).astimezone(SHANGHAI)
    last = max(c.created for c in month.claims).astimezone(SHANGHAI)
    start = datetime(first.year, first.month, first.day, tzinfo=SHANGHAI)
    return start, datetime(last.year, last.month, last.day, tzinfo=SHANGHAI) + timedelta(days=1)


def sdk_windows(start: datetime, end: datetime) -> list[tuple[int, int]]:
    """The windows a caller of the SDK sends: at most 31 days, whole seconds, ``endtime`` the last
    second inside (the twin counts it in)."""
    return [
        (math.ceil(epoch_s(lo)), math.ceil(epoch_s(hi)) - 1)
        for lo, hi in split_window(start, end, MAX_WINDOW)
    ]


def sdk_list_int_cursor(sdk: WeChatClient, start: datetime, end: datetime) -> list[str]:
    """``OA.get_approval_info``: ``filter``, string times, int cursor until ``next_cursor`` is absent."""
    out: list[str] = []
    for first, last in sdk_windows(start, end):
        cursor = 0
        while True:
            page = sdk.OA.get_approval_info(first, last, cursor, size=SDK_PAGE, filters=FILTERS)
            out += page["sp_no_list"]
            if "next_cursor" not in page:
                break
            cursor = page["next_cursor"]
    return out


def sdk_list_new_cursor(sdk: WeChatClient, start: datetime, end: datetime) -> list[str]:
    """A plain ``post`` with ``new_cursor`` (wechatpy does not wrap it) until ``new_next_cursor`` is ""."""
    out: list[str] = []
    for first, last in sdk_windows(start, end):
        cursor = ""
        while True:
            data = {"starttime": str(first), "endtime": str(last), "new_cursor": cursor, "size": SDK_PAGE}
            page = sdk.post("oa/getapprovalinfo", data={**data, "filters": FILTERS})
            out += page["sp_no_list"]
            cursor = page["new_next_cursor"]
            if not cursor:
                break
    return out


def test_the_sdk_fetches_a_token_from_the_twin(fresh: SandboxHandle) -> None:
    sdk = make_sdk(fresh.url("wecom"))
    sdk.fetch_access_token()
    assert sdk.access_token and sdk.expires_at
    with connector(fresh.url("wecom")) as wc:  # gettoken gives the same token while it is valid (§2.1)
        assert str(wc._fetch_token().value) == sdk.access_token
    with pytest.raises(WeChatClientException) as refused:
        make_sdk(fresh.url("wecom"), secret="not-the-secret").fetch_access_token()
    assert refused.value.errcode == 40001


def test_the_sdk_lists_the_same_approvals_as_the_connector_with_either_cursor(
    fresh: SandboxHandle, month: Dataset
) -> None:
    start, end = whole_month(month)
    assert len(split_window(start, end, MAX_WINDOW)) >= 2, "the seed's month should need two windows"
    sdk = make_sdk(fresh.url("wecom"))
    with connector(fresh.url("wecom")) as wc:
        ours = list(wc.iter_sp_nos(DEFAULT_TEMPLATE_ID, start, end))
    assert len(ours) == len(month.claims)
    assert sdk_list_int_cursor(sdk, start, end) == ours
    assert sdk_list_new_cursor(sdk, start, end) == ours
    # the twin honours wechatpy's "filter" key: another template's approvals are none of these
    first, last = sdk_windows(start, end)[-1]
    other = [{"key": "template_id", "value": "another-template"}]
    assert sdk.OA.get_approval_info(first, last, 0, size=SDK_PAGE, filters=other)["sp_no_list"] == []
    assert sdk.OA.get_approval_info(first, last, 0, size=SDK_PAGE, filters=FILTERS)["sp_no_list"]
    assert fresh.calls.count("/oa/getapprovalinfo") >= 3 * (len(ours) // SDK_PAGE)


def test_the_sdk_reads_every_approval_field_by_field_as_the_connector_does(
    fresh: SandboxHandle, month: Dataset
) -> None:
    start, end = whole_month(month)
    sdk = make_sdk(fresh.url("wecom"))
    with connector(fresh.url("wecom")) as wc:
        ours = list(wc.iter_approvals(DEFAULT_TEMPLATE_ID, start, end))
    theirs = []
    for record in ours:
        answer = sdk.OA.get_approval_detail(record.source_id)
        assert answer["errcode"] == 0
        info = answer["info"]
        assert sorted(info) == sorted(record.payload), record.source_id
        for key in info:
            assert info[key] == record.payload[key], (record.source_id, key)
        theirs.append(RawRecord("wecom", DEFAULT_TEMPLATE_ID, info["sp_no"], info))
    assert len(theirs) == len(month.claims)
    # and they mean the same: the default mapping gives the same standard records and invoices
    mapping, tables, context = (
        load_mapping(default_mapping_path("wecom")),
        load_code_tables(),
        {"company_code": "C01"},
    )
    for a, b in zip(
        map_records(mapping, ours, tables, context),
        map_records(mapping, theirs, tables, context),
        strict=True,
    ):
        assert (a.values, a.children, [i.message for i in a.issues]) == (
            b.values,
            b.children,
            [i.message for i in b.issues],
        )


@pytest.mark.parametrize("envelope", ["42001", "40014"])
def test_the_sdk_refreshes_its_token_on_the_twins_expiry_answer(
    fresh: SandboxHandle, month: Dataset, envelope: str
) -> None:
    state = fresh.state("wecom")
    assert isinstance(state, WeComState)
    state.expiry_envelope = envelope
    sdk = make_sdk(fresh.url("wecom"))
    sdk.fetch_access_token()
    old = sdk.access_token
    state.tokens.expire(old)
    try:
        info = sdk.OA.get_approval_detail(month.claims[0].claim_no)["info"]
    finally:
        state.expiry_envelope = "42001"
    assert info["sp_no"] == month.claims[0].claim_no
    assert sdk.access_token != old  # wechatpy fetched a new one on 40014/42001 and repeated the call
    assert fresh.calls.count("/gettoken") == 2


def test_the_sdk_sees_the_twins_45009_as_its_api_limit(fresh: SandboxHandle, month: Dataset) -> None:
    sdk = make_sdk(fresh.url("wecom"))
    fresh.faults.inject("wecom", "rate_limit_code", path_contains="/oa/getapprovaldetail")
    with pytest.raises(APILimitedException) as limited:
        sdk.OA.get_approval_detail(month.claims[0].claim_no)
    assert limited.value.errcode == 45009
    state = fresh.state("wecom")
    assert isinstance(state, WeComState)
    state.throttle.limit = 2  # WeCom's own per-minute throttle, made small
    start, end = whole_month(month)
    first, last = sdk_windows(start, end)[0]
    for _ in range(2):
        sdk.OA.get_approval_info(first, last, 0, size=SDK_PAGE, filters=FILTERS)
    with pytest.raises(APILimitedException):
        sdk.OA.get_approval_info(first, last, 0, size=SDK_PAGE, filters=FILTERS)


def test_the_correction_form_oafin_submits_is_the_one_the_sdk_submits(fresh: SandboxHandle) -> None:
    """issue #17: wechatpy's ``OA.get_template_detail`` and ``OA.apply_event`` (real-clients.md
    §1.3, §4.2) on the twin: the template oafin reads is the SDK's, the body oafin builds from it is,
    key by key, what ``apply_event`` sends for the same values, and oafin reads the SDK's form back."""
    from oafin.systems.base import ApprovalRequest, ApprovalRow
    from oafin.systems.wecom.approvals import WeComApprovals, apply_body
    from oafin.systems.wecom.twin_approvals import CORRECTIONS_TEMPLATE_ID

    base = fresh.url("wecom")
    sdk = make_sdk(base)
    people = sorted(fresh.dataset.people, key=lambda p: p.person_id)
    creator, approver = people[0].identities["wecom"], people[1].identities["wecom"]
    row = ApprovalRow(
        "[oafin:0123456789abcdef]",
        "finance_flag_recall",
        "BX1",
        "DUPLICATE_PAYMENT",
        12345,
        "kingdee",
        "t",
        "p",
    )
    request = ApprovalRequest(
        "b" * 32, CORRECTIONS_TEMPLATE_ID, creator, "t", (row,), "https://r/x.html", (approver,)
    )
    with connector(base) as wc:
        template = wc.get_template(CORRECTIONS_TEMPLATE_ID)
        assert (
            sdk.OA.get_template_detail(CORRECTIONS_TEMPLATE_ID)["template_content"]
            == template["template_content"]
        )
        ours = apply_body(request, template)
        answer = sdk.OA.apply_event(
            creator,
            CORRECTIONS_TEMPLATE_ID,
            0,
            ours["approver"],
            ours["apply_data"],
            ours["summary_list"],
            notify_type=ours["notify_type"],
        )
        desk = fresh.state("wecom").desk
        [sent] = [c["body"] for c in desk.calls if c["call"] == "oa/applyevent"]
        assert sent == ours
        sp_no = answer["sp_no"]
        desk.decide(sp_no, "reject")
        state = WeComApprovals().read(wc, sp_no)
    assert state.status == "rejected" and [(r.user_id, r.decision) for r in state.records] == [
        (approver, "refuse")
    ]
