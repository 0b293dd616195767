"""KingdeeClient against the sandbox's fake K/3 Cloud WebAPI, over real HTTP on localhost."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from itertools import islice
from zoneinfo import ZoneInfo

import pytest

from oafin.connectors import (
    AuthError,
    BadResponseError,
    ConnectorError,
    RetryPolicy,
    SourceError,
    TokenExpiredError,
    TransientError,
)
from oafin.connectors.limits import no_limit
from oafin.sandbox import credentials
from oafin.systems.kingdee.client import SESSION_COOKIE, KingdeeClient
from oafin.systems.kingdee.twin_render import form_rows as kingdee_rows

SHANGHAI = ZoneInfo("Asia/Shanghai")
FAST = RetryPolicy(max_attempts=4, base_delay=0.0, max_delay=0.0)
PAYBILL_KEYS = ["FID", "FBillNo", "FDATE", "F_OAFIN_OANo", "FSOURCEBILLNO", "FREALPAYAMOUNTFOR_D"]
REIMB_KEYS = ["FID", "FBillNo", "FDate", "F_OAFIN_OANo", "FExpenseAmount", "FDocumentStatus"]
EVERYTHING = (datetime(2000, 1, 1, tzinfo=SHANGHAI), datetime(2100, 1, 1, tzinfo=SHANGHAI))


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


def client(sandbox, **kwargs) -> KingdeeClient:
    options = {"retry": FAST, "limiter": no_limit, **kwargs}
    return KingdeeClient(
        sandbox.kingdee_url,
        credentials.KINGDEE_ACCT_ID,
        credentials.KINGDEE_USERNAME,
        credentials.KINGDEE_APP_ID,
        credentials.KINGDEE_APP_SECRET,
        **options,
    )


def dated(value: str) -> datetime:
    # default-forms.md: Kingdee dates are local ISO date-times without a zone, China time
    return datetime.fromisoformat(value).replace(tzinfo=SHANGHAI)


def test_small_pages_return_every_row_exactly_once(sandbox, sandbox_dataset) -> None:
    rows = kingdee_rows(sandbox_dataset)["AP_PAYBILL"]
    page = 7
    with client(sandbox, page_size=page) as kd:
        records = list(kd.iter_bills("AP_PAYBILL", PAYBILL_KEYS, "FDATE", *EVERYTHING))
        sent = kd.stats.requests["ExecuteBillQuery"]

    assert [r.source_id for r in records] == sorted((str(r["FID"]) for r in rows), key=int)
    assert sent == len(rows) // page + 1  # full pages, then the short one that ends the walk
    expected = {str(r["FID"]): r for r in rows}
    for record in records:
        assert (record.system, record.kind) == ("kingdee", "AP_PAYBILL")
        source = expected[record.source_id]
        assert record.payload["FBillNo"] == source["FBillNo"]
        # money arrives as Decimal, never float (the JSON number is parsed exactly)
        assert not isinstance(record.payload["FREALPAYAMOUNTFOR_D"], float)
        assert Decimal(str(record.payload["FREALPAYAMOUNTFOR_D"])) == Decimal(
            str(source["FREALPAYAMOUNTFOR_D"])
        )


def test_a_period_window_is_cut_in_china_time(sandbox, sandbox_dataset) -> None:
    start, end = datetime(2026, 10, 1, tzinfo=SHANGHAI), datetime(2026, 11, 1, tzinfo=SHANGHAI)
    expected = {
        str(r["FID"])
        for r in kingdee_rows(sandbox_dataset)["ER_ExpReimbursement"]
        if start <= dated(r["FDate"]) < end
    }
    with client(sandbox) as kd:
        # the same instants given in UTC: the filter must still say 2026-10-01 00:00:00 local
        utc = ZoneInfo("UTC")
        records = list(
            kd.iter_bills(
                "ER_ExpReimbursement", REIMB_KEYS, "FDate", start.astimezone(utc), end.astimezone(utc)
            )
        )
    assert expected
    assert {r.source_id for r in records} == expected
    assert len(records) == len(expected)


@pytest.mark.parametrize("kind", ["http_429", "http_500", "http_503", "malformed_json"])
def test_one_fault_costs_exactly_one_extra_request(sandbox, kind) -> None:
    with client(sandbox, page_size=50) as kd:
        baseline = list(kd.iter_bills("AP_PAYBILL", PAYBILL_KEYS, "FDATE", *EVERYTHING))
    before = len(settled(sandbox.calls))

    sandbox.faults.inject("kingdee", kind, path_contains="ExecuteBillQuery")
    with client(sandbox, page_size=50) as kd:
        records = list(kd.iter_bills("AP_PAYBILL", PAYBILL_KEYS, "FDATE", *EVERYTHING))
        assert kd.stats.retries["ExecuteBillQuery"] == 1

    assert records == baseline
    calls = settled(sandbox.calls)
    assert len(calls) == 2 * before + 1  # the same calls again, plus the one that failed
    assert [c.fault for c in calls].count(kind) == 1


def test_a_login_fault_is_retried_too(sandbox) -> None:
    sandbox.faults.inject("kingdee", "http_503", path_contains="LoginByAppSecret")
    with client(sandbox) as kd:
        rows = kd.execute_bill_query("AP_PAYBILL", ["FID"], limit=3)
        assert kd.stats.requests["LoginByAppSecret"] == 2
    assert len(rows) == 3


def test_a_login_that_keeps_failing_is_not_retried_again_by_the_query(sandbox) -> None:
    sandbox.faults.inject("kingdee", "http_503", path_contains="LoginByAppSecret", times=FAST.max_attempts)
    with client(sandbox) as kd, pytest.raises(TransientError, match=r"^kingdee LoginByAppSecret: HTTP 503"):
        kd.execute_bill_query("AP_PAYBILL", ["FID"], limit=3)
    calls = settled(sandbox.calls)
    assert calls.count("LoginByAppSecret") == FAST.max_attempts
    assert calls.count("ExecuteBillQuery") == 0


def test_lost_session_mid_paging_logs_in_again_and_loses_nothing(sandbox) -> None:
    with client(sandbox, page_size=20) as kd:
        baseline = list(kd.iter_rows("AP_PAYBILL", PAYBILL_KEYS))

    with client(sandbox, page_size=20) as kd:
        rows = kd.iter_rows("AP_PAYBILL", PAYBILL_KEYS)
        head = list(islice(rows, 30))  # two pages fetched
        sandbox.faults.inject("kingdee", "token_expired", path_contains="ExecuteBillQuery")
        rest = list(rows)
        assert kd.stats.requests["LoginByAppSecret"] == 2
        assert kd.stats.refreshes["ExecuteBillQuery"] == 1

    assert head + rest == baseline
    assert len({row["FID"] for row in head + rest}) == len(baseline)


def test_a_session_lost_again_right_after_login_is_an_auth_error(sandbox) -> None:
    sandbox.faults.inject("kingdee", "token_expired", path_contains="ExecuteBillQuery", times=2)
    with client(sandbox) as kd, pytest.raises(AuthError, match="会话信息已丢失") as caught:
        kd.execute_bill_query("AP_PAYBILL", ["FID"], limit=3)
    assert isinstance(caught.value, TokenExpiredError)
    calls = settled(sandbox.calls)
    assert calls.count("LoginByAppSecret") == 2
    assert calls.count("ExecuteBillQuery") == 2


def test_bad_credentials_fail_fast_without_retries(sandbox) -> None:
    kd = KingdeeClient(
        sandbox.kingdee_url,
        credentials.KINGDEE_ACCT_ID,
        credentials.KINGDEE_USERNAME,
        credentials.KINGDEE_APP_ID,
        "wrong-app-secret",
        retry=FAST,
        limiter=no_limit,
    )
    with kd, pytest.raises(AuthError, match=r"^kingdee LoginByAppSecret: login refused") as caught:
        list(kd.iter_rows("AP_PAYBILL", ["FID"]))
    calls = settled(sandbox.calls)
    assert calls.count("LoginByAppSecret") == 1
    assert calls.count("ExecuteBillQuery") == 0
    assert "wrong-app-secret" not in str(caught.value)


def test_named_login_body_is_accepted_too(sandbox) -> None:
    with client(sandbox, login_style="named") as kd:
        assert len(kd.execute_bill_query("AP_PAYBILL", ["FID"], limit=2)) == 2


def test_unknown_form_id_fails_fast_naming_the_call(sandbox) -> None:
    # source-systems.md §7.5: ER_ExpenseReimbursement does not exist (ER_ExpReimbursement does)
    with client(sandbox) as kd, pytest.raises(SourceError) as caught:
        list(kd.iter_rows("ER_ExpenseReimbursement", ["FID"]))
    assert str(caught.value).startswith(
        "kingdee ExecuteBillQuery(FormId=ER_ExpenseReimbursement, StartRow=0): "
    )
    assert "业务对象不存在" in str(caught.value)
    assert settled(sandbox.calls).count("ExecuteBillQuery") == 1


def test_unknown_field_key_fails_fast_naming_the_field(sandbox) -> None:
    with client(sandbox) as kd, pytest.raises(SourceError, match="FNoSuchField") as caught:
        kd.execute_bill_query("AP_PAYBILL", ["FID", "FNoSuchField"])
    assert not caught.value.retryable
    assert settled(sandbox.calls).count("ExecuteBillQuery") == 1


def test_malformed_json_past_the_retry_budget_names_the_call(sandbox) -> None:
    sandbox.faults.inject(
        "kingdee", "malformed_json", path_contains="ExecuteBillQuery", times=FAST.max_attempts
    )
    with client(sandbox, page_size=2000) as kd, pytest.raises(BadResponseError) as caught:
        kd.execute_bill_query("AP_PAYBILL", PAYBILL_KEYS, start_row=2000)
    assert str(caught.value).startswith(
        "kingdee ExecuteBillQuery(FormId=AP_PAYBILL, StartRow=2000): response is not JSON"
    )
    assert settled(sandbox.calls).count("ExecuteBillQuery") == FAST.max_attempts


def test_no_error_message_ever_carries_a_secret(sandbox) -> None:
    messages: list[str] = []
    with client(sandbox) as kd:
        kd.execute_bill_query("AP_PAYBILL", ["FID"], limit=1)
        session = kd.auth.cache.peek().value[SESSION_COOKIE]
        assert len(session) >= 16
        for kind, times in (("malformed_json", 10), ("http_500", 10), ("token_expired", 2)):
            sandbox.faults.inject("kingdee", kind, path_contains="ExecuteBillQuery", times=times)
            with pytest.raises(ConnectorError) as caught:
                kd.execute_bill_query("AP_PAYBILL", ["FID"], limit=1)
            messages.append(str(caught.value))
            sandbox.faults.clear()
    dead = KingdeeClient(
        "http://127.0.0.1:9/k3cloud/",
        credentials.KINGDEE_ACCT_ID,
        credentials.KINGDEE_USERNAME,
        credentials.KINGDEE_APP_ID,
        credentials.KINGDEE_APP_SECRET,
        retry=FAST,
        limiter=no_limit,
    )
    with dead, pytest.raises(ConnectorError) as caught:
        dead.execute_bill_query("AP_PAYBILL", ["FID"])
    messages.append(str(caught.value))

    assert len(messages) == 4
    for message in messages:
        assert message.startswith("kingdee ")
        assert credentials.KINGDEE_APP_SECRET not in message
        assert session not in message
