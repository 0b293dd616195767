"""FeishuClient and the Feishu mapping against the sandbox's Feishu twin, over real HTTP on localhost.

The conformance suite (tests/conformance, adapter ``systems_feishu.py``) covers paging, token
expiry in both envelopes, 99991400 and HTTP 429, and the error shapes; these tests cover what is
Feishu's own: the last page's empty ``page_token``, exact amounts from the ``form`` JSON string,
``fieldList`` rows (numbers) against their summaries (strings), ``AUTO_PASS`` tasks, both status
vocabularies, the early token refresh, the write-back comment and the data faults.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import pytest

from mappings.apply import map_record, map_records
from mappings.code_tables import load_code_tables
from mappings.loader import default_mapping_path, load_mapping
from oafin.connectors import RetryPolicy, TransientError
from oafin.connectors.limits import no_limit
from oafin.records import RawRecord
from oafin.sandbox import credentials
from oafin.sandbox.dataset import Dataset
from oafin.sandbox_server import SandboxHandle
from oafin.systems.feishu.client import FeishuClient, decode_form
from oafin.systems.feishu.twin_render import APPROVAL_CODE, instances

SHANGHAI = ZoneInfo("Asia/Shanghai")
FAST = RetryPolicy(max_attempts=4, base_delay=0.0, max_delay=0.0)
CONTEXT = {"company_code": "C01"}


def client(sandbox: SandboxHandle, **kwargs: object) -> FeishuClient:
    options: dict = {"retry": FAST, "limiter": no_limit, **kwargs}
    return FeishuClient(
        sandbox.url("feishu"), credentials.FEISHU_APP_ID, credentials.FEISHU_APP_SECRET, **options
    )


def whole_month(dataset: Dataset) -> tuple[datetime, datetime]:
    created = [c.created for c in dataset.claims]
    return min(created), max(created) + timedelta(seconds=1)


@pytest.fixture
def feishu(sandbox_fresh: SandboxHandle) -> Iterator[SandboxHandle]:
    yield sandbox_fresh


@pytest.fixture(scope="module")
def mapping():
    return load_mapping(default_mapping_path("feishu"))


def test_every_instance_is_read_once_and_the_last_page_token_is_empty(feishu, sandbox_dataset) -> None:
    start, end = whole_month(sandbox_dataset)
    with client(feishu) as fs:
        codes = list(fs.iter_instance_codes(APPROVAL_CODE, start, end))
    assert sorted(codes) == sorted(c.source_id for c in sandbox_dataset.claims)
    # the real log's last page: has_more false and page_token "" (real-clients.md §2.2)
    with client(feishu) as fs:
        token = fs._fetch_token().value
    ms = [str(int(t.timestamp() * 1000)) for t in (start, end)]
    params = {"approval_code": APPROVAL_CODE, "start_time": ms[0], "end_time": ms[1], "page_size": "100"}
    pages = []
    with httpx.Client(base_url=feishu.url("feishu"), headers={"Authorization": f"Bearer {token}"}) as http:
        while True:
            body = http.get("/open-apis/approval/v4/instances", params=params).json()
            assert body["code"] == 0 and body["msg"] == ""
            pages.append(body["data"])
            if not body["data"]["has_more"]:
                break
            params["page_token"] = body["data"]["page_token"]
    assert len(pages) == -(-len(codes) // 100) and pages[-1]["page_token"] == ""
    assert all(len(p["instance_code_list"]) == 100 for p in pages[:-1])
    refused = httpx.get(
        feishu.url("feishu") + "/open-apis/approval/v4/instances",
        params={**params, "page_size": "101"},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert refused["code"] == 1390001, "page_size is 1..100"


def test_the_form_is_a_json_string_whose_amounts_are_numbers_read_exactly(
    feishu, sandbox_dataset, mapping
) -> None:
    start, end = whole_month(sandbox_dataset)
    with client(feishu) as fs:
        raws = list(fs.iter_instances(APPROVAL_CODE, start, end))
    by_id = {c.source_id: c for c in sandbox_dataset.claims}
    mapped = map_records(mapping, raws, load_code_tables(), CONTEXT)
    checked = 0
    for raw, record in zip(raws, mapped, strict=True):
        assert isinstance(raw.payload["form"], str), "form stays the JSON string Feishu sent"
        claim = by_id[raw.source_id]
        widgets = {w["name"]: w for w in decode_form(raw.payload["form"])}
        amount = widgets.get("报销金额", {}).get("value")
        if claim.quarantined:
            continue
        # a JSON number in the form text, decoded as Decimal (never float), exact to the fen
        assert isinstance(amount, Decimal | int) and not isinstance(amount, bool), type(amount)
        assert record.values["amount_fen"] == claim.amount_fen
        invoices = record.children["claim_invoice"]
        assert [i["total_fen"] for i in invoices] == [i.total_fen for i in claim.invoices]
        assert [i["issue_date"] for i in invoices] == [i.issued for i in claim.invoices]
        checked += 1
    assert checked > 200


def test_field_list_rows_are_numbers_and_summaries_strings_that_agree(sandbox_dataset, mapping) -> None:
    rendered = instances(sandbox_dataset)
    with_rows = [i for i in rendered if '"fieldList"' in i["form"] and '"value":[[' in i["form"]]
    assert with_rows
    for inst in with_rows[:40]:
        table = next(w for w in decode_form(inst["form"]) if w["type"] == "fieldList")
        summaries = table["ext"]
        assert all(isinstance(s["value"], str) for s in summaries), "summaries are strings (§2.2)"
        assert all(isinstance(json.loads(s["sumItems"]), list) for s in summaries)
        for row in table["value"]:
            for widget in row:
                if widget["type"] == "amount":
                    assert isinstance(widget["value"], Decimal | int), "row amounts are numbers (§2.2)"
        (record,) = map_records(
            mapping,
            [RawRecord("feishu", APPROVAL_CODE, inst["instance_code"], inst)],
            load_code_tables(),
            CONTEXT,
        )
        totals = Decimal(summaries[2]["value"]) * 100
        assert sum(i["total_fen"] for i in record.children["claim_invoice"]) == totals


def test_float_would_lose_a_fen_the_mapping_does_not(mapping, sandbox_dataset) -> None:
    """0.29 and 4.35 yuan are 28 and 434 fen through a float; the mapping reads 29 and 435."""
    inst = next(i for i in instances(sandbox_dataset) if '"报销金额","type":"amount","value":' in i["form"])
    form = inst["form"]
    for text, fen in (("0.29", 29), ("4.35", 435), ("1234567.89", 123456789)):
        assert int(float(text) * 100) != fen or text == "1234567.89"
        changed = json.loads(form)
        for widget in changed:
            if widget["name"] == "报销金额":
                widget["value"] = "@@"
        payload = {**inst, "form": json.dumps(changed, ensure_ascii=False).replace('"@@"', text)}
        record = map_record(
            mapping, RawRecord("feishu", APPROVAL_CODE, "x", payload), load_code_tables(), CONTEXT
        )
        assert record.values["amount_fen"] == fen, (text, record.issues)


def test_auto_pass_tasks_have_no_user_and_are_no_approver(sandbox_dataset, mapping) -> None:
    by_id = {c.source_id: c for c in sandbox_dataset.claims}
    seen = 0
    for inst in instances(sandbox_dataset):
        auto = [t for t in inst["task_list"] if t["type"] == "AUTO_PASS"]
        assert auto and all(t["open_id"] == "" and "user_id" not in t for t in auto)
        claim = by_id[inst["instance_code"]]
        if claim.quarantined or not claim.approvers:
            continue
        (record,) = map_records(
            mapping, [RawRecord("feishu", APPROVAL_CODE, claim.source_id, inst)], load_code_tables(), CONTEXT
        )
        assert record.values["approver_ids"] == ",".join(p.person_id for p in claim.approvers)
        assert not record.issues
        seen += 1
    assert seen > 50


@pytest.mark.parametrize(
    ("status", "standard"),
    [
        ("PENDING", "pending"),
        ("APPROVED", "approved"),
        ("REJECTED", "rejected"),  # instance get
        ("REJECT", "rejected"),  # instances/query
        ("CANCELED", "withdrawn"),  # instance get
        ("RECALL", "withdrawn"),  # instances/query
        ("DELETED", "withdrawn"),
    ],
)
def test_both_status_vocabularies_map(status, standard, sandbox_dataset, mapping) -> None:
    inst = {**instances(sandbox_dataset)[0], "status": status}
    record = map_record(mapping, RawRecord("feishu", APPROVAL_CODE, "x", inst), load_code_tables(), CONTEXT)
    assert record.values["status"] == standard


def test_an_unknown_status_is_not_guessed(sandbox_dataset, mapping) -> None:
    inst = {**instances(sandbox_dataset)[0], "status": "OVERTIME_CLOSE"}
    record = map_record(mapping, RawRecord("feishu", APPROVAL_CODE, "x", inst), load_code_tables(), CONTEXT)
    assert record.values["status"] is None
    assert [i.code for i in record.issues] == ["UNMAPPED_CODE"]


def test_the_token_is_fetched_again_before_it_expires(feishu) -> None:
    now = [0.0]
    with client(feishu, clock=lambda: now[0], token_refresh_margin=600.0) as fs:
        credential, _ = fs.auth.cache.get()
        life = credential.expires_in  # `expire`: what is left of the token's life (§3.1)
        assert fs.auth.cache.fetches == 1 and life is not None and life > 600
        now[0] = life - 600 - 1  # still inside its life less the margin
        fs.auth.cache.get()
        assert fs.auth.cache.fetches == 1
        now[0] = life - 600 + 1  # ten minutes before `expire`: fetched again, early
        fs.auth.cache.get()
        assert fs.auth.cache.fetches == 2


def test_the_twin_keeps_a_token_with_half_an_hour_left_and_renews_one_with_less(feishu) -> None:
    url = feishu.url("feishu") + "/open-apis/auth/v3/tenant_access_token/internal"
    body = {"app_id": credentials.FEISHU_APP_ID, "app_secret": credentials.FEISHU_APP_SECRET}
    first = httpx.post(url, json=body).json()
    again = httpx.post(url, json=body).json()
    assert first["code"] == 0 and first["expire"] > 1800
    assert again["tenant_access_token"] == first["tenant_access_token"]
    feishu.state("feishu").tokens.expire()
    renewed = httpx.post(url, json=body).json()
    assert renewed["tenant_access_token"] != first["tenant_access_token"]


def test_a_comment_is_written_once_and_found_by_its_marker(feishu, sandbox_dataset) -> None:
    claim = sandbox_dataset.claims[0]
    user = claim.originator.identities["feishu"]
    with client(feishu) as fs:
        assert fs.find_comment(claim.source_id, "oafin:test-marker-1") is None
        reply = fs.add_comment(claim.source_id, "finance paid it oafin:test-marker-1", user)
        assert reply["code"] == 0 and reply["data"]["comment_id"]
        found = fs.find_comment(claim.source_id, "oafin:test-marker-1")
    assert found is not None and found["open_id"] == user
    # this test's writes only: the module's sandbox also takes other tests' comments, in whatever
    # order the workers run them (test_random_faults_hit_the_read_calls_never_the_comment)
    writes = [w for w in feishu.received_writes("feishu") if "oafin:test-marker-1" in w["body"]["content"]]
    assert len(writes) == 1 and json.loads(writes[0]["body"]["content"])["text"].endswith(
        "oafin:test-marker-1"
    )


def test_a_duplicated_page_starts_with_the_last_code_of_the_page_before(feishu, sandbox_dataset) -> None:
    start, end = whole_month(sandbox_dataset)
    with client(feishu) as fs:
        token = fs._fetch_token().value
    ms = [str(int(t.timestamp() * 1000)) for t in (start, end)]
    params = {"approval_code": APPROVAL_CODE, "start_time": ms[0], "end_time": ms[1], "page_size": "5"}
    with httpx.Client(base_url=feishu.url("feishu"), headers={"Authorization": f"Bearer {token}"}) as http:
        first = http.get("/open-apis/approval/v4/instances", params=params).json()["data"]
        params["page_token"] = first["page_token"]
        clean = http.get("/open-apis/approval/v4/instances", params=params).json()["data"]
        feishu.faults.inject("feishu", "duplicate_record", path_contains="/approval/v4/instances")
        shifted = http.get("/open-apis/approval/v4/instances", params=params).json()["data"]
    assert shifted["instance_code_list"] == [first["instance_code_list"][-1], *clean["instance_code_list"]]


@pytest.mark.parametrize("kind", ["duplicate_record", "schema_drift"])
def test_data_faults_on_every_call_change_nothing_that_is_read(
    kind, feishu, sandbox_dataset, mapping
) -> None:
    start, end = whole_month(sandbox_dataset)
    with client(feishu, page_size=10) as fs:
        clean = list(fs.iter_instances(APPROVAL_CODE, start, end))
    feishu.faults.set_rate(1.0, kinds=[kind])
    try:
        with client(feishu, page_size=10) as fs:
            faulted = list(fs.iter_instances(APPROVAL_CODE, start, end))
    finally:
        feishu.faults.set_rate(0.0)
    assert sum(c.fault == kind for c in feishu.calls) > 30
    assert [r.source_id for r in faulted] == [r.source_id for r in clean]
    tables = load_code_tables()
    assert [r.values for r in map_records(mapping, faulted, tables, CONTEXT)] == [
        r.values for r in map_records(mapping, clean, tables, CONTEXT)
    ]
    if kind == "schema_drift":
        assert all("instance_ext_v2" in r.payload for r in faulted)


@pytest.mark.parametrize("form", ['[{"name": "报销金额", "value": 1', '{"name": "报销金额"}'])
def test_a_form_that_is_not_a_json_list_is_a_contract_violation_naming_it(
    form, sandbox_dataset, mapping
) -> None:
    inst = {**instances(sandbox_dataset)[0], "form": form}
    record = map_record(mapping, RawRecord("feishu", APPROVAL_CODE, "x", inst), load_code_tables(), CONTEXT)
    assert record.values["amount_fen"] is None
    assert any(i.code == "CONTRACT_VIOLATION" and i.field == "form" for i in record.issues), record.issues


def test_random_faults_hit_the_read_calls_never_the_comment(feishu, sandbox_dataset) -> None:
    claim = sandbox_dataset.claims[2]
    with client(feishu) as fs:
        fs.auth.cache.get()  # the token first: every read call is faulted below
        feishu.faults.set_rate(1.0, kinds=["http_500"])
        try:
            reply = fs.add_comment(
                claim.source_id, "paid oafin:random-faults", claim.originator.identities["feishu"]
            )
            with pytest.raises(TransientError):
                fs.get_instance(claim.source_id)
        finally:
            feishu.faults.set_rate(0.0)
    assert reply["code"] == 0
    faulted = {c.path.rsplit("/", 1)[-1] for c in feishu.calls if c.fault == "http_500"}
    assert faulted == {claim.source_id}, "only the instance get was faulted"
