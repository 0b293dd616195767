"""The fake DingTalk and Kingdee over real HTTP: shapes, paging, auth, errors and every fault kind."""

from __future__ import annotations

import json
import socket
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from oafin.sandbox import credentials
from oafin.sandbox.dataset import Dataset
from oafin.sandbox_server import SandboxHandle, running_sandbox
from oafin.systems.dingtalk.twin_render import instances as dingtalk_instances
from oafin.systems.kingdee.twin_render import form_rows as kingdee_rows

SHANGHAI = ZoneInfo("Asia/Shanghai")
LOGIN = "Kingdee.BOS.WebApi.ServicesStub.AuthService.LoginByAppSecret.common.kdsvc"
QUERY = "Kingdee.BOS.WebApi.ServicesStub.DynamicFormService.ExecuteBillQuery.common.kdsvc"
GOOD_LOGIN = [
    credentials.KINGDEE_ACCT_ID,
    credentials.KINGDEE_USERNAME,
    credentials.KINGDEE_APP_ID,
    credentials.KINGDEE_APP_SECRET,
    credentials.KINGDEE_LCID,
]
PERIOD_FILTER = "FDATE >= '2026-10-01 00:00:00' AND FDATE < '2026-11-01 00:00:00'"


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).timestamp() * 1000)


@pytest.fixture
def http() -> httpx.Client:
    with httpx.Client(timeout=10) as client:
        yield client  # type: ignore[misc]


# -- DingTalk ------------------------------------------------------------------------------------


def token(http: httpx.Client, sb: SandboxHandle) -> str:
    params = {"appkey": credentials.DINGTALK_APP_KEY, "appsecret": credentials.DINGTALK_APP_SECRET}
    body = http.get(f"{sb.dingtalk_url}/gettoken", params=params).json()
    assert body["errcode"] == 0, body
    return body["access_token"]


def listids(http: httpx.Client, sb: SandboxHandle, tok: str, **body: Any) -> httpx.Response:
    return http.post(
        f"{sb.dingtalk_url}/topapi/processinstance/listids", params={"access_token": tok}, json=body
    )


def get(http: httpx.Client, sb: SandboxHandle, tok: str, instance_id: str) -> httpx.Response:
    return http.post(
        f"{sb.dingtalk_url}/topapi/processinstance/get",
        params={"access_token": tok},
        json={"process_instance_id": instance_id},
    )


def test_gettoken_gives_a_token_for_7200_s_and_the_same_one_while_it_lives(http, sandbox_fresh) -> None:
    params = {"appkey": credentials.DINGTALK_APP_KEY, "appsecret": credentials.DINGTALK_APP_SECRET}
    first = http.get(f"{sandbox_fresh.dingtalk_url}/gettoken", params=params).json()
    assert (first["errcode"], first["errmsg"], first["expires_in"]) == (0, "ok", 7200)
    assert first["access_token"]
    assert (
        http.get(f"{sandbox_fresh.dingtalk_url}/gettoken", params=params).json()["access_token"]
        == first["access_token"]
    )


def test_gettoken_refuses_a_wrong_secret(http, sandbox_fresh) -> None:
    params = {"appkey": credentials.DINGTALK_APP_KEY, "appsecret": "wrong"}
    body = http.get(f"{sandbox_fresh.dingtalk_url}/gettoken", params=params).json()
    assert body["errcode"] != 0
    assert "access_token" not in body


def test_listids_pages_to_the_end_and_finds_exactly_the_window(
    http, sandbox_fresh, sandbox_dataset: Dataset
) -> None:
    start, end = ms("2026-10-01 00:00:00"), ms("2026-10-31 23:59:59")
    expected = {
        i["process_instance_id"]
        for i in dingtalk_instances(sandbox_dataset)
        if start <= ms(i["create_time"]) <= end
    }
    tok, cursor, seen, pages = token(http, sandbox_fresh), 0, [], 0
    while True:
        body = listids(
            http,
            sandbox_fresh,
            tok,
            process_code="PROC-OAFIN-EXPENSE",
            start_time=start,
            end_time=end,
            size=20,
            cursor=cursor,
        ).json()
        assert body["errcode"] == 0, body
        result = body["result"]
        seen += result["list"]
        pages += 1
        if "next_cursor" not in result:
            assert len(result["list"]) <= 20
            break
        assert len(result["list"]) == 20
        cursor = result["next_cursor"]
    assert len(seen) == len(set(seen)) == len(expected)
    assert set(seen) == expected
    assert pages == -(-len(expected) // 20)
    created = {i["process_instance_id"]: ms(i["create_time"]) for i in dingtalk_instances(sandbox_dataset)}
    assert [created[i] for i in seen] == sorted(created[i] for i in seen), "a stable, creation-time order"


@pytest.mark.parametrize(
    "body",
    [
        {"process_code": "PROC-OAFIN-EXPENSE", "start_time": 0, "size": 21},
        {"process_code": "PROC-UNKNOWN", "start_time": 0},
        {"process_code": "PROC-OAFIN-EXPENSE"},
        {"process_code": "PROC-OAFIN-EXPENSE", "start_time": 0, "cursor": -1},
    ],
    ids=["size-over-20", "unknown-process", "no-start-time", "negative-cursor"],
)
def test_listids_refuses_bad_parameters(http, sandbox_fresh, body) -> None:
    reply = listids(http, sandbox_fresh, token(http, sandbox_fresh), **body)
    assert reply.status_code == 200
    assert reply.json()["errcode"] != 0
    assert "result" not in reply.json()


def test_get_serves_the_instance_without_its_id(http, sandbox_fresh, sandbox_dataset: Dataset) -> None:
    tok = token(http, sandbox_fresh)
    instance = dingtalk_instances(sandbox_dataset)[17]
    body = get(http, sandbox_fresh, tok, instance["process_instance_id"]).json()
    assert (body["errcode"], body["errmsg"]) == (0, "ok")
    expected = {k: v for k, v in instance.items() if k != "process_instance_id"}
    assert body["process_instance"] == expected


def test_get_of_an_unknown_instance_is_an_error(http, sandbox_fresh) -> None:
    body = get(http, sandbox_fresh, token(http, sandbox_fresh), "no-such-instance").json()
    assert body["errcode"] != 0
    assert "process_instance" not in body


def test_a_bad_token_and_an_expired_one(http, sandbox_fresh, sandbox_dataset: Dataset) -> None:
    instance_id = dingtalk_instances(sandbox_dataset)[0]["process_instance_id"]
    # real topapi answers a dead token with errcode 88 and the reason in sub_code (issue #10 item 1)
    dead = {"errcode": 88, "sub_code": "40014"}
    assert get(http, sandbox_fresh, "not-a-token", instance_id).json().items() >= dead.items()
    sandbox_fresh.set_token_lifetime(0.2, "dingtalk")
    sandbox_fresh.dingtalk.tokens.expire()  # so gettoken issues a new, short-lived token
    short = token(http, sandbox_fresh)
    assert get(http, sandbox_fresh, short, instance_id).json()["errcode"] == 0
    time.sleep(0.3)
    assert get(http, sandbox_fresh, short, instance_id).json().items() >= dead.items()
    fresh = token(http, sandbox_fresh)
    assert fresh != short
    assert get(http, sandbox_fresh, fresh, instance_id).json()["errcode"] == 0


def test_a_few_thousand_gets_in_a_row_all_answer(http, sandbox_fresh, sandbox_dataset: Dataset) -> None:
    """(How fast: ``python -m bench.suite_timings``.)"""
    tok = token(http, sandbox_fresh)
    ids = [i["process_instance_id"] for i in dingtalk_instances(sandbox_dataset)]
    for instance_id in (ids * 7)[:2000]:
        answer = get(http, sandbox_fresh, tok, instance_id)
        assert answer.status_code == 200 and answer.json()["errcode"] == 0


# -- Kingdee -------------------------------------------------------------------------------------


def login(http: httpx.Client, sb: SandboxHandle, parameters: list[Any] | None = None) -> httpx.Response:
    return http.post(sb.kingdee_url + LOGIN, json={"parameters": parameters or GOOD_LOGIN})


def query(http: httpx.Client, sb: SandboxHandle, **data: Any) -> Any:
    reply = http.post(sb.kingdee_url + QUERY, json={"data": data})
    assert reply.status_code == 200
    return reply.json()


def error_of(body: Any) -> dict[str, Any]:
    """The ResponseStatus nested in a failed query's 2-D array (source-systems.md §7.3)."""
    assert isinstance(body, list) and isinstance(body[0], list) and isinstance(body[0][0], dict), body
    status = body[0][0]["Result"]["ResponseStatus"]
    assert (status["IsSuccess"], status["ErrorCode"]) == (False, 500)
    return status


def test_login_sets_the_session_cookie(http, sandbox_fresh) -> None:
    reply = login(http, sandbox_fresh)
    body = reply.json()
    assert body["LoginResultType"] == 1
    assert body["IsSuccessByAPI"] is True
    assert reply.cookies["kdservice-sessionid"] == body["KDSVCSessionId"]


def test_login_with_named_parameters_works_too(http, sandbox_fresh) -> None:
    acct, user, app_id, secret, lcid = GOOD_LOGIN
    body = {"acctID": acct, "username": user, "appId": app_id, "appSecret": secret, "lcid": lcid}
    assert http.post(sandbox_fresh.kingdee_url + LOGIN, json=body).json()["LoginResultType"] == 1


def test_login_refuses_wrong_credentials(http, sandbox_fresh) -> None:
    reply = login(http, sandbox_fresh, [*GOOD_LOGIN[:3], "wrong", 2052])
    body = reply.json()
    assert body["LoginResultType"] == 0
    assert body["Message"]
    assert "kdservice-sessionid" not in reply.cookies


def test_query_without_a_session_is_refused_as_a_lost_session(sandbox_fresh) -> None:
    with httpx.Client() as anonymous:
        status = error_of(query(anonymous, sandbox_fresh, FormId="AP_PAYBILL", FieldKeys="FID"))
    assert "会话信息已丢失" in status["Errors"][0]["Message"]
    assert status["MsgCode"] == 1


def test_query_pages_with_startrow_until_a_short_page(http, sandbox_fresh, sandbox_dataset: Dataset) -> None:
    login(http, sandbox_fresh)
    keys = "FBillNo,FID,FDATE,FREALPAYAMOUNTFOR_D"
    lo, hi = datetime(2026, 10, 1), datetime(2026, 11, 1)
    expected = [
        [r["FBillNo"], r["FID"], r["FDATE"], r["FREALPAYAMOUNTFOR_D"]]
        for r in kingdee_rows(sandbox_dataset)["AP_PAYBILL"]
        if lo <= datetime.fromisoformat(r["FDATE"]) < hi
    ]
    rows, start, limit = [], 0, 50
    while True:
        page = query(
            http,
            sandbox_fresh,
            FormId="AP_PAYBILL",
            FieldKeys=keys,
            FilterString=PERIOD_FILTER,
            OrderString="FID ASC",
            StartRow=start,
            Limit=limit,
        )
        rows += page
        if len(page) < limit:
            break
        start += limit
    assert rows == expected
    assert len(expected) > limit * 3


def test_field_keys_are_matched_without_case_and_returned_in_the_asked_order(
    http, sandbox_fresh, sandbox_dataset
) -> None:
    login(http, sandbox_fresh)
    rows = query(http, sandbox_fresh, FormId="ER_ExpReimbursement", FieldKeys="fbillno, FID", Limit=3)
    first = kingdee_rows(sandbox_dataset)["ER_ExpReimbursement"][:3]
    assert rows == [[r["FBillNo"], r["FID"]] for r in first]


def test_filters_with_or_parentheses_and_descending_order(http, sandbox_fresh, sandbox_dataset) -> None:
    login(http, sandbox_fresh)
    bills = kingdee_rows(sandbox_dataset)["ER_ExpReimbursement"]
    a, b = bills[5]["FBillNo"], bills[9]["FBillNo"]
    rows = query(
        http,
        sandbox_fresh,
        FormId="ER_ExpReimbursement",
        FieldKeys="FBillNo",
        FilterString=f"(FBillNo = '{a}' OR FBillNo = '{b}') AND FDocumentStatus = 'C'",
        OrderString="FID DESC",
    )
    assert rows == [[b], [a]]
    numeric = query(
        http, sandbox_fresh, FormId="ER_ExpReimbursement", FieldKeys="FID", FilterString="FID <= 100003"
    )
    assert numeric == [[100001], [100002], [100003]]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"FormId": "ER_ExpenseReimbursement", "FieldKeys": "FID"}, "业务对象不存在"),
        ({"FormId": "AP_PAYBILL", "FieldKeys": "FID,FNoSuchField"}, "FNoSuchField"),
        ({"FormId": "AP_PAYBILL", "FieldKeys": "FID", "FilterString": "FNoSuchField = 'x'"}, "FNoSuchField"),
        ({"FormId": "AP_PAYBILL", "FieldKeys": "FID", "FilterString": "FDATE >>= '2026'"}, "过滤条件"),
        ({"FormId": "AP_PAYBILL", "FieldKeys": "FID", "Limit": 2001}, "Limit"),
        ({"FormId": "AP_PAYBILL", "FieldKeys": ["FID"]}, "FieldKeys"),
    ],
    ids=[
        "bad-form",
        "bad-field",
        "bad-filter-field",
        "bad-filter",
        "limit-over-2000",
        "field-keys-not-a-string",
    ],
)
def test_query_errors_come_nested_in_the_array(http, sandbox_fresh, data, message) -> None:
    login(http, sandbox_fresh)
    status = error_of(query(http, sandbox_fresh, **data))
    assert message in status["Errors"][0]["Message"]


def test_an_expired_session_is_refused(http, sandbox_fresh) -> None:
    sandbox_fresh.set_token_lifetime(0.2, "kingdee")
    login(http, sandbox_fresh)
    assert query(http, sandbox_fresh, FormId="AP_PAYBILL", FieldKeys="FID", Limit=1) == [[200001]]
    time.sleep(0.3)
    assert (
        "会话信息已丢失"
        in error_of(query(http, sandbox_fresh, FormId="AP_PAYBILL", FieldKeys="FID"))["Errors"][0]["Message"]
    )


# -- faults and the call log ---------------------------------------------------------------------


def dingtalk_call(http: httpx.Client, sb: SandboxHandle, tok: str, dataset: Dataset) -> httpx.Response:
    return get(http, sb, tok, dingtalk_instances(dataset)[0]["process_instance_id"])


def kingdee_call(http: httpx.Client, sb: SandboxHandle) -> httpx.Response:
    return http.post(
        sb.kingdee_url + QUERY, json={"data": {"FormId": "AP_PAYBILL", "FieldKeys": "FID", "Limit": 2}}
    )


@pytest.mark.parametrize("system", ["dingtalk", "kingdee"])
@pytest.mark.parametrize(("kind", "status"), [("http_429", 429), ("http_500", 500), ("http_503", 503)])
def test_http_faults_answer_once_with_their_status(
    http, sandbox_fresh, sandbox_dataset, system, kind, status
) -> None:
    tok = token(http, sandbox_fresh)
    login(http, sandbox_fresh)
    sandbox_fresh.calls.clear()
    sandbox_fresh.faults.inject(system, kind)

    def call() -> httpx.Response:
        return (
            dingtalk_call(http, sandbox_fresh, tok, sandbox_dataset)
            if system == "dingtalk"
            else kingdee_call(http, sandbox_fresh)
        )

    failed = call()
    assert failed.status_code == status
    if kind == "http_429":
        assert failed.headers["Retry-After"] == "0"
    assert call().status_code == 200
    log = sandbox_fresh.calls.snapshot(system)
    assert [(c.status, c.fault) for c in log] == [(status, kind), (200, None)]


def test_rate_limit_code_is_errcode_90018_with_http_200(http, sandbox_fresh, sandbox_dataset) -> None:
    tok = token(http, sandbox_fresh)
    sandbox_fresh.faults.inject("dingtalk", "rate_limit_code", path_contains="processinstance/get")
    limited = dingtalk_call(http, sandbox_fresh, tok, sandbox_dataset)
    assert limited.status_code == 200
    assert limited.json()["errcode"] == 90018
    assert dingtalk_call(http, sandbox_fresh, tok, sandbox_dataset).json()["errcode"] == 0


def test_kingdee_has_no_rate_limit_code_to_inject(sandbox_fresh) -> None:
    with pytest.raises(ValueError, match="rate-limit"):
        sandbox_fresh.faults.inject("kingdee", "rate_limit_code")


@pytest.mark.parametrize("system", ["dingtalk", "kingdee"])
def test_malformed_json_is_a_truncated_body(http, sandbox_fresh, sandbox_dataset, system) -> None:
    tok = token(http, sandbox_fresh)
    login(http, sandbox_fresh)
    sandbox_fresh.faults.inject(system, "malformed_json")

    def call() -> httpx.Response:
        return (
            dingtalk_call(http, sandbox_fresh, tok, sandbox_dataset)
            if system == "dingtalk"
            else kingdee_call(http, sandbox_fresh)
        )

    broken, whole = call(), call()
    assert broken.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.content)
    assert whole.content.startswith(broken.content)
    assert len(broken.content) < len(whole.content)


def test_token_expired_fault_expires_the_dingtalk_token(http, sandbox_fresh, sandbox_dataset) -> None:
    tok = token(http, sandbox_fresh)
    sandbox_fresh.faults.inject("dingtalk", "token_expired")
    token(http, sandbox_fresh)  # gettoken itself is never hit by this fault: it still gives the old token
    assert dingtalk_call(http, sandbox_fresh, tok, sandbox_dataset).json()["sub_code"] == "40014"
    fresh = token(http, sandbox_fresh)
    assert fresh != tok
    assert dingtalk_call(http, sandbox_fresh, fresh, sandbox_dataset).json()["errcode"] == 0


def test_token_expired_fault_ends_the_kingdee_session(http, sandbox_fresh) -> None:
    login(http, sandbox_fresh)
    sandbox_fresh.faults.inject("kingdee", "token_expired", path_contains="ExecuteBillQuery")
    assert "会话信息已丢失" in error_of(kingdee_call(http, sandbox_fresh).json())["Errors"][0]["Message"]
    assert "会话信息已丢失" in error_of(kingdee_call(http, sandbox_fresh).json())["Errors"][0]["Message"]
    login(http, sandbox_fresh)
    assert kingdee_call(http, sandbox_fresh).json() == [[200001], [200002]]


def test_faults_follow_path_and_times(http, sandbox_fresh, sandbox_dataset) -> None:
    tok = token(http, sandbox_fresh)
    sandbox_fresh.faults.inject("dingtalk", "http_503", path_contains="listids", times=2)
    assert (
        dingtalk_call(http, sandbox_fresh, tok, sandbox_dataset).status_code == 200
    )  # other path: untouched
    statuses = [
        listids(http, sandbox_fresh, tok, process_code="PROC-OAFIN-EXPENSE", start_time=0).status_code
        for _ in range(3)
    ]
    assert statuses == [503, 503, 200]
    assert sandbox_fresh.faults.pending() == []
    assert sandbox_fresh.calls.count("listids") == 3


def test_running_sandbox_on_chosen_ports_serves_there_and_frees_them(sandbox_dataset) -> None:
    """(How fast it starts: ``python -m bench.suite_timings``.)"""
    ports = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    with running_sandbox(sandbox_dataset, dingtalk_port=ports[0], kingdee_port=ports[1]) as sb:
        assert sb.dingtalk_url == f"http://127.0.0.1:{ports[0]}"
        assert sb.kingdee_url == f"http://127.0.0.1:{ports[1]}/k3cloud/"
        assert httpx.get(sb.dingtalk_url + "/gettoken").json()["errcode"] != 0
    for port in ports:
        with socket.socket() as again:
            again.bind(("127.0.0.1", port))
