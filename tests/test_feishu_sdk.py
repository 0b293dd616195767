"""Feishu's own SDK reads the Feishu twin, and agrees with oafin's connector (issue #12).

The official Python SDK (``lark-oapi`` 1.7.5, a test-only dev dependency) is pointed at the twin
with ``.domain(url)`` (real-clients.md §1.4). It fetches its tenant token itself
(``POST /open-apis/auth/v3/tenant_access_token/internal``), lists every instance of a small seed's
approval code page by page (``instance.list``), gets each one (``instance.get``), and the result
must equal, field by field, what oafin's ``FeishuClient`` reads; the ``form`` string the SDK hands
back must map to the same standard record. Errors reach the SDK in the ``{code, msg}`` envelope.
A twin the SDK cannot read is not Feishu's shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import lark_oapi as lark
import pytest
from lark_oapi.api.approval.v4 import (
    CommentRequest,
    CreateInstanceCommentRequest,
    GetInstanceRequest,
    ListInstanceRequest,
)
from lark_oapi.core.token.manager import TokenManager

from mappings.apply import map_records
from mappings.code_tables import load_code_tables
from mappings.loader import default_mapping_path, load_mapping
from oafin.connectors.limits import RetryPolicy, no_limit
from oafin.records import RawRecord
from oafin.sandbox import credentials
from oafin.sandbox.generator import generate
from oafin.sandbox_server import SandboxHandle, running_sandbox
from oafin.systems.feishu.client import FeishuClient, decode_form
from oafin.systems.feishu.twin import TWIN as FEISHU_TWIN
from oafin.systems.feishu.twin_render import APPROVAL_CODE

SEED = 23
N_CLAIMS = 50  # the generator's smallest month that still holds every kind of finding
SDK_PAGE = 7  # a small page: the SDK pages several times
CONTEXT = {"company_code": "C01"}
FAST = RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0)


@pytest.fixture(scope="module")
def feishu() -> Iterator[SandboxHandle]:
    with running_sandbox(generate(seed=SEED, n_claims=N_CLAIMS), twins=[FEISHU_TWIN]) as handle:
        yield handle


@pytest.fixture
def sdk(feishu: SandboxHandle) -> Iterator[lark.Client]:
    """The SDK on the twin. Its token cache is process-wide, keyed by app_id (real-clients.md
    §1.4): emptied so no token of another twin or test is reused."""
    feishu.reset()
    TokenManager.cache.cache.pop(f"self_tenant_token:{credentials.FEISHU_APP_ID}", None)
    client = (
        lark.Client.builder()
        .app_id(credentials.FEISHU_APP_ID)
        .app_secret(credentials.FEISHU_APP_SECRET)
        .domain(feishu.url("feishu"))
        .log_level(lark.LogLevel.WARNING)
        .build()
    )
    yield client
    TokenManager.cache.cache.pop(f"self_tenant_token:{credentials.FEISHU_APP_ID}", None)
    feishu.reset()


def window(handle: SandboxHandle) -> tuple[Any, Any]:
    created = [c.created for c in handle.dataset.claims]
    return min(created), max(created) + timedelta(seconds=1)


def ms(moment: Any) -> str:
    return str(int(moment.timestamp()) * 1000)


def sdk_codes(sdk: lark.Client, start: Any, end: Any) -> tuple[list[str], int]:
    """Every instance code through ``instance.list``, and how many pages it took."""
    codes: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        builder = (
            ListInstanceRequest.builder()
            .approval_code(APPROVAL_CODE)
            .start_time(ms(start))
            .end_time(str(int(ms(end)) - 1))
            .page_size(SDK_PAGE)
        )
        if token:
            builder = builder.page_token(token)
        response = sdk.approval.v4.instance.list(builder.build())
        assert response.success(), (response.code, response.msg)
        pages += 1
        codes += response.data.instance_code_list or []
        if not response.data.has_more:
            assert response.data.page_token == "", "the last page's token is empty (real-clients.md §2.2)"
            return codes, pages
        token = response.data.page_token


def sdk_instance(sdk: lark.Client, code: str) -> dict[str, Any]:
    response = sdk.approval.v4.instance.get(GetInstanceRequest.builder().instance_id(code).build())
    assert response.success(), (code, response.code, response.msg)
    return json.loads(lark.JSON.marshal(response.data), parse_float=Decimal)


def test_sdk_lists_and_gets_every_instance_as_the_connector_does(
    feishu: SandboxHandle, sdk: lark.Client
) -> None:
    start, end = window(feishu)
    codes, pages = sdk_codes(sdk, start, end)
    assert pages > 1 and len(codes) == len(feishu.dataset.claims)
    with FeishuClient(
        feishu.url("feishu"),
        credentials.FEISHU_APP_ID,
        credentials.FEISHU_APP_SECRET,
        page_size=SDK_PAGE,
        retry=FAST,
        limiter=no_limit,
        workers=1,
    ) as fs:
        ours = list(fs.iter_instances(APPROVAL_CODE, start, end))
    assert [r.source_id for r in ours] == codes, "the same instances in the same order"
    theirs = [sdk_instance(sdk, code) for code in codes]
    fields = 0
    for raw, sdk_data in zip(ours, theirs, strict=True):
        assert set(sdk_data) == set(raw.payload), raw.source_id
        for key, value in sdk_data.items():
            assert raw.payload[key] == value, (raw.source_id, key)
            fields += 1
        # every task, AUTO_PASS ones without a user included, field by field
        for ours_task, sdk_task in zip(raw.payload["task_list"], sdk_data["task_list"], strict=True):
            assert ours_task == sdk_task
        assert any(t["type"] == "AUTO_PASS" and "user_id" not in t for t in sdk_data["task_list"])
        # the form string the SDK hands back decodes to the same widgets, numbers exact
        assert decode_form(sdk_data["form"]) == decode_form(raw.payload["form"])
    assert fields >= 15 * len(codes)
    mapping, tables = load_mapping(default_mapping_path("feishu")), load_code_tables()
    through_sdk = map_records(
        mapping, [RawRecord("feishu", APPROVAL_CODE, d["instance_code"], d) for d in theirs], tables, CONTEXT
    )
    through_oafin = map_records(mapping, ours, tables, CONTEXT)
    assert [r.values for r in through_sdk] == [r.values for r in through_oafin]
    assert [r.children for r in through_sdk] == [r.children for r in through_oafin]
    assert sum(1 for r in through_oafin if not r.issues) > 0.8 * len(codes)


def test_sdk_keeps_times_as_the_ms_strings_feishu_sends(feishu: SandboxHandle, sdk: lark.Client) -> None:
    """The SDK's model types ``start_time`` as int but does not coerce (real-clients.md §1.4)."""
    claim = feishu.dataset.claims[0]
    response = sdk.approval.v4.instance.get(GetInstanceRequest.builder().instance_id(claim.source_id).build())
    assert response.success()
    assert response.data.start_time == str(int(claim.created.timestamp()) * 1000)
    assert isinstance(response.data.form, str)
    assert response.data.task_list[0].type == "AUTO_PASS" and response.data.task_list[0].user_id is None


def test_sdk_sees_errors_in_the_code_msg_envelope(feishu: SandboxHandle, sdk: lark.Client) -> None:
    start, end = window(feishu)
    unknown = sdk.approval.v4.instance.list(
        ListInstanceRequest.builder()
        .approval_code("NO-SUCH-APPROVAL")
        .start_time(ms(start))
        .end_time(ms(end))
        .page_size(10)
        .build()
    )
    assert not unknown.success() and unknown.code == 1390002
    missing = sdk.approval.v4.instance.get(
        GetInstanceRequest.builder().instance_id("no-such-instance").build()
    )
    assert not missing.success() and missing.code == 1390003
    # a token the twin has expired: the SDK does not refresh, it reports 99991663 (§1.4)
    assert sdk.approval.v4.instance.get(
        GetInstanceRequest.builder().instance_id(feishu.dataset.claims[0].source_id).build()
    ).success()
    feishu.state("feishu").tokens.expire()
    expired = sdk.approval.v4.instance.get(
        GetInstanceRequest.builder().instance_id(feishu.dataset.claims[0].source_id).build()
    )
    assert not expired.success() and expired.code == 99991663


def test_a_comment_the_connector_writes_is_one_the_sdk_can_write_too(
    feishu: SandboxHandle, sdk: lark.Client
) -> None:
    """The comment call as lark-oapi sends it (``instance_comment.create``) is accepted by the twin,
    and shows in the instance the SDK gets, like the connector's own comment."""
    claim = feishu.dataset.claims[1]
    user = claim.originator.identities["feishu"]
    content = json.dumps({"text": "sdk comment oafin:sdk-1", "files": []}, ensure_ascii=False)
    request = (
        CreateInstanceCommentRequest.builder()
        .instance_id(claim.source_id)
        .user_id_type("open_id")
        .user_id(user)
        .request_body(CommentRequest.builder().content(content).build())
        .build()
    )
    response = sdk.approval.v4.instance_comment.create(request)
    assert response.success(), (response.code, response.msg)
    with FeishuClient(
        feishu.url("feishu"),
        credentials.FEISHU_APP_ID,
        credentials.FEISHU_APP_SECRET,
        retry=FAST,
        limiter=no_limit,
    ) as fs:
        fs.add_comment(claim.source_id, "connector comment oafin:ours-1", user)
        assert fs.find_comment(claim.source_id, "oafin:sdk-1") is not None
    comments = sdk_instance(sdk, claim.source_id)["comment_list"]
    assert [c["comment"] for c in comments] == ["sdk comment oafin:sdk-1", "connector comment oafin:ours-1"]
    sent = [w["body"] for w in feishu.received_writes("feishu")]
    assert [set(body) for body in sent] == [{"content"}, {"content"}]


def test_the_correction_instance_oafin_creates_is_the_one_the_sdk_creates(
    feishu: SandboxHandle, sdk: lark.Client
) -> None:
    """issue #17: lark-oapi's ``instance.create`` (real-clients.md §4.3) sends, field by field, the
    body oafin's connector sends for the same batch; the twin takes it, refuses its ``uuid`` a
    second time (60012), and what oafin reads back from the SDK-made instance is its decision."""
    from lark_oapi.api.approval.v4 import CreateInstanceRequest, InstanceCreate, NodeApprover

    from oafin.systems.base import ApprovalRequest, ApprovalRow
    from oafin.systems.feishu.approvals import FeishuApprovals, create_body, records_of, status_of
    from oafin.systems.feishu.twin_approvals import CORRECTIONS_APPROVAL_CODE

    people = sorted(feishu.dataset.people, key=lambda p: p.person_id)
    originator, approver = people[0].identities["feishu"], people[1].identities["feishu"]
    row = ApprovalRow(
        "[oafin:0123456789abcdef]",
        "oa_status_comment",
        "BX1",
        "DUPLICATE_PAYMENT",
        12345,
        "dingtalk",
        "t",
        "p",
    )
    request = ApprovalRequest(
        "a" * 32, CORRECTIONS_APPROVAL_CODE, originator, "t", (row,), "https://r/x.html", (approver,)
    )
    ours = create_body(request, FeishuApprovals().approver_node)
    desk = feishu.state("feishu").desk
    body = (
        InstanceCreate.builder()
        .approval_code(CORRECTIONS_APPROVAL_CODE)
        .open_id(originator)
        .form(ours["form"])
        .node_approver_open_id_list([NodeApprover.builder().key("oafin_approve").value([approver]).build()])
        .uuid("a" * 32)
        .build()
    )
    response = sdk.approval.v4.instance.create(CreateInstanceRequest.builder().request_body(body).build())
    assert response.success(), (response.code, response.msg)
    code = response.data.instance_code
    [sent] = [c["body"] for c in desk.calls if c["call"] == "instances/create"]
    assert sent == ours
    again = sdk.approval.v4.instance.create(CreateInstanceRequest.builder().request_body(body).build())
    assert not again.success() and again.code == 60012
    desk.decide(code, "approve")
    instance = sdk_instance(sdk, code)
    assert status_of(instance) == "approved"
    assert [(r.user_id, r.decision, r.human) for r in records_of(instance)] == [(approver, "agree", True)]
    assert any(t["type"] == "AUTO_PASS" and not t.get("open_id") for t in instance["task_list"])
