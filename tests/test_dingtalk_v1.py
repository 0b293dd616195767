"""dingtalk-v1 (DingTalk's v1.0 API): the mapping language options it needed (``extends``,
``identity_system``), its default mapping, its error classification, the JSON-string form values
it decodes, and its twin's faults in v1.0 envelopes over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from mappings import MappingError, default_mapping_path, load_code_tables, load_mapping, map_record
from oafin.connectors import AuthError, RateLimitedError, SourceError, TokenExpiredError
from oafin.connectors.errors import ConnectorError
from oafin.connectors.http import Call
from oafin.records import RawRecord
from oafin.sandbox.dataset import Dataset
from oafin.sandbox.generator import generate
from oafin.sandbox_server import SandboxHandle, running_sandbox
from oafin.systems.dingtalk_v1.client import attachments, check_v1, decoded_json_value, table_rows
from oafin.systems.dingtalk_v1.twin import TOKEN_HEADER
from oafin.systems.dingtalk_v1.twin import TWIN as V1_TWIN
from oafin.systems.dingtalk_v1.twin_faults import GET_PATH, LIST_PATH, TOKEN_PATH

TABLES = load_code_tables()
CONTEXT = {"company_code": "C01"}
KIND = "PROC-OAFIN-EXPENSE"


# -- the mapping language: extends and identity_system ------------------------------------------

BASE = """\
system: acme
entity: finance_doc
fields:
  doc_type: {constant: voucher}
forms:
  BILL:
    title: a bill
    fields:
      doc_no: {path: FBillNo, parse: id}
      amount_fen: {path: FAmount, parse: money}
"""


def test_extends_merges_the_base_and_replaces_a_field_whole(tmp_path) -> None:
    (tmp_path / "acme.yaml").write_text(BASE, encoding="utf-8")
    child = tmp_path / "acme-v2.yaml"
    child.write_text(
        "extends: acme.yaml\nsystem: acme-v2\nforms:\n  BILL:\n    fields:\n      doc_no: {path: billNo}\n",
        encoding="utf-8",
    )
    mapping = load_mapping(child)
    assert (mapping.system, mapping.forms["BILL"].title) == ("acme-v2", "a bill")
    # doc_no replaced whole: the base's ``parse: id`` does not leak into the new spec
    assert mapping.fields_for("BILL")["doc_no"].path == "billNo"
    assert mapping.fields_for("BILL")["doc_no"].parse == ("text",)
    row = {"billNo": "X1", "FAmount": "1.50"}
    values = map_record(mapping, RawRecord("acme-v2", "BILL", "1", row), TABLES).values
    assert (values["doc_no"], values["amount_fen"], values["doc_type"]) == ("X1", 150, "voucher")
    assert load_mapping(tmp_path / "acme.yaml").system == "acme"  # the base itself is untouched


def test_extends_refuses_a_cycle_and_a_missing_base(tmp_path) -> None:
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n" + BASE, encoding="utf-8")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n" + BASE, encoding="utf-8")
    with pytest.raises(MappingError, match="cycle"):
        load_mapping(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("extends: nowhere.yaml\n" + BASE, encoding="utf-8")
    with pytest.raises(MappingError, match="nowhere.yaml: mapping file not found"):
        load_mapping(tmp_path / "c.yaml")


def test_identity_system_reads_another_systems_ids(tmp_path) -> None:
    person, userid = next(iter(TABLES.external_ids("dingtalk").items()))
    text = "system: acme\nentity: expense_claim\n{extra}forms:\n  F:\n    fields:\n      applicant_id: {{path: who, via: identity}}\n"
    own = tmp_path / "own.yaml"
    own.write_text(text.format(extra=""), encoding="utf-8")
    shared = tmp_path / "shared.yaml"
    shared.write_text(text.format(extra="identity_system: dingtalk\n"), encoding="utf-8")
    record = RawRecord("acme", "F", "1", {"who": userid})
    assert map_record(load_mapping(shared), record, TABLES).values["applicant_id"] == person
    [issue] = map_record(load_mapping(own), record, TABLES).issues
    assert issue.code == "UNMAPPED_CODE" and "acme id" in issue.message


# -- the default mapping on a hand-built v1.0 instance ------------------------------------------


def _instance(userids: list[str]) -> dict[str, Any]:
    rows = [
        {
            "rowValue": [
                {
                    "componentType": "TextField",
                    "label": "发票代码",
                    "value": "011002100111",
                    "key": "发票代码",
                },
                {"componentType": "TextField", "label": "发票号码", "value": "12345678", "key": "发票号码"},
                {
                    "componentType": "DDDateField",
                    "label": "开票日期",
                    "value": "2026-10-20",
                    "key": "开票日期",
                },
                {"componentType": "MoneyField", "label": "价税合计", "value": "1060.00", "key": "价税合计"},
            ],
            "rowNumber": "1",
        }
    ]
    return {
        "title": "费用报销",
        "createTime": "2026-10-31T16:05Z",  # 00:05 on 1 November in Shanghai
        "finishTime": "2026-11-02T01:52Z",
        "originatorUserId": userids[0],
        "status": "COMPLETED",
        "result": "agree",
        "businessId": "BX202611010001",
        "formComponentValues": [
            {"id": "d", "name": "所属部门", "value": "财务部", "componentType": "DepartmentField"},
            {"id": "m", "name": "报销金额", "value": "1,060.00", "componentType": "MoneyField"},
            {
                "id": "t",
                "name": "发票明细",
                "value": json.dumps(rows, ensure_ascii=False),
                "extValue": '{"statValue":[],"componentName":"TableField"}',
                "componentType": "TableField",
            },
            {
                "id": "a",
                "name": "附件",
                "value": '[{"spaceId":"1","fileName":"发票.pdf","fileSize":"100","fileType":"pdf","fileId":"9"}]',
                "componentType": "DDAttachment",
            },
        ],
        "operationRecords": [
            {
                "userId": userids[0],
                "date": "2026-10-31T16:05Z",
                "type": "START_PROCESS_INSTANCE",
                "result": "NONE",
            },
            {
                "userId": userids[1],
                "date": "2026-11-01T02:00Z",
                "type": "EXECUTE_TASK_NORMAL",
                "result": "AGREE",
            },
            {
                "userId": userids[2],
                "date": "2026-11-02T01:52Z",
                "type": "EXECUTE_TASK_NORMAL",
                "result": "AGREE",
            },
        ],
    }


def test_the_default_mapping_reads_v1_shapes_with_the_dingtalk_people() -> None:
    ids = TABLES.external_ids("dingtalk")
    people = list(ids)[:3]
    payload = {"result": _instance([ids[p] for p in people]), "success": "true"}
    mapping = load_mapping(default_mapping_path("dingtalk-v1"))
    record = map_record(mapping, RawRecord("dingtalk-v1", KIND, "inst-1", payload), TABLES, CONTEXT)
    v = record.values
    assert v["claim_id"] == "dingtalk-v1:inst-1"
    assert (v["claim_no"], v["applicant_id"], v["amount_fen"], v["status"]) == (
        "BX202611010001",
        people[0],
        106000,
        "approved",
    )
    assert v["submitted_at"] == datetime(2026, 10, 31, 16, 5, tzinfo=UTC)
    assert v["approved_at"] == datetime(2026, 11, 2, 1, 52, tzinfo=UTC)
    assert v["approver_ids"] == ",".join(people[1:])  # who agreed, in order
    [row] = record.children["claim_invoice"]
    assert (row["invoice_no"], row["total_fen"], row["claim_id"]) == (
        "12345678",
        106000,
        "dingtalk-v1:inst-1",
    )


def test_form_values_that_are_json_strings_are_decoded() -> None:
    instance = _instance(["u1", "u2", "u3"])
    [file] = attachments(instance)
    assert file == {
        "spaceId": "1",
        "fileName": "发票.pdf",
        "fileSize": "100",
        "fileType": "pdf",
        "fileId": "9",
        "field": "附件",
    }
    [row] = table_rows(instance, "发票明细")
    assert row["价税合计"] == "1060.00" and row["开票日期"] == "2026-10-20"
    with pytest.raises(ValueError, match="'附件' \\(DDAttachment\\): value is not JSON"):
        decoded_json_value({"name": "附件", "componentType": "DDAttachment", "value": "[{"})


# -- error classification -----------------------------------------------------------------------

CALL = Call("dingtalk-v1", "processes/instanceIds/query")


@pytest.mark.parametrize(
    ("status", "body", "error", "retryable"),
    [
        (
            403,
            {"code": "Forbidden.AccessDenied.QpsLimitForApi", "message": "触发了qps流控"},
            RateLimitedError,
            True,
        ),
        (
            403,
            {"code": "Forbidden.AccessDenied.ApiCountLimitForOrg", "message": "调用量超限"},
            RateLimitedError,
            False,
        ),
        (
            403,
            {"code": "Forbidden.AccessDenied.AccessTokenPermissionDenied", "message": "无权限"},
            AuthError,
            False,
        ),
        (400, {"code": "InvalidAuthentication", "message": "不合法的access_token"}, TokenExpiredError, True),
        (401, {"code": "", "message": "access_token已过期"}, TokenExpiredError, True),
        (400, {"code": "InvalidParameter", "message": "maxResults"}, SourceError, False),
    ],
)
def test_v1_errors_are_classified_with_their_code(
    status: int, body: dict[str, str], error: type[ConnectorError], retryable: bool
) -> None:
    response = httpx.Response(status, json={**body, "requestid": "r-1"})
    with pytest.raises(ConnectorError) as caught:
        check_v1(CALL, response.json(), response)
    assert type(caught.value) is error and caught.value.retryable is retryable
    message = str(caught.value)
    assert message.startswith("dingtalk-v1 processes/instanceIds/query: HTTP")
    assert (body["code"] or "(no code)") in message and "r-1" in message


# -- the twin over real HTTP ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def month() -> Dataset:
    return generate(seed=5, n_claims=60)


@pytest.fixture(scope="module")
def v1(month: Dataset) -> Iterator[SandboxHandle]:
    with running_sandbox(month, twins=[V1_TWIN]) as handle:
        yield handle


def _token(http: httpx.Client, url: str) -> str:
    creds = V1_TWIN.credentials
    reply = http.post(url + TOKEN_PATH, json={"appKey": creds["app_key"], "appSecret": creds["app_secret"]})
    assert reply.status_code == 200 and reply.json()["expireIn"] == 7200
    return str(reply.json()["accessToken"])


def test_the_twin_throttles_with_403_and_errs_in_the_v1_envelope(v1: SandboxHandle, month: Dataset) -> None:
    v1.reset()
    url = v1.url("dingtalk-v1")
    with httpx.Client() as http:
        token = _token(http, url)
        body = {"processCode": month.process_code, "startTime": 0, "nextToken": 0, "maxResults": 20}
        v1.faults.inject("dingtalk-v1", "rate_limit_code", path_contains=LIST_PATH)
        v1.faults.inject("dingtalk-v1", "http_503", path_contains=LIST_PATH)
        throttled = http.post(url + LIST_PATH, json=body, headers={TOKEN_HEADER: token})
        unavailable = http.post(url + LIST_PATH, json=body, headers={TOKEN_HEADER: token})
        listed = http.post(url + LIST_PATH, json=body, headers={TOKEN_HEADER: token})
        dead = http.get(url + GET_PATH, params={"processInstanceId": "x"}, headers={TOKEN_HEADER: "nope"})
        form = http.post(url + TOKEN_PATH, data={"appKey": "k", "appSecret": "s"})
    assert throttled.status_code == 403 and unavailable.status_code == 503
    for reply in (throttled, unavailable, dead, form):
        assert set(reply.json()) >= {"code", "message", "requestid"}, reply.text
    assert (dead.status_code, dead.json()["message"]) == (400, "不合法的access_token")
    assert (form.status_code, form.json()["message"]) == (400, "body is mandatory")
    result = listed.json()["result"]
    assert len(result["list"]) == 20 and result["nextToken"] == "20"  # a string in the answer


def test_random_faults_never_hit_the_comment_write(v1: SandboxHandle, month: Dataset) -> None:
    v1.reset()
    url = v1.url("dingtalk-v1")
    iid = month.claims[0].source_id
    with httpx.Client() as http:
        token = _token(http, url)
        v1.faults.set_rate(1.0, seed=3, kinds=["http_500"])
        try:
            replies = [
                http.post(
                    url + "/v1.0/workflow/processInstances/comments",
                    json={"processInstanceId": iid, "text": f"c{i}", "commentUserId": "u"},
                    headers={TOKEN_HEADER: token},
                )
                for i in range(5)
            ]
            read = http.get(url + GET_PATH, params={"processInstanceId": iid}, headers={TOKEN_HEADER: token})
        finally:
            v1.faults.set_rate(0.0)
    assert [r.status_code for r in replies] == [200] * 5
    assert [c.fault for c in v1.calls if "comments" in c.path] == [None] * 5
    # the read call, at rate 1.0, was faulted (in the v1.0 envelope): only the writes were spared
    assert [c.fault for c in v1.calls if c.path == GET_PATH] == ["http_500"]
    assert read.status_code == 500 and read.json()["code"] == "InternalError"


# -- write-back: the v1.0 comment ------------------------------------------------------------------


def test_the_status_comment_is_sent_once_and_seen_to_have_landed(v1: SandboxHandle, month: Dataset) -> None:
    from oafin.systems.base import ActionInput, CannotPropose
    from oafin.systems.dingtalk_v1 import SYSTEM
    from oafin.systems.dingtalk_v1.client import DingTalkV1Client

    v1.reset()
    action = SYSTEM.write_actions["oa_status_comment"]
    claim = month.claims[2]
    data = ActionInput(
        claim={"claim_id": f"dingtalk-v1:{claim.source_id}", "claim_no": claim.claim_no},
        text="财务状态: 已付款",
        options={"comment_userid": "0123456789"},
    )
    with pytest.raises(CannotPropose, match="comment_userid"):
        action.plan(ActionInput(claim=data.claim, text="x"))
    plan = action.plan(data)
    assert plan.content == {
        "instance_id": claim.source_id,
        "comment_userid": "0123456789",
        "text": "财务状态: 已付款",
    }
    creds = V1_TWIN.credentials
    marker = "[oafin:abc123]"
    with DingTalkV1Client(v1.url("dingtalk-v1"), str(creds["app_key"]), str(creds["app_secret"])) as client:
        assert action.landed(client, plan.content, marker, {}) is None
        reply = action.send(client, plan.content, marker, {})
        landed = action.landed(client, plan.content, marker, {})
    assert reply == {"result": {"success": True}, "success": True}
    assert landed is not None and landed["found"] == "ADD_REMARK"
    [write] = [w for w in v1.state("dingtalk-v1").writes if w["body"]["processInstanceId"] == claim.source_id]
    assert write["body"] == {
        "processInstanceId": claim.source_id,
        "text": f"财务状态: 已付款 {marker}",
        "commentUserId": "0123456789",
    }
