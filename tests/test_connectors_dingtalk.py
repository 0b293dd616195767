"""DingTalkClient against the sandbox's fake DingTalk, over real HTTP on localhost."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

import httpx
import pytest

from oafin.connectors import (
    AuthError,
    BadResponseError,
    ConnectorError,
    RateLimitedError,
    RetryPolicy,
    TransientError,
)
from oafin.connectors.limits import RateLimiter, no_limit
from oafin.sandbox import credentials
from oafin.systems.dingtalk.client import DingTalkClient
from oafin.systems.dingtalk.twin_render import instances as dingtalk_instances

SHANGHAI = ZoneInfo("Asia/Shanghai")
FAST = RetryPolicy(max_attempts=4, base_delay=0.0, max_delay=0.0)


def settled(calls):
    """The sandbox's call log, once the server has logged the last answer.

    The sandbox records a call after sending its response, so a client can see the answer a
    moment before the log does; wait until the log stops growing.
    """
    seen = -1
    deadline = time.monotonic() + 2.0
    while len(calls) != seen and time.monotonic() < deadline:
        seen = len(calls)
        time.sleep(0.02)
    return calls


@pytest.fixture(autouse=True)
def clean_sandbox(sandbox) -> Iterator[None]:
    """The session's sandbox, with no calls logged and no faults armed, before and after."""
    settled(sandbox.calls)
    sandbox.reset()
    yield
    settled(sandbox.calls)
    sandbox.reset()


def client(sandbox, **kwargs) -> DingTalkClient:
    options = {"retry": FAST, "limiter": no_limit, **kwargs}
    return DingTalkClient(
        sandbox.dingtalk_url, credentials.DINGTALK_APP_KEY, credentials.DINGTALK_APP_SECRET, **options
    )


def created_at(instance: dict) -> datetime:
    # default-forms.md: DingTalk times are Beijing-time strings yyyy-MM-dd HH:mm:ss
    return datetime.strptime(instance["create_time"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)


def period_window(period: str) -> tuple[datetime, datetime]:
    year, month = map(int, period.split("-"))
    return datetime(year, month, 1, tzinfo=SHANGHAI), datetime(
        year + month // 12, month % 12 + 1, 1, tzinfo=SHANGHAI
    )


def ids_created_in(dataset, start: datetime, end: datetime) -> set[str]:
    return {i["process_instance_id"] for i in dingtalk_instances(dataset) if start <= created_at(i) < end}


@pytest.fixture(scope="module")
def busy_day(sandbox_dataset) -> tuple[datetime, datetime]:
    """The busiest day: more instances than the detail window holds in flight, quick to fetch."""
    per_day = Counter(created_at(i).date() for i in dingtalk_instances(sandbox_dataset))
    day, count = max(sorted(per_day.items()), key=lambda item: item[1])
    assert count > 10, "the tests below need a day with more instances than 2 pages of 5 / 8 in flight"
    return day_window(day)


def day_window(day) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)
    return start, start + timedelta(days=1)


def test_extracts_every_instance_of_the_period_once(sandbox, sandbox_dataset) -> None:
    start, end = period_window(sandbox_dataset.period)
    expected = ids_created_in(sandbox_dataset, start, end)
    by_id = {i["process_instance_id"]: i for i in dingtalk_instances(sandbox_dataset)}

    with client(sandbox) as dt:
        records = list(dt.iter_instances(sandbox_dataset.process_code, start, end))

    assert expected, "the dataset should have instances in its own period"
    assert len(records) == len(expected) == len({r.source_id for r in records})
    assert {r.source_id for r in records} == expected
    for record in records:
        assert (record.system, record.kind) == ("dingtalk", sandbox_dataset.process_code)
        assert record.payload == by_id[record.source_id]  # the whole object, with its id set


def test_adjacent_windows_neither_overlap_nor_lose_an_instance(sandbox, sandbox_dataset, busy_day) -> None:
    start, end = busy_day
    ids = sorted(ids_created_in(sandbox_dataset, start, end))
    # split exactly at an instance's creation second: it belongs to the second window only
    split = created_at(
        next(i for i in dingtalk_instances(sandbox_dataset) if i["process_instance_id"] == ids[len(ids) // 2])
    )
    with client(sandbox, page_size=5) as dt:
        first = list(dt.iter_instance_ids(sandbox_dataset.process_code, start, split))
        second = list(dt.iter_instance_ids(sandbox_dataset.process_code, split, end))
    assert not set(first) & set(second)
    assert set(first) | set(second) == set(ids)
    assert set(first) == ids_created_in(sandbox_dataset, start, split)


def test_output_order_is_the_listing_order_with_any_number_of_workers(
    sandbox, sandbox_dataset, busy_day
) -> None:
    with client(sandbox, workers=1) as dt:
        listed = list(dt.iter_instance_ids(sandbox_dataset.process_code, *busy_day))
    with client(sandbox, workers=8) as dt:
        fetched = [r.source_id for r in dt.iter_instances(sandbox_dataset.process_code, *busy_day)]
    assert fetched == listed


@pytest.mark.parametrize("kind", ["http_429", "http_500", "http_503", "rate_limit_code", "malformed_json"])
@pytest.mark.parametrize("path", ["listids", "processinstance/get"])
def test_one_fault_costs_exactly_one_extra_request(sandbox, sandbox_dataset, busy_day, kind, path) -> None:
    with client(sandbox, page_size=7) as dt:
        baseline = list(dt.iter_instances(sandbox_dataset.process_code, *busy_day))
    before = len(settled(sandbox.calls))

    sandbox.faults.inject("dingtalk", kind, path_contains=path)
    with client(sandbox, page_size=7) as dt:
        records = list(dt.iter_instances(sandbox_dataset.process_code, *busy_day))
        stats = dt.stats

    assert records == baseline
    calls = settled(sandbox.calls)
    assert len(calls) == 2 * before + 1  # the same calls again, plus the one that failed
    assert [c.fault for c in calls].count(kind) == 1
    assert sum(stats.retries.values()) == 1


def test_retry_after_from_a_429_is_honoured(sandbox, sandbox_dataset, busy_day) -> None:
    waits: list[float] = []
    policy = RetryPolicy(base_delay=8.0, max_delay=8.0, sleep=waits.append)
    sandbox.faults.inject("dingtalk", "http_429", path_contains="listids")
    sandbox.faults.inject("dingtalk", "http_503", path_contains="listids")
    with client(sandbox, retry=policy) as dt:
        list(dt.iter_instance_ids(sandbox_dataset.process_code, *busy_day))
    # the sandbox's 429 says Retry-After: 0; the 503 says nothing, so backoff applies (4..8 s, not slept here)
    assert waits[0] == 0.0
    assert 4.0 <= waits[1] <= 8.0


def test_expired_token_mid_paging_is_refreshed_without_losing_or_repeating_ids(
    sandbox, sandbox_dataset, busy_day
) -> None:
    with client(sandbox, page_size=3) as dt:
        baseline = list(dt.iter_instance_ids(sandbox_dataset.process_code, *busy_day))

    with client(sandbox, page_size=3) as dt:
        ids = dt.iter_instance_ids(sandbox_dataset.process_code, *busy_day)
        head = list(islice(ids, 4))  # two pages fetched
        sandbox.faults.inject("dingtalk", "token_expired", path_contains="listids")
        rest = list(ids)
        assert dt.stats.refreshes["processinstance/listids"] == 1
        assert dt.stats.requests["gettoken"] == 2

    assert head + rest == baseline
    expired = [c for c in settled(sandbox.calls).snapshot("dingtalk") if c.fault == "token_expired"]
    assert len(expired) == 1


@pytest.mark.parametrize("envelope", ["88/40014", "40014", "42001"])
def test_a_token_dying_after_n_calls_in_mid_paging_is_refreshed_in_every_documented_envelope(
    sandbox, sandbox_dataset, busy_day, envelope
) -> None:
    """Issue #10 item 1: real topapi answers a dead token with errcode 88, sub_code 40014."""
    with client(sandbox, page_size=3, workers=1) as dt:
        baseline = list(dt.iter_instances(sandbox_dataset.process_code, *busy_day))
    assert len(baseline) > 12
    sandbox.dingtalk.expiry_envelope = envelope
    sandbox.set_token_uses(5, "dingtalk")  # dies on the 6th call: after a listids page and 4 gets
    try:
        sandbox.dingtalk.tokens.expire()  # the next gettoken issues a token that counts its uses
        with client(sandbox, page_size=3, workers=1) as dt:
            records = list(dt.iter_instances(sandbox_dataset.process_code, *busy_day))
            refreshed = sum(dt.stats.refreshes.values())
    finally:
        sandbox.dingtalk.expiry_envelope = "88/40014"
    assert [r.source_id for r in records] == [r.source_id for r in baseline]
    assert records == baseline
    assert refreshed >= len(baseline) // 5  # one refresh per dead token, and the run went on


def test_errcode_88_for_anything_but_a_dead_token_stays_an_auth_error() -> None:
    """88 with a permission sub_code (source-systems.md §1.6: 60011) is not healed by a new token."""
    from oafin.connectors.errors import TokenExpiredError
    from oafin.connectors.http import Call
    from oafin.systems.dingtalk.client import check_envelope

    call = Call("dingtalk", "processinstance/get")
    no_right = {
        "errcode": 88,
        "sub_code": "60011",
        "sub_msg": "没有调用该接口的权限",
        "errmsg": "ding talk error",
    }
    with pytest.raises(AuthError) as caught:
        check_envelope(call, no_right, httpx.Response(200))
    assert not isinstance(caught.value, TokenExpiredError)
    assert "60011" in str(caught.value) and "processinstance/get" in str(caught.value)
    for dead in (
        {"errcode": 88, "sub_code": "40014", "sub_msg": "不合法的access_token"},
        {"errcode": "88", "sub_code": 42001, "sub_msg": "access_token超时"},
        {"errcode": 40014, "errmsg": "不合法的access_token"},
    ):
        with pytest.raises(TokenExpiredError):
            check_envelope(call, dead, httpx.Response(200))


def test_expired_token_while_fetching_details_in_parallel(sandbox, sandbox_dataset, busy_day) -> None:
    with client(sandbox) as dt:
        baseline = list(dt.iter_instances(sandbox_dataset.process_code, *busy_day))
    with client(sandbox, workers=4) as dt:
        records = dt.iter_instances(sandbox_dataset.process_code, *busy_day)
        head = list(islice(records, 2))
        # the token dies under several threads at once: they share one new token
        sandbox.faults.inject("dingtalk", "token_expired", path_contains="processinstance/get")
        assert head + list(records) == baseline
        assert not sandbox.faults.pending(), "the fault should have hit a detail call"
        assert dt.stats.requests["gettoken"] == 2


def test_bad_credentials_fail_fast_without_retries(sandbox, sandbox_dataset, busy_day) -> None:
    dt = DingTalkClient(
        sandbox.dingtalk_url, credentials.DINGTALK_APP_KEY, "not-the-secret", retry=FAST, limiter=no_limit
    )
    with dt, pytest.raises(AuthError, match=r"^dingtalk gettoken: errcode 40089") as caught:
        list(dt.iter_instances(sandbox_dataset.process_code, *busy_day))
    calls = settled(sandbox.calls)
    assert calls.count("/gettoken") == 1
    assert calls.count("/topapi/") == 0
    assert "not-the-secret" not in str(caught.value)


def test_malformed_json_past_the_retry_budget_names_the_call(sandbox, sandbox_dataset, busy_day) -> None:
    first_id = min(ids_created_in(sandbox_dataset, *busy_day))
    sandbox.faults.inject(
        "dingtalk", "malformed_json", path_contains="processinstance/get", times=FAST.max_attempts
    )
    with client(sandbox) as dt, pytest.raises(BadResponseError) as caught:
        dt.get_instance(first_id)
    message = str(caught.value)
    assert message.startswith(
        f"dingtalk processinstance/get(process_instance_id={first_id}): response is not JSON"
    )
    assert settled(sandbox.calls).count("processinstance/get") == FAST.max_attempts


def test_persistent_rate_limit_gives_up_as_rate_limited(sandbox, sandbox_dataset, busy_day) -> None:
    sandbox.faults.inject("dingtalk", "rate_limit_code", path_contains="listids", times=FAST.max_attempts)
    with client(sandbox) as dt, pytest.raises(RateLimitedError, match="errcode 90018"):
        list(dt.iter_instance_ids(sandbox_dataset.process_code, *busy_day))
    assert settled(sandbox.calls).count("listids") == FAST.max_attempts


def test_unknown_process_code_fails_fast_as_a_source_error(sandbox, busy_day) -> None:
    with client(sandbox) as dt, pytest.raises(ConnectorError) as caught:
        list(dt.iter_instance_ids("PROC-DOES-NOT-EXIST", *busy_day))
    assert not caught.value.retryable
    assert "process_code=PROC-DOES-NOT-EXIST" in str(caught.value)
    assert settled(sandbox.calls).count("listids") == 1


def test_client_side_rate_limit_spaces_requests(sandbox, sandbox_dataset, busy_day) -> None:
    with client(sandbox, limiter=RateLimiter(50.0), workers=1) as dt:
        began = time.monotonic()
        list(islice(dt.iter_instances(sandbox_dataset.process_code, *busy_day), 9))
        elapsed = time.monotonic() - began
        sent = sum(dt.stats.requests.values())
    assert sent >= 10  # a token, a page of ids, nine details
    assert elapsed >= (sent - 1) / 50.0


def test_no_error_message_ever_carries_a_secret(sandbox, sandbox_dataset, busy_day) -> None:
    messages: list[str] = []
    with client(sandbox) as dt:
        first_id = next(dt.iter_instance_ids(sandbox_dataset.process_code, *busy_day))
        # the sandbox hands out the same token while it is valid (source-systems.md §1.1 [U])
        token = httpx.get(
            f"{sandbox.dingtalk_url}/gettoken",
            params={"appkey": credentials.DINGTALK_APP_KEY, "appsecret": credentials.DINGTALK_APP_SECRET},
        ).json()["access_token"]
        assert dt.auth.secrets() == [token]
        for kind in ("malformed_json", "http_500", "token_expired"):
            sandbox.faults.inject("dingtalk", kind, path_contains="processinstance/get", times=10)
            with pytest.raises(ConnectorError) as caught:
                dt.get_instance(first_id)
            messages.append(str(caught.value))
            sandbox.faults.clear()
    # nothing listening: the connection error comes from the gettoken URL, which carries the app secret
    dead = DingTalkClient(
        "http://127.0.0.1:9",
        credentials.DINGTALK_APP_KEY,
        credentials.DINGTALK_APP_SECRET,
        retry=FAST,
        limiter=no_limit,
    )
    with dead, pytest.raises(TransientError, match="^dingtalk gettoken: connection failed") as caught:
        dead.get_instance(first_id)
    assert dead.stats.requests == {"gettoken": FAST.max_attempts}  # the get itself never went out
    messages.append(str(caught.value))

    assert len(messages) == 4
    for message in messages:
        assert message.startswith("dingtalk ")
        assert credentials.DINGTALK_APP_SECRET not in message
        assert token not in message


def test_logs_carry_no_secret_even_at_debug_level(sandbox, sandbox_dataset, busy_day, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox.faults.inject("dingtalk", "http_500", path_contains="processinstance/get")
    with client(sandbox) as dt:
        records = list(islice(dt.iter_instances(sandbox_dataset.process_code, *busy_day), 3))
        token = dt.auth.secrets()[0]
    assert len(records) == 3
    assert "HTTP Request: GET" in caplog.text  # httpx logged the gettoken URL, credentials masked
    assert "appsecret=***" in caplog.text
    assert credentials.DINGTALK_APP_SECRET not in caplog.text
    assert token not in caplog.text


def test_a_dead_token_another_thread_already_replaced_is_not_this_calls_refresh(
    sandbox, sandbox_dataset
) -> None:
    """Threads share one token: when it dies, several calls see it at once and the first to report
    it fetches the next. A call whose dead token another thread already reported must not spend its
    own refreshes on it, or a burst of expiries fails the run (the flaky fault test of issue #16)."""

    class OtherThreadGotThereFirst:
        """The client's auth, with another thread invalidating the same dead token just before us."""

        def __init__(self, inner) -> None:  # noqa: ANN001 - the client's TokenAuth
            self.inner = inner

        def invalidate(self, marker: object) -> object:
            self.inner.invalidate(marker)  # the other thread
            return self.inner.invalidate(marker)

        def __getattr__(self, name: str) -> object:
            return getattr(self.inner, name)

    instance_id = dingtalk_instances(sandbox_dataset)[0]["process_instance_id"]
    with client(sandbox) as dt:
        dt.api.auth = OtherThreadGotThereFirst(dt.api.auth)
        sandbox.faults.inject("dingtalk", "token_expired", path_contains="processinstance/get", times=4)
        got = dt.get_instance(instance_id)
    assert got  # the instance, after four dead tokens (more than a call's own refreshes allow)
    assert settled(sandbox.calls).count("processinstance/get") == 5
