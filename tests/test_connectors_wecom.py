"""WeComClient against the sandbox's fake WeCom, over real HTTP on localhost.

The conformance suite (tests/conformance, adapter systems_wecom.py) holds the shared behaviour;
these are WeCom's own: 31-day windows, both cursors, the ``filter`` spelling, Unix seconds, the
value objects' empty lists, the per-minute throttle, and the window's end second.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from oafin.connectors import BadResponseError, RateLimitedError, RetryPolicy, SourceError
from oafin.connectors.limits import no_limit
from oafin.connectors.windows import split_window
from oafin.sandbox import credentials
from oafin.sandbox.dataset import Dataset
from oafin.sandbox_server import SandboxHandle, running_sandbox
from oafin.systems.wecom import DEFAULT_TEMPLATE_ID
from oafin.systems.wecom.client import WeComClient, epoch_s
from oafin.systems.wecom.twin import TWIN, WeComState
from oafin.systems.wecom.twin_render import seconds

SHANGHAI = ZoneInfo("Asia/Shanghai")
FAST = RetryPolicy(max_attempts=4, base_delay=0.0, max_delay=0.0)


@pytest.fixture(scope="module")
def wecom(sandbox_dataset: Dataset) -> Iterator[SandboxHandle]:
    with running_sandbox(sandbox_dataset, twins=[TWIN]) as handle:
        yield handle


@pytest.fixture
def fresh(wecom: SandboxHandle) -> Iterator[SandboxHandle]:
    wecom.reset()
    yield wecom
    wecom.reset()


def client(handle: SandboxHandle, **kwargs: object) -> WeComClient:
    options: dict = {"retry": FAST, "limiter": no_limit, "workers": 1, **kwargs}
    return WeComClient(
        handle.url("wecom"), credentials.WECOM_CORP_ID, credentials.WECOM_CORP_SECRET, **options
    )


def month(dataset: Dataset) -> tuple[datetime, datetime]:
    year, mon = map(int, dataset.period.split("-"))
    start = datetime(year, mon, 1, tzinfo=SHANGHAI)
    return start, datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=SHANGHAI)


def applied_in(dataset: Dataset, start: datetime, end: datetime) -> list[str]:
    lo, hi = int(epoch_s(start)), int(epoch_s(end))
    return [no for t, no in sorted((seconds(c.created), c.claim_no) for c in dataset.claims) if lo <= t < hi]


def test_split_window_covers_the_window_once_in_spans_of_at_most_the_maximum() -> None:
    start = datetime(2026, 8, 1, tzinfo=SHANGHAI)
    parts = split_window(start, start + timedelta(days=70), timedelta(days=31))
    assert [(b - a).days for a, b in parts] == [31, 31, 8]
    assert parts[0][0] == start and parts[-1][1] == start + timedelta(days=70)
    assert all(parts[i][1] == parts[i + 1][0] for i in range(len(parts) - 1))
    assert split_window(start, start, timedelta(days=31)) == []
    with pytest.raises(ValueError, match="aware"):
        split_window(datetime(2026, 8, 1), datetime(2026, 9, 1), timedelta(days=31))


def test_a_window_longer_than_31_days_is_split_and_reads_every_approval(
    fresh: SandboxHandle, sandbox_dataset: Dataset
) -> None:
    start, end = month(sandbox_dataset)
    start -= timedelta(days=62)  # 3 spans; the twin refuses any over 31 days with 301025
    with client(fresh) as wc:
        sp_nos = list(wc.iter_sp_nos(DEFAULT_TEMPLATE_ID, start, end))
    assert sp_nos == applied_in(sandbox_dataset, start, end)
    assert fresh.calls.count("/oa/getapprovalinfo") >= 3


def test_the_legacy_int_cursor_reads_the_same_and_its_end_is_an_absent_cursor(
    fresh: SandboxHandle, sandbox_dataset: Dataset
) -> None:
    start, end = month(sandbox_dataset)
    with client(fresh, page_size=7) as new, client(fresh, page_size=7, cursor_style="cursor") as old:
        assert list(old.iter_sp_nos(DEFAULT_TEMPLATE_ID, start, end)) == list(
            new.iter_sp_nos(DEFAULT_TEMPLATE_ID, start, end)
        )
        token = str(old._fetch_token().value)
    body = {"starttime": int(epoch_s(start)), "endtime": int(epoch_s(end)), "size": 100}
    url = fresh.url("wecom") + "/oa/getapprovalinfo"
    pages = []
    with httpx.Client() as http:
        cursor: int | None = 0
        while cursor is not None:
            page = http.post(url, params={"access_token": token}, json={**body, "cursor": cursor}).json()
            pages.append(page)
            cursor = page.get("next_cursor")
        last = http.post(url, params={"access_token": token}, json={**body, "new_cursor": ""}).json()
    assert len(pages) >= 2 and "next_cursor" not in pages[-1] and pages[-1]["sp_no_list"]
    assert "new_next_cursor" in last  # the new cursor always answers its own


def test_wechatpy_filter_spelling_and_string_seconds_are_accepted_ms_are_refused(
    fresh: SandboxHandle, sandbox_dataset: Dataset
) -> None:
    start, end = month(sandbox_dataset)
    with client(fresh) as wc:
        token = str(wc._fetch_token().value)
    url = fresh.url("wecom") + "/oa/getapprovalinfo"
    base = {"starttime": str(int(epoch_s(start))), "endtime": str(int(epoch_s(start)) + 86400 * 20)}
    with httpx.Client() as http:

        def post(**extra: object) -> dict:
            return http.post(url, params={"access_token": token}, json={**base, **extra}).json()

        mine = post(filter=[{"key": "template_id", "value": DEFAULT_TEMPLATE_ID}])
        other = post(filters=[{"key": "template_id", "value": "another-template"}])
        ms = post(starttime=int(epoch_s(start)) * 1000, endtime=int(epoch_s(end)) * 1000)
    assert mine["errcode"] == 0 and mine["sp_no_list"]
    assert other["errcode"] == 0 and other["sp_no_list"] == []
    assert ms["errcode"] == 301025 and ms["sp_no_list"] == []  # source-systems.md §2.2 gotcha
    with client(fresh) as wc, pytest.raises(SourceError, match=r"^wecom oa/getapprovalinfo.*301025"):
        list(wc._list(DEFAULT_TEMPLATE_ID, int(epoch_s(start)), int(epoch_s(end)) + 86400 * 40))


def test_details_carry_every_list_key_money_as_text_and_dates_as_string_seconds(
    fresh: SandboxHandle, sandbox_dataset: Dataset
) -> None:
    claim = next(c for c in sandbox_dataset.claims if c.invoices and c.amount_text and c.kind == "clean")
    with client(fresh) as wc:
        info = wc.get_detail(claim.claim_no)
    assert isinstance(info["apply_time"], int) and info["sp_status"] in (1, 2, 3, 4)
    controls = info["apply_data"]["contents"]
    for control in controls:
        for key in ("tips", "members", "departments", "files", "children", "stat_field"):
            assert isinstance(control["value"][key], list), (control["title"], key)
    by_title = {c["title"][0]["text"]: c for c in controls}
    assert by_title["报销金额"]["value"]["new_money"] == claim.amount_text
    rows = by_title["发票明细"]["value"]["children"]
    assert len(rows) == len(claim.invoices)
    date = next(c for c in rows[0]["list"] if c["control"] == "Date")["value"]["date"]
    assert isinstance(date["s_timestamp"], str) and date["s_timestamp"].isdigit()


def test_an_approval_applied_at_the_windows_end_second_belongs_to_the_next_window(
    fresh: SandboxHandle, sandbox_dataset: Dataset
) -> None:
    claim = sandbox_dataset.claims[len(sandbox_dataset.claims) // 2]
    at = datetime.fromtimestamp(seconds(claim.created), tz=SHANGHAI)
    with client(fresh) as wc:
        before = [r.source_id for r in wc.iter_approvals(DEFAULT_TEMPLATE_ID, at - timedelta(hours=1), at)]
        after = [r.source_id for r in wc.iter_approvals(DEFAULT_TEMPLATE_ID, at, at + timedelta(seconds=1))]
    assert claim.claim_no not in before
    assert claim.claim_no in after


def test_45009_is_waited_out_and_a_persistent_one_names_the_call(
    fresh: SandboxHandle, sandbox_dataset: Dataset
) -> None:
    claim = sandbox_dataset.claims[0]
    fresh.faults.inject("wecom", "rate_limit_code", path_contains="/oa/getapprovaldetail", times=2)
    with client(fresh) as wc:
        assert wc.get_detail(claim.claim_no)["sp_no"] == claim.claim_no
        assert wc.stats.retries["oa/getapprovaldetail"] == 2
        fresh.faults.inject("wecom", "rate_limit_code", path_contains="/oa/getapprovaldetail", times=9)
        with pytest.raises(RateLimitedError, match=r"^wecom oa/getapprovaldetail\(sp_no=.*45009"):
            wc.get_detail(claim.claim_no)


def test_the_twins_minute_throttle_answers_45009_and_a_reset_turns_it_off(
    fresh: SandboxHandle, sandbox_dataset: Dataset
) -> None:
    state = fresh.state("wecom")
    assert isinstance(state, WeComState)
    state.throttle.limit = 3
    no = sandbox_dataset.claims[0].claim_no
    with client(fresh, retry=RetryPolicy(max_attempts=1)) as wc:
        for _ in range(3):
            wc.get_detail(no)
        with pytest.raises(RateLimitedError, match="45009"):
            wc.get_detail(no)
        start, _ = month(sandbox_dataset)
        day = list(wc.iter_sp_nos(DEFAULT_TEMPLATE_ID, start, start + timedelta(days=3)))
        assert day  # one getapprovalinfo call: the other endpoint has its own count
    fresh.reset()
    with client(fresh) as wc:
        for _ in range(5):
            wc.get_detail(no)


@pytest.mark.parametrize("style", ["new_cursor", "cursor"])
def test_a_page_starting_one_record_early_repeats_no_approval(
    fresh: SandboxHandle, sandbox_dataset: Dataset, style: str
) -> None:
    start, end = month(sandbox_dataset)
    fresh.faults.inject("wecom", "duplicate_record", path_contains="/oa/getapprovalinfo", times=3)
    with client(fresh, page_size=10, cursor_style=style) as wc:
        sp_nos = list(wc.iter_sp_nos(DEFAULT_TEMPLATE_ID, start, end))
    assert sum(c.fault == "duplicate_record" for c in fresh.calls) >= 2  # the first page cannot shift
    assert sp_nos == applied_in(sandbox_dataset, start, end)


@pytest.mark.parametrize("style", ["new_cursor", "cursor"])
def test_a_cursor_advancing_over_empty_pages_for_ever_is_an_error_naming_the_call(
    fresh: SandboxHandle, sandbox_dataset: Dataset, style: str
) -> None:
    start, end = month(sandbox_dataset)
    fresh.faults.inject("wecom", "empty_pages", path_contains="/oa/getapprovalinfo", times=1000)
    with (
        client(fresh, page_size=10, cursor_style=style) as wc,
        pytest.raises(BadResponseError, match=r"^wecom oa/getapprovalinfo.*empty pages"),
    ):
        list(wc.iter_sp_nos(DEFAULT_TEMPLATE_ID, start, end))
