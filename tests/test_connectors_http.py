"""The connector building blocks that need no server: pagers, retry timing, redaction, auth caching."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from oafin.connectors.auth import Credential, CredentialCache, KingdeeSignatureAuth, TokenAuth
from oafin.connectors.errors import SourceError, TokenExpiredError
from oafin.connectors.http import Call, Redactor, redact_url
from oafin.connectors.limits import RateLimiter, RetryPolicy
from oafin.connectors.paging import CursorPager, OffsetLimitPager, PageIndexPager, PageTokenPager, PagingError
from oafin.systems.dingtalk.client import epoch_ms
from oafin.systems.kingdee.client import date_window_filter, find_response_status, raise_for_status

SHANGHAI = ZoneInfo("Asia/Shanghai")


class FakeClock:
    """A clock that only moves when something sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


# --- pagers -------------------------------------------------------------------------------------


def test_cursor_pager_follows_next_cursor_until_it_is_absent() -> None:
    items = [f"id{i}" for i in range(45)]
    sent: list[dict] = []

    def fetch(params: dict) -> dict:
        sent.append(params)
        start = params["cursor"]
        page = {"list": items[start : start + params["size"]]}
        if start + params["size"] < len(items):
            page["next_cursor"] = start + params["size"]
        return page

    pager = CursorPager(items=lambda p: p["list"], next_cursor=lambda p: p.get("next_cursor"), size=20)
    got = [i for page in pager.pages(fetch) for i in page]
    assert got == items
    assert [p["cursor"] for p in sent] == [0, 20, 40]


def test_cursor_pager_refuses_a_cursor_that_does_not_advance() -> None:
    pager = CursorPager(items=lambda p: p["list"], next_cursor=lambda p: p["next_cursor"])
    with pytest.raises(PagingError):
        list(pager.pages(lambda params: {"list": ["a"], "next_cursor": 5}))


@pytest.mark.parametrize(("total", "limit"), [(0, 7), (6, 7), (7, 7), (20, 7), (21, 7)])
def test_offset_limit_pager_stops_on_a_short_page(total: int, limit: int) -> None:
    rows = list(range(total))
    calls: list[dict] = []

    def fetch(params: dict) -> list:
        calls.append(params)
        return rows[params["StartRow"] : params["StartRow"] + params["Limit"]]

    pager = OffsetLimitPager(limit=limit)
    assert [r for page in pager.pages(fetch) for r in page] == rows
    # one call per full page, plus the short (possibly empty) page that ends the walk
    assert len(calls) == total // limit + 1
    assert [c["StartRow"] for c in calls] == [limit * i for i in range(len(calls))]


def test_page_token_pager_stops_when_has_more_is_false() -> None:
    pages = {
        None: {"items": [1, 2], "page_token": "b", "has_more": True},
        "b": {"items": [3], "page_token": "c", "has_more": False},
    }
    pager = PageTokenPager(
        items=lambda p: p["items"], next_token=lambda p: p.get("page_token"), has_more=lambda p: p["has_more"]
    )
    assert [i for page in pager.pages(lambda params: pages[params.get("page_token")]) for i in page] == [
        1,
        2,
        3,
    ]


def test_page_index_pager_stops_at_the_record_count() -> None:
    records = list(range(25))

    def fetch(params: dict) -> dict:
        first = (params["pageIndex"] - 1) * params["pageSize"]
        return {"recordCount": len(records), "recordList": records[first : first + params["pageSize"]]}

    pager = PageIndexPager(items=lambda p: p["recordList"], total=lambda p: p["recordCount"], size=10)
    pages = list(pager.pages(fetch))
    assert [len(p) for p in pages] == [10, 10, 5]


# --- retry timing and rate limit ----------------------------------------------------------------


def test_backoff_grows_exponentially_within_jitter_and_is_capped() -> None:
    low = RetryPolicy(base_delay=1.0, max_delay=8.0, random=lambda: 0.0)
    high = RetryPolicy(base_delay=1.0, max_delay=8.0, random=lambda: 0.999999)
    assert [low.delay(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert [round(high.delay(n), 3) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 8.0, 8.0]


def test_retry_after_is_honoured_up_to_a_cap() -> None:
    policy = RetryPolicy(base_delay=0.0, max_retry_after=10.0)
    assert policy.delay(1, retry_after=3.0) == 3.0
    assert policy.delay(1, retry_after=600.0) == 10.0


def test_rate_limiter_spaces_requests() -> None:
    clock = FakeClock()
    limiter = RateLimiter(4.0, clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(9):
        limiter.acquire()
    # the first goes at once, the next eight at 4 a second
    assert clock.now - start == pytest.approx(2.0)


# --- redaction ----------------------------------------------------------------------------------


def test_redactor_hides_known_secrets_and_credential_query_parameters() -> None:
    redact = Redactor(["s3cr3t-app-secret"])
    redact.add("tok-0123456789")
    text = "GET /gettoken?appkey=k&appsecret=abc123 failed; token tok-0123456789; secret s3cr3t-app-secret"
    out = redact(text)
    for secret in ("abc123", "tok-0123456789", "s3cr3t-app-secret"):
        assert secret not in out
    assert "appkey=k" in out


def test_httpx_urls_lose_their_access_token() -> None:
    url = httpx.URL("http://127.0.0.1:1/topapi/processinstance/get", params={"access_token": "T0KEN-VALUE"})
    assert "T0KEN-VALUE" not in redact_url(url)


# --- auth ---------------------------------------------------------------------------------------


def test_credential_cache_refreshes_before_expiry_and_ignores_stale_invalidation() -> None:
    clock = FakeClock()
    issued: list[str] = []

    def fetch() -> Credential:
        issued.append(f"t{len(issued)}")
        return Credential(issued[-1], expires_in=7200)

    cache = CredentialCache(fetch, refresh_margin=300, clock=clock)
    first, gen1 = cache.get()
    clock.now += 6899
    assert cache.get()[0] is first
    clock.now += 2  # inside the refresh margin
    second, gen2 = cache.get()
    assert (first.value, second.value) == ("t0", "t1")
    cache.invalidate(gen1)  # a thread still holding the old token
    assert cache.get()[0] is second
    cache.invalidate(gen2)
    assert cache.get()[0].value == "t2"


def test_token_auth_places_the_token_in_query_or_header() -> None:
    query = TokenAuth(lambda: Credential("abc"), place="query", name="access_token")
    header = TokenAuth(lambda: Credential("abc"), place="header", name="Authorization", prefix="Bearer ")
    r1 = httpx.Request("POST", "http://h/topapi/x?a=1")
    r2 = httpx.Request("GET", "http://h/open-apis/y")
    query.apply(r1)
    header.apply(r2)
    assert r1.url.params["access_token"] == "abc" and r1.url.params["a"] == "1"
    assert r2.headers["Authorization"] == "Bearer abc"


def test_kingdee_signature_headers_follow_the_sdk_recipe() -> None:
    auth = KingdeeSignatureAuth(
        app_id="224466_abcdEFGH",
        app_secret="app-secret-value",
        acct_id="62f0a1",
        username="oafin",
        client_secret="client-secret-value",
        clock=lambda: 1790000000.0,
        nonce=lambda: "n0nce",
    )
    request = httpx.Request("POST", "http://h/k3cloud/Kingdee.BOS.WebApi.ServicesStub.X.common.kdsvc")
    auth.apply(request)

    def b64hex(key: str, msg: str) -> str:
        return base64.b64encode(
            hmac.new(key.encode(), msg.encode(), hashlib.sha256).hexdigest().encode()
        ).decode()

    path = "%2Fk3cloud%2FKingdee.BOS.WebApi.ServicesStub.X.common.kdsvc"
    expected = b64hex(
        "client-secret-value", f"POST\n{path}\n\nx-api-nonce:n0nce\nx-api-timestamp:1790000000\n"
    )
    assert request.headers["X-Api-ClientID"] == "224466"
    assert request.headers["X-Api-Signature"] == expected
    assert base64.b64decode(request.headers["X-Kd-Appdata"]).decode() == "62f0a1,oafin,2052,0"
    assert request.headers["X-Kd-Signature"] == b64hex(
        "app-secret-value", "224466_abcdEFGH62f0a1,oafin,2052,0"
    )


# --- time windows and Kingdee envelopes ---------------------------------------------------------


def test_epoch_ms_is_exact_and_refuses_naive_datetimes() -> None:
    moment = datetime(2026, 10, 1, 0, 0, 0, 999000, tzinfo=SHANGHAI)
    assert epoch_ms(moment) == int(datetime(2026, 9, 30, 16, tzinfo=UTC).timestamp()) * 1000 + 999
    with pytest.raises(ValueError):
        epoch_ms(datetime(2026, 10, 1))


def test_kingdee_date_filter_is_in_china_time() -> None:
    start = datetime(2026, 10, 1, tzinfo=SHANGHAI).astimezone(UTC)  # 2026-09-30 16:00 UTC
    end = start + timedelta(days=31)
    assert date_window_filter("FDate", start, end) == (
        "FDate >= '2026-10-01 00:00:00' AND FDate < '2026-11-01 00:00:00'"
    )


def test_kingdee_error_nested_in_the_2d_array_is_found_and_classified() -> None:
    def reply(message: str) -> list:
        status = {"ErrorCode": 500, "IsSuccess": "false", "Errors": [{"FieldName": None, "Message": message}]}
        return [[{"Result": {"ResponseStatus": status}}]]

    call = Call("kingdee", "ExecuteBillQuery", "FormId=NOPE, StartRow=0")
    assert find_response_status([["FID", 1]]) is None
    with pytest.raises(
        SourceError, match=r"kingdee ExecuteBillQuery\(FormId=NOPE, StartRow=0\): .*业务对象不存在"
    ):
        raise_for_status(call, find_response_status(reply("业务对象不存在")))
    with pytest.raises(TokenExpiredError):
        raise_for_status(call, find_response_status(reply("会话信息已丢失，请重新登录")))


# --- ordered concurrent calls -------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 3])
def test_ordered_map_keeps_the_order_and_bounds_what_is_in_flight(workers: int) -> None:
    import threading
    import time as _time

    from oafin.connectors.ordered import ordered_map

    lock, running, most = threading.Lock(), [0], [0]
    read: list[int] = []

    def slow(n: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        _time.sleep(0.002 * (n % 3))  # later items may finish first
        with lock:
            running[0] -= 1
        return n * n

    def items():
        for n in range(40):
            read.append(n)
            yield n

    out = []
    for item, square in ordered_map(slow, items(), workers, "t"):
        out.append((item, square))
        assert len(read) - len(out) <= 2 * workers  # never read far ahead of the consumer
    assert out == [(n, n * n) for n in range(40)]
    assert most[0] <= workers


def test_ordered_map_raises_the_first_failure_in_order() -> None:
    from oafin.connectors.ordered import ordered_map

    def fail_on_five(n: int) -> int:
        if n == 5:
            raise ValueError("five")
        return n

    got = []
    with pytest.raises(ValueError, match="five"):
        for item, _ in ordered_map(fail_on_five, range(20), 4, "t"):
            got.append(item)
    assert got == [0, 1, 2, 3, 4]
