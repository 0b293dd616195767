"""DingTalk's own v1.0 SDK reads the dingtalk-v1 twin, and agrees with oafin's connector (issue #12).

The official Python SDK (``alibabacloud-dingtalk`` 2.2.65, a test-only dev dependency) is pointed at
the twin over real HTTP as real-clients.md §1.1 says (``Config(protocol="http", region_id="central",
endpoint="127.0.0.1:PORT")``). It fetches a token with ``oauth2_1_0``, lists every instance id of a
small seed with ``list_process_instance_ids`` (paging on ``nextToken``) and gets each with
``get_process_instance``; every record must equal, field by field, what oafin's connector lands for
it, and the SDK's models must hold every key the twin serves (a key the SDK does not model would be
dropped by it: not the real shape). Errors arrive as the SDK's ``TeaException`` with the
``{code, message}`` the twin sent, and a comment the SDK adds is what the connector then finds.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from alibabacloud_dingtalk.oauth2_1_0 import models as oauth_models
from alibabacloud_dingtalk.oauth2_1_0.client import Client as OAuth2
from alibabacloud_dingtalk.workflow_1_0 import models as wf
from alibabacloud_dingtalk.workflow_1_0.client import Client as Workflow
from alibabacloud_tea_openapi.models import Config
from alibabacloud_tea_util.models import RuntimeOptions
from Tea.exceptions import TeaException

from oafin.connectors.limits import RetryPolicy, no_limit
from oafin.sandbox import credentials
from oafin.sandbox.dataset import Dataset
from oafin.sandbox.generator import generate
from oafin.sandbox_server import SandboxHandle, running_sandbox
from oafin.systems.dingtalk_v1.client import DingTalkV1Client
from oafin.systems.dingtalk_v1.twin import TWIN as V1_TWIN

SEED = 23
N_CLAIMS = 50  # the generator's smallest month that still holds every kind of finding
SDK_PAGE = 7  # a small page: the SDK pages several times
SHANGHAI = ZoneInfo("Asia/Shanghai")
NO_RETRY = RuntimeOptions(autoretry=False, max_attempts=1)


@pytest.fixture(scope="module")
def month() -> Dataset:
    return generate(seed=SEED, n_claims=N_CLAIMS)


@pytest.fixture(scope="module")
def v1(month: Dataset) -> Iterator[SandboxHandle]:
    with running_sandbox(month, twins=[V1_TWIN]) as handle:
        yield handle


@pytest.fixture
def sandbox(v1: SandboxHandle) -> Iterator[SandboxHandle]:
    v1.reset()
    yield v1
    v1.reset()


def sdk_config(url: str) -> Config:
    # real-clients.md §1.1: endpoint = host[:port]; protocol http; the SDK sends host: endpoint
    return Config(protocol="http", region_id="central", endpoint=urlsplit(url).netloc)


def sdk_token(config: Config) -> str:
    request = oauth_models.GetAccessTokenRequest(
        app_key=credentials.DINGTALK_V1_APP_KEY, app_secret=credentials.DINGTALK_V1_APP_SECRET
    )
    body = OAuth2(config).get_access_token(request).body
    assert body.expire_in == 7200
    return str(body.access_token)


def window(month: Dataset) -> tuple[datetime, datetime]:
    """Wider than the period: every claim of the seed, whenever it was created."""
    first = min(c.created for c in month.claims) - timedelta(days=1)
    last = max(c.created for c in month.claims) + timedelta(days=1)
    return first.astimezone(SHANGHAI), last.astimezone(SHANGHAI)


def sdk_ids(client: Workflow, token: str, process_code: str, start: datetime, end: datetime) -> list[str]:
    """Every id through ``list_process_instance_ids``, paging as the SDK's models say (§1.2)."""
    headers = wf.ListProcessInstanceIdsHeaders(x_acs_dingtalk_access_token=token)
    ids: list[str] = []
    next_token = 0
    while True:
        request = wf.ListProcessInstanceIdsRequest(
            process_code=process_code,
            start_time=int(start.timestamp() * 1000),
            end_time=int(end.timestamp() * 1000) - 1,
            next_token=next_token,
            max_results=SDK_PAGE,
        )
        result = client.list_process_instance_ids_with_options(request, headers, NO_RETRY).body.result
        ids += list(result.list or [])
        if not result.next_token:
            return ids
        assert isinstance(result.next_token, str)  # a string in the answer, an int in the request
        next_token = int(result.next_token)


def sdk_instance(client: Workflow, token: str, instance_id: str) -> Any:
    headers = wf.GetProcessInstanceHeaders(x_acs_dingtalk_access_token=token)
    request = wf.GetProcessInstanceRequest(process_instance_id=instance_id)
    return client.get_process_instance_with_options(request, headers, NO_RETRY).body


def connector(url: str) -> DingTalkV1Client:
    return DingTalkV1Client(
        url,
        credentials.DINGTALK_V1_APP_KEY,
        credentials.DINGTALK_V1_APP_SECRET,
        page_size=SDK_PAGE,
        limiter=no_limit,
        retry=RetryPolicy(max_attempts=1),
        workers=1,
    )


def test_the_sdk_reads_every_instance_as_the_connector_does(sandbox: SandboxHandle, month: Dataset) -> None:
    url = sandbox.url("dingtalk-v1")
    config = sdk_config(url)
    token = sdk_token(config)
    client = Workflow(config)
    start, end = window(month)
    ids = sdk_ids(client, token, month.process_code, start, end)
    assert sorted(ids) == sorted(c.source_id for c in month.claims)
    assert sandbox.calls.count("/instanceIds/query") >= len(ids) // SDK_PAGE  # several pages

    with connector(url) as oafin:
        landed = {r.source_id: r.payload for r in oafin.iter_instances(month.process_code, start, end)}
    assert list(landed) == ids  # the same ids in the same order

    compared = 0
    for instance_id in ids:
        body = sdk_instance(client, token, instance_id)
        assert body.success == "true"  # a string in the SDK's model (§1.3)
        through_sdk = body.result.to_map()
        payload = landed[instance_id]
        # every key the twin serves is one the SDK models (none dropped), and each value equal
        assert set(payload) == set(through_sdk), set(payload) ^ set(through_sdk)
        for key, value in payload.items():
            assert through_sdk[key] == value, (instance_id, key)
            compared += 1
        forms = body.result.form_component_values
        assert [f.component_type for f in forms][-2:] == ["TableField", "DDAttachment"]
        assert all(isinstance(f.value, str) for f in forms)  # JSON strings, decoded by oafin
    assert compared >= 15 * len(ids)


def test_the_sdk_gets_errors_in_the_v1_envelope(sandbox: SandboxHandle, month: Dataset) -> None:
    config = sdk_config(sandbox.url("dingtalk-v1"))
    token = sdk_token(config)
    client = Workflow(config)
    with pytest.raises(TeaException) as missing:
        sdk_instance(client, token, "no-such-instance")
    # the SDK formats the message: "code: 400, <message> request id: <requestid>"
    assert missing.value.code == "InvalidProcessInstanceId"
    assert "code: 400, 流程实例不存在 request id: " in missing.value.message

    sandbox.faults.inject("dingtalk-v1", "rate_limit_code", path_contains="/processInstances")
    with pytest.raises(TeaException) as throttled:
        sdk_instance(client, token, month.claims[0].source_id)
    assert throttled.value.code == "Forbidden.AccessDenied.QpsLimitForApi"
    assert throttled.value.data["statusCode"] == 403

    with pytest.raises(TeaException) as dead:
        sdk_instance(client, "not-a-token", month.claims[0].source_id)
    assert dead.value.code == "InvalidAuthentication" and "不合法的access_token" in dead.value.message

    bad = oauth_models.GetAccessTokenRequest(app_key=credentials.DINGTALK_V1_APP_KEY, app_secret="wrong")
    with pytest.raises(TeaException) as refused:
        OAuth2(config).get_access_token(bad)
    assert refused.value.code == "invalidClientIdOrSecret"


def test_a_comment_the_sdk_adds_is_what_the_connector_finds(sandbox: SandboxHandle, month: Dataset) -> None:
    url = sandbox.url("dingtalk-v1")
    config = sdk_config(url)
    token = sdk_token(config)
    instance_id = month.claims[1].source_id
    request = wf.AddProcessInstanceCommentRequest(
        process_instance_id=instance_id, text="财务已付款 [oafin:sdk-test]", comment_user_id="0123456789"
    )
    headers = wf.AddProcessInstanceCommentHeaders(x_acs_dingtalk_access_token=token)
    Workflow(config).add_process_instance_comment_with_options(request, headers, NO_RETRY)
    with connector(url) as oafin:
        found = oafin.find_comment(instance_id, "[oafin:sdk-test]")
        again = oafin.add_comment(instance_id, "second [oafin:connector]", "0123456789")
    assert found is not None and found["userId"] == "0123456789" and found["type"] == "ADD_REMARK"
    assert again["success"] is True
    # the connector's own comment is the same request as the SDK's: the twin stored both alike
    bodies = [w["body"] for w in sandbox.state("dingtalk-v1").writes]
    assert [sorted(b) for b in bodies] == [["commentUserId", "processInstanceId", "text"]] * 2


def test_the_correction_instance_oafin_creates_is_the_one_the_sdk_creates(sandbox: SandboxHandle) -> None:
    """issue #17: the SDK's ``start_process_instance`` (real-clients.md §4.1) built from oafin's
    body sends that body unchanged (the SDK's model holds every field oafin sends); the twin
    takes it and answers ``instanceId``; oafin reads the SDK-made instance's decision."""
    from oafin.systems.base import ApprovalRequest, ApprovalRow
    from oafin.systems.dingtalk_v1.approvals import DingTalkV1Approvals, create_body
    from oafin.systems.dingtalk_v1.twin_approvals import CORRECTIONS_PROCESS_CODE, CREATE_CALL

    people = sorted(sandbox.dataset.people, key=lambda p: p.person_id)
    originator, approver = people[0].userid, people[1].userid
    row = ApprovalRow(
        "[oafin:0123456789abcdef]",
        "oa_status_comment",
        "BX1",
        "DUPLICATE_PAYMENT",
        12345,
        "dingtalk-v1",
        "t",
        "p",
    )
    request = ApprovalRequest(
        "c" * 32, CORRECTIONS_PROCESS_CODE, originator, "t", (row,), "https://r/x.html", (approver,)
    )
    ours = create_body(request)
    config = sdk_config(sandbox.url("dingtalk-v1"))
    token = sdk_token(config)
    sdk_request = wf.StartProcessInstanceRequest().from_map(ours)
    # nothing oafin sends is outside the SDK's model; the SDK adds only empty lists (details, ...)
    assert _without_empty_lists(sdk_request.to_map()) == ours
    headers = wf.StartProcessInstanceHeaders(x_acs_dingtalk_access_token=token)
    answer = Workflow(config).start_process_instance_with_options(sdk_request, headers, NO_RETRY).body
    desk = sandbox.state("dingtalk-v1").desk
    [sent] = [c["body"] for c in desk.calls if c["call"] == CREATE_CALL]
    assert _without_empty_lists(sent) == ours
    desk.decide(answer.instance_id, "approve")
    with connector(sandbox.url("dingtalk-v1")) as client:
        state = DingTalkV1Approvals().read(client, answer.instance_id)
    assert state.status == "approved" and [(r.user_id, r.decision, r.human) for r in state.records] == [
        (approver, "agree", True)
    ]
    assert sdk_instance(Workflow(config), token, answer.instance_id).result.status == "COMPLETED"


def _without_empty_lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_empty_lists(v) for k, v in value.items() if v != []}
    if isinstance(value, list):
        return [_without_empty_lists(v) for v in value]
    return value
