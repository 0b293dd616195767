"""Paging that does not advance fails the form, naming system and call, instead of looping (issue #10 item 11).

Against the real sandbox twins with a fault that makes them misbehave: a Kingdee that ignores
``StartRow`` (every page is the first) and a DingTalk cursor that advances over empty pages. Each
fault is armed for a bounded number of calls, so a pager without the check ends, wrongly, instead
of hanging the test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from oafin.connectors import BadResponseError, RetryPolicy
from oafin.connectors.limits import no_limit
from oafin.connectors.paging import OffsetLimitPager, PageIndexPager, PageTokenPager, PagingError
from oafin.sandbox import credentials
from oafin.systems.dingtalk.client import DingTalkClient
from oafin.systems.kingdee.client import KingdeeClient
from oafin.systems.kingdee.twin_render import form_rows as kingdee_rows

SHANGHAI = ZoneInfo("Asia/Shanghai")
FAST = RetryPolicy(max_attempts=2, base_delay=0.0, max_delay=0.0)
EVERYTHING = (datetime(2000, 1, 1, tzinfo=SHANGHAI), datetime(2100, 1, 1, tzinfo=SHANGHAI))
ARMED = 60  # calls the fault lasts: far more than a pager that notices needs


def _settled(calls) -> None:
    seen, deadline = -1, time.monotonic() + 2.0
    while len(calls) != seen and time.monotonic() < deadline:
        seen = len(calls)
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def clean_sandbox(sandbox) -> Iterator[None]:
    _settled(sandbox.calls)
    sandbox.reset()
    yield
    _settled(sandbox.calls)
    sandbox.reset()


def test_a_kingdee_that_ignores_start_row_fails_the_form_naming_it(sandbox, sandbox_dataset) -> None:
    assert len(kingdee_rows(sandbox_dataset)["AP_PAYBILL"]) > 14, "needs more than two pages of 7"
    sandbox.faults.inject("kingdee", "ignored_start_row", times=ARMED)
    with (
        KingdeeClient(
            sandbox.kingdee_url,
            credentials.KINGDEE_ACCT_ID,
            credentials.KINGDEE_USERNAME,
            credentials.KINGDEE_APP_ID,
            credentials.KINGDEE_APP_SECRET,
            retry=FAST,
            limiter=no_limit,
            page_size=7,
        ) as kd,
        pytest.raises(BadResponseError) as caught,
    ):
        list(kd.iter_bills("AP_PAYBILL", ["FID", "FBillNo", "FDATE"], "FDATE", *EVERYTHING))
    message = str(caught.value)
    assert message.startswith("kingdee ExecuteBillQuery(FormId=AP_PAYBILL): ")
    assert "StartRow=7" in message and "same 7 rows" in message
    assert not caught.value.retryable
    assert kd.stats.requests["ExecuteBillQuery"] == 2  # noticed on the second page, not the 2,706th


def test_a_dingtalk_cursor_over_endless_empty_pages_fails_naming_the_call(sandbox, sandbox_dataset) -> None:
    sandbox.faults.inject("dingtalk", "empty_pages", times=ARMED)
    with (
        DingTalkClient(
            sandbox.dingtalk_url,
            credentials.DINGTALK_APP_KEY,
            credentials.DINGTALK_APP_SECRET,
            retry=FAST,
            limiter=no_limit,
        ) as dt,
        pytest.raises(BadResponseError) as caught,
    ):
        list(dt.iter_instance_ids(sandbox_dataset.process_code, *EVERYTHING))
    message = str(caught.value)
    assert message.startswith(
        f"dingtalk processinstance/listids(process_code={sandbox_dataset.process_code}): "
    )
    assert "empty pages in a row" in message
    assert dt.stats.requests["processinstance/listids"] < ARMED


def _rows(n: int) -> list[dict[str, int]]:
    return [{"id": i} for i in range(n)]


def test_more_rows_than_the_reported_total_is_an_error() -> None:
    data = _rows(25)

    def fetch(params: dict) -> dict:  # a server whose total undercounts what it serves
        start = params["start"]
        return {"items": data[start : start + params["count"]], "total": 12}

    pager = OffsetLimitPager(
        items=lambda p: p["items"],
        total=lambda p: p["total"],
        start_param="start",
        limit_param="count",
        limit=10,
    )
    with pytest.raises(PagingError, match="more than the reported total of 12"):
        list(pager.pages(fetch))

    def by_index(params: dict) -> dict:
        i = params["pageIndex"] - 1
        return {"data": data[i * 10 : (i + 1) * 10], "recordCount": 12}

    index_pager = PageIndexPager(items=lambda p: p["data"], total=lambda p: p["recordCount"], size=10)
    with pytest.raises(PagingError, match="more than the reported total of 12"):
        list(index_pager.pages(by_index))


def test_a_page_token_that_changes_while_the_page_does_not_is_an_error() -> None:
    counter = iter(range(1_000))

    def fetch(params: dict) -> dict:  # a new token every time, the same first page every time
        return {"items": _rows(3), "page_token": f"t{next(counter)}", "has_more": True}

    pager = PageTokenPager(
        items=lambda p: p["items"], next_token=lambda p: p["page_token"], has_more=lambda p: p["has_more"]
    )
    with pytest.raises(PagingError, match="same 3 rows"):
        list(pager.pages(fetch))
    assert next(counter) == 2


def test_honest_paging_is_not_mistaken_for_a_loop() -> None:
    data = _rows(25) + [{"id": 99}] * 3  # three identical single rows at the end: repeated 1-row pages

    def fetch(params: dict) -> dict:
        start = params["start"]
        return {"items": data[start : start + params["count"]], "total": len(data)}

    for limit in (1, 7, 100):
        pager = OffsetLimitPager(
            items=lambda p: p["items"],
            total=lambda p: p["total"],
            start_param="start",
            limit_param="count",
            limit=limit,
        )
        assert [r for page in pager.pages(fetch) for r in page] == data


def test_a_page_index_without_a_count_stops_at_a_short_page_and_catches_an_ignored_page() -> None:
    """Seeyon's CAP4 export pages by ``page``/``pageSize`` and reports no count (source-systems.md §5)."""
    for n in (0, 9, 10, 25, 30):
        data = _rows(n)
        asked: list[int] = []

        def fetch(params: dict, data: list = data, asked: list = asked) -> dict:
            asked.append(params["page"])
            i = params["page"] - 1
            return {"rows": data[i * params["pageSize"] : (i + 1) * params["pageSize"]]}

        pager = PageIndexPager(items=lambda p: p["rows"], index_param="page", size_param="pageSize", size=10)
        assert [r for page in pager.pages(fetch) for r in page] == data
        assert asked == list(range(1, n // 10 + 2)), (n, asked)  # an exactly full last page: one more

    def ignores_page(params: dict) -> dict:
        return {"rows": _rows(10)}

    pager = PageIndexPager(items=lambda p: p["rows"], index_param="page", size_param="pageSize", size=10)
    with pytest.raises(PagingError, match="same 10 rows"):
        list(pager.pages(ignores_page))


# -- a "more" flag with no way to continue, a cursor that comes back, a count left unread -----


def test_has_more_without_a_page_token_is_an_error_naming_the_page() -> None:
    """Feishu says ``has_more`` and its ``page_token`` together (source-systems.md §3.2); the
    last page is ``has_more:false, page_token:""`` (real-clients.md §2.2). ``has_more:true`` with
    no token cannot be walked on, and ending there would drop the rest without a word."""
    answers = [
        {"items": _rows(3), "page_token": "t1", "has_more": True},
        {"items": _rows(3), "page_token": "", "has_more": True},
    ]

    def fetch(params: dict) -> dict:
        return answers[0] if "page_token" not in params else answers[1]

    for missing in ("", None):
        answers[1]["page_token"] = missing
        pager = PageTokenPager(
            items=lambda p: p["items"],
            next_token=lambda p: p.get("page_token"),
            has_more=lambda p: p["has_more"],
        )
        with pytest.raises(PagingError, match=r"page 2 .*has_more.*no page token"):
            list(pager.pages(fetch))


def test_a_page_token_that_comes_back_after_others_is_an_error() -> None:
    following = {None: "a", "a": "b", "b": "a"}  # a -> b -> a -> b ... for ever

    def fetch(params: dict) -> dict:
        token = params.get("page_token")
        return {"items": [{"token": token}], "page_token": following[token], "has_more": True}

    pager = PageTokenPager(
        items=lambda p: p["items"], next_token=lambda p: p["page_token"], has_more=lambda p: p["has_more"]
    )
    with pytest.raises(PagingError, match=r"page 3 .*'a', which came back"):
        list(pager.pages(fetch))


def test_an_empty_page_before_the_reported_total_is_an_error_not_the_end() -> None:
    data = _rows(25)

    def fetch(params: dict) -> dict:  # a server that stops serving at 10 rows but counts 25
        start = params["start"]
        return {"items": data[start : min(start + params["count"], 10)], "total": 25}

    pager = OffsetLimitPager(
        items=lambda p: p["items"],
        total=lambda p: p["total"],
        start_param="start",
        limit_param="count",
        limit=10,
    )
    with pytest.raises(PagingError, match=r"page 2 .*empty.*10 of the reported total of 25"):
        list(pager.pages(fetch))

    def by_index(params: dict) -> dict:
        i = params["pageIndex"] - 1
        return {"data": data[i * 10 : min((i + 1) * 10, 10)], "recordCount": 25}

    index_pager = PageIndexPager(items=lambda p: p["data"], total=lambda p: p["recordCount"], size=10)
    with pytest.raises(PagingError, match=r"page 2 .*empty.*10 of the reported total of 25"):
        list(index_pager.pages(by_index))


def test_feishu_has_more_without_a_page_token_fails_the_list_naming_system_call_and_page(
    sandbox, sandbox_dataset
) -> None:
    from oafin.systems.feishu.client import FeishuClient
    from oafin.systems.feishu.twin_render import APPROVAL_CODE

    sandbox.faults.inject("feishu", "more_without_token", path_contains="/approval/v4/instances", times=1)
    with (
        FeishuClient(
            sandbox.url("feishu"),
            credentials.FEISHU_APP_ID,
            credentials.FEISHU_APP_SECRET,
            retry=FAST,
            limiter=no_limit,
            page_size=5,
        ) as fs,
        pytest.raises(BadResponseError) as caught,
    ):
        list(fs.iter_instance_codes(APPROVAL_CODE, *EVERYTHING))
    message = str(caught.value)
    assert message.startswith(f"feishu instances/list(approval_code={APPROVAL_CODE}): "), message
    assert "page 1 " in message and "has_more" in message, message
    assert not caught.value.retryable
    assert fs.stats.requests["instances/list"] == 1


def test_a_reported_total_that_falls_during_the_walk_is_an_error_not_a_skipped_row() -> None:
    """A row removed from a page already read shifts every later row one place back: the first
    row of the next page is then never served. The total falling is the only sign of it."""
    data = _rows(25)

    def fetch(params: dict) -> dict:
        start = params["start"]
        rows = data if start == 0 else data[1:]  # row 0 deleted once page 1 was served
        return {"items": rows[start : start + params["count"]], "total": len(rows)}

    pager = OffsetLimitPager(
        items=lambda p: p["items"],
        total=lambda p: p["total"],
        start_param="start",
        limit_param="count",
        limit=10,
    )
    with pytest.raises(PagingError, match=r"page 2 .*total fell from 25 to 24"):
        list(pager.pages(fetch))

    def by_index(params: dict) -> dict:
        i = params["pageIndex"] - 1
        rows = data if i == 0 else data[1:]
        return {"data": rows[i * 10 : (i + 1) * 10], "recordCount": len(rows)}

    index_pager = PageIndexPager(items=lambda p: p["data"], total=lambda p: p["recordCount"], size=10)
    with pytest.raises(PagingError, match=r"page 2 .*total fell from 25 to 24"):
        list(index_pager.pages(by_index))
