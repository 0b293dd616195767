"""Corrections approved in the OA (issue #17), as plain functions against the sandbox's DingTalk twin:
proposals → an approval instance → a scripted approver → the decision → pushed once through the ledger.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from oafin.audit import verify_url
from oafin.config import load_settings
from oafin.pipeline.corrections import oa
from oafin.pipeline.corrections.service import propose
from oafin.pipeline.runtime import code_tables
from oafin.systems.base import ApprovalRecord, ApprovalState
from oafin.systems.dingtalk.approvals import records_of, status_of
from oafin.systems.dingtalk.twin_approvals import CORRECTIONS_PROCESS_CODE, Script
from oafin.warehouse import approvals, audit, inflight, ledger
from tests import test_corrections_helpers as helpers

reconciled_warehouse = helpers.reconciled_warehouse
fresh_sandbox = helpers.fresh_sandbox
corrections_setup = helpers.corrections_setup

BATCH = 6  # actions per test batch: a chosen subset of the period's proposals


def _rows(engine: Engine) -> dict[str, dict]:
    with engine.connect() as conn:
        return {r["idempotency_key"]: r for r in ledger.rows(conn)}


def _dingtalk_id(tables, person_id: str) -> str:
    return tables.external_ids("dingtalk")[person_id]


def oa_config(make, tables, originator: str, approvers: list[str], extra: str = "") -> Path:
    return make(
        'approval = "oa"\n'
        f"{extra}"
        "[corrections.oa]\n"
        f'process_code = "{CORRECTIONS_PROCESS_CODE}"\n'
        f'originator_userid = "{originator}"\n'
        f"approvers = {json.dumps(approvers)}\n"
    )


@pytest.fixture
def oa_setup(corrections_setup):
    """(settings, engine, sandbox, tables, batch keys, approver person_id): a batch of actions on
    claims of people other than the approver and the originator."""
    make, engine, sandbox = corrections_setup
    settings = load_settings(make())
    tables = code_tables(settings)
    proposed = propose(engine, tables, comment_userid=helpers.COMMENT_USER)
    rows = _rows(engine)
    applicants = {r["applicant_id"] for r in rows.values()}
    people = [p for p in tables.people["person_id"] if p not in applicants]
    originator, approver = people[0], people[1]
    keys = proposed.keys[:BATCH]
    config = oa_config(make, tables, _dingtalk_id(tables, originator), [_dingtalk_id(tables, approver)])
    return load_settings(config), engine, sandbox, tables, keys, approver


def _submit(settings, engine, keys) -> dict:
    with oa.oa_client(settings) as client:
        [batch] = oa.submit(
            engine, settings, keys, client, report_link="https://reports.example/2026-10/report.html"
        )
    return batch


def _check_and_push(settings, engine, tables) -> dict:
    return oa.check_and_push(engine, settings, tables)


def _desk(sandbox):
    return sandbox.dingtalk.desk


def _pushed_writes(sandbox) -> list[dict]:
    return sandbox.received_writes()


def test_approved_in_the_oa_is_pushed_once_and_audit_verify_covers_it(oa_setup) -> None:
    settings, engine, sandbox, tables, keys, approver = oa_setup
    batch = _submit(settings, engine, keys)
    assert batch["status"] == "open" and batch["instance_id"]
    [create] = [c for c in _desk(sandbox).calls if c["call"] == "processinstance/create"]
    form = {v["name"]: v["value"] for v in create["body"]["form_component_values"]}
    table = json.loads(form["更正明细"])
    assert len(table) == len(keys)
    assert [c["name"] for c in table[0]] == ["编号", "报销单号", "异常类型", "金额", "目标系统", "发送内容"]
    assert form["对账报告"].endswith("report.html") and form["更正批次"] == batch["batch_id"]
    assert _submit(settings, engine, keys)["batch_id"] == batch["batch_id"]  # a re-run re-uses it
    assert len([c for c in _desk(sandbox).calls if c["call"] == "processinstance/create"]) == 1

    _desk(sandbox).script = Script("approve", after_reads=1)
    first = _check_and_push(settings, engine, tables)  # the first read: still running
    assert [b.status for b in first["batches"]] == ["open"] and first["results"] == []
    assert _pushed_writes(sandbox) == []

    second = _check_and_push(settings, engine, tables)
    [outcome] = second["batches"]
    assert outcome.status == "approved" and outcome.newly_decided
    assert sorted(outcome.approved) == sorted(keys)
    assert {r.outcome for r in second["results"]} == {"pushed"} and len(second["results"]) == len(keys)
    rows = _rows(engine)
    label = rows[keys[0]]["approved_by"]
    assert label.startswith(f"oa dingtalk instance {batch['instance_id']}: ") and label.endswith(
        f"({approver})"
    )
    assert all(rows[k]["status"] == "done" for k in keys)
    assert all(rows[k]["status"] == "proposed" for k in rows if k not in keys)  # the rest wait
    writes = len(_pushed_writes(sandbox))

    third = _check_and_push(settings, engine, tables)  # nothing open, nothing left to push
    assert third["batches"] == [] and third["results"] == []
    assert len(_pushed_writes(sandbox)) == writes

    report = verify_url(settings.warehouse_url)
    assert report.ok, report.problems
    # the OA's record in the warehouse, edited: verify names it
    with engine.begin() as conn:
        conn.execute(
            approvals.approval_batch.update().values(
                approvers=json.dumps([{"external_id": "x", "person_id": "P9999", "name": ""}])
            )
        )
    problems = verify_url(settings.warehouse_url).problems
    assert any("approvers differ from the decision in the audit log" in p for p in problems)
    assert any("approvers are not those the OA recorded" in p for p in problems)


def test_rejected_in_the_oa_pushes_nothing_and_says_by_whom(oa_setup) -> None:
    settings, engine, sandbox, tables, keys, approver = oa_setup
    _submit(settings, engine, keys)
    _desk(sandbox).script = Script("reject", after_reads=0)
    result = _check_and_push(settings, engine, tables)
    [outcome] = result["batches"]
    assert outcome.status == "rejected" and result["results"] == []
    assert _pushed_writes(sandbox) == []
    assert all(r["status"] == "proposed" for r in _rows(engine).values())
    with engine.connect() as conn:
        notes = [e for e in audit.entries(conn) if e.event == "oa_rejected"]
    assert {e.subject for e in notes} == set(keys)
    assert all(e.actor.endswith(f"({approver})") for e in notes)
    assert all(
        f"rejected in OA dingtalk instance {outcome.instance_id} by" in json.loads(e.payload)["reason"]
        for e in notes
    )
    # a later run does not send the rejected actions again by itself
    assert oa.sendable(engine, keys) == ([], [])
    assert verify_url(settings.warehouse_url).ok


def test_withdrawn_pushes_nothing_and_says_by_whom(oa_setup) -> None:
    settings, engine, sandbox, tables, keys, approver = oa_setup
    batch = _submit(settings, engine, keys)
    _desk(sandbox).decide(batch["instance_id"], "withdraw")
    result = _check_and_push(settings, engine, tables)
    [outcome] = result["batches"]
    assert outcome.status == "withdrawn" and result["results"] == [] and _pushed_writes(sandbox) == []
    originator = settings.corrections.oa.originator_userid
    person = tables.person_by_identity("dingtalk", originator)
    assert outcome.decided_by.endswith(f"({person})")
    assert set(outcome.refused) == set(keys) and all("withdrawn in OA" in r for r in outcome.refused.values())


def test_approved_by_the_applicant_is_refused_with_the_reason(corrections_setup) -> None:
    make, engine, sandbox = corrections_setup
    settings = load_settings(make())
    tables = code_tables(settings)
    proposed = propose(engine, tables, comment_userid=helpers.COMMENT_USER)
    rows = _rows(engine)
    applicant = rows[proposed.keys[0]]["applicant_id"]
    own = [k for k in proposed.keys if rows[k]["applicant_id"] == applicant]
    others = [k for k in proposed.keys if rows[k]["applicant_id"] != applicant][:3]
    applicants = {r["applicant_id"] for r in rows.values()}
    originator, approver = [p for p in tables.people["person_id"] if p not in applicants][:2]
    settings = load_settings(
        oa_config(make, tables, _dingtalk_id(tables, originator), [_dingtalk_id(tables, approver)])
    )
    keys = [*own, *others]
    _submit(settings, engine, keys)
    _desk(sandbox).script = Script("applicant", after_reads=0)  # the first row's applicant agrees too
    result = _check_and_push(settings, engine, tables)
    [outcome] = result["batches"]
    assert outcome.status == "approved"
    assert set(outcome.refused) == set(own) and sorted(outcome.approved) == sorted(others)
    assert all(
        "segregation of duties" in reason and f"({applicant}) approved OA dingtalk instance" in reason
        for reason in outcome.refused.values()
    )
    assert {r.key for r in result["results"] if r.outcome == "pushed"} == set(others)
    after = _rows(engine)
    assert all(after[k]["status"] == "proposed" for k in own)
    assert verify_url(settings.warehouse_url).ok


def test_a_run_killed_after_the_create_call_finds_its_instance_and_pushes_once(oa_setup, monkeypatch) -> None:
    settings, engine, sandbox, tables, keys, approver = oa_setup

    class Killed(BaseException):
        pass

    def kill(batch_id: str) -> None:
        raise Killed(batch_id)

    monkeypatch.setattr(oa, "after_create", kill)
    with pytest.raises(Killed):
        _submit(settings, engine, keys)
    monkeypatch.setattr(oa, "after_create", None)
    with engine.connect() as conn:
        [batch] = approvals.batches(conn)
    assert batch["status"] == "submitting" and batch["instance_id"] is None  # the answer was lost

    with inflight.hold(engine, approvals.subject(batch["batch_id"])) as mine:  # another process at it
        assert mine
        with oa.oa_client(settings) as client:
            busy = oa.check(engine, settings, tables, batch["batch_id"], client)
    assert busy.status == "submitting" and busy.instance_id is None
    assert len([c for c in _desk(sandbox).calls if c["call"] == "processinstance/create"]) == 1

    _desk(sandbox).script = Script("approve", after_reads=0)
    result = _check_and_push(settings, engine, tables)
    creates = [c for c in _desk(sandbox).calls if c["call"] == "processinstance/create"]
    assert len(creates) == 1, "a second instance was created"
    [outcome] = result["batches"]
    assert outcome.instance_id == creates[0]["instance_id"] and outcome.status == "approved"
    assert len([r for r in result["results"] if r.outcome == "pushed"]) == len(keys)
    writes = len(_pushed_writes(sandbox))
    assert _check_and_push(settings, engine, tables)["results"] == []
    assert len(_pushed_writes(sandbox)) == writes
    with engine.connect() as conn:
        found = [
            e for e in audit.entries(conn, approvals.subject(batch["batch_id"])) if e.event == "oa_instance"
        ]
    assert json.loads(found[0].payload)["found"] is True
    assert verify_url(settings.warehouse_url).ok


# --- plain functions, no network -------------------------------------------------------------


def _state(status, records, rows=None) -> ApprovalState:
    return ApprovalState("I-1", status, tuple(records), row_decisions=rows)


def test_decide_refuses_what_the_oa_record_does_not_bear_out(corrections_setup) -> None:
    make, engine, _ = corrections_setup
    tables = code_tables(load_settings(make()))
    ids = tables.external_ids("dingtalk")
    rows = [
        {"idempotency_key": "a" * 64, "applicant_id": "P0001", "claim_no": "C1"},
        {"idempotency_key": "b" * 64, "applicant_id": "P0002", "claim_no": "C2"},
    ]
    agree = [ApprovalRecord(ids["P0003"], "agree")]
    ok = oa.decide(_state("approved", agree), rows, tables, "dingtalk")
    assert set(ok.approved) == {"a" * 64, "b" * 64} and ok.approvers[0]["person_id"] == "P0003"
    own = oa.decide(
        _state("approved", [*agree, ApprovalRecord(ids["P0001"], "agree")]), rows, tables, "dingtalk"
    )
    assert set(own.refused) == {"a" * 64} and "segregation of duties" in own.refused["a" * 64]
    auto_only = [ApprovalRecord(ids["P0003"], "agree", human=False)]
    passed = oa.decide(_state("approved", auto_only), rows, tables, "dingtalk")
    assert passed.approved == {} and "automatic pass" in passed.refused["a" * 64]
    mixed = [*agree, ApprovalRecord(ids["P0002"], "agree", human=False)]  # the applicant auto-passed
    seg = oa.decide(_state("approved", mixed), rows, tables, "dingtalk")
    assert set(seg.approved) == {"a" * 64} and "segregation of duties" in seg.refused["b" * 64]
    nobody = oa.decide(_state("approved", []), rows, tables, "dingtalk")
    assert set(nobody.refused) == {"a" * 64, "b" * 64} and "automatic pass" in nobody.refused["a" * 64]
    stranger = oa.decide(
        _state("approved", [ApprovalRecord("not-a-user", "agree")]), rows, tables, "dingtalk"
    )
    assert all("not in the identities table" in r for r in stranger.refused.values())
    by_row = oa.decide(
        _state("approved", agree, {"[oafin:" + "a" * 16 + "]": True}), rows, tables, "dingtalk"
    )
    assert set(by_row.approved) == {"a" * 64} and "detail table" in by_row.refused["b" * 64]
    pending = oa.decide(_state("pending", []), rows, tables, "dingtalk")
    assert pending.approved == {} and pending.refused == {}


def test_dingtalk_instances_read_as_the_fact_sheet_says() -> None:
    base = {"status": "COMPLETED", "result": "agree"}
    assert status_of(base) == "approved"
    assert status_of({"status": "COMPLETED", "result": "refuse"}) == "rejected"
    assert status_of({"status": "TERMINATED", "result": ""}) == "withdrawn"
    assert status_of({"status": "RUNNING", "result": ""}) == "pending"
    records = records_of(
        {
            "operation_records": [
                {"userid": "u0", "operation_type": "START_PROCESS_INSTANCE", "operation_result": "NONE"},
                {
                    "userid": "u1",
                    "operation_type": "EXECUTE_TASK_NORMAL",
                    "operation_result": "AGREE",
                    "date": "2026-11-02 09:00:00",
                },
                {"userid": "u2", "operation_type": "EXECUTE_TASK_AGENT", "operation_result": "AGREE"},
                {"userid": "u3", "operation_type": "ADD_REMARK", "operation_result": "NONE"},
            ],
            "tasks": [
                {"userid": "u1", "task_status": "COMPLETED", "task_result": "AGREE"},
                {"userid": "u4", "task_status": "COMPLETED", "task_result": "AGREE"},
                {"userid": "u5", "task_status": "CANCELED", "task_result": "NONE"},
            ],
        }
    )
    assert [(r.user_id, r.decision, r.human) for r in records] == [
        ("u1", "agree", True),
        ("u2", "agree", True),
        ("u4", "agree", False),  # a task alone: what an automatic pass looks like
    ]
    assert records[0].at is not None and records[0].at.utcoffset() is not None
    assert records[0].at.hour == 1  # 09:00 Beijing is 01:00 UTC


# --- the other OA systems: the same loop through each one's own API and twin ------------------

# system -> (its twin's corrections form, the create call its desk records)
OTHER_OAS = {
    "feishu": ("0AF1C0DE-0000-4C0E-A000-C0229EC71045", "instances/create"),
    "dingtalk-v1": ("PROC-OAFIN-CORRECTIONS", "v1.0/workflow/processInstances"),
    "wecom": ("3WLJF6naF9ZGmVCqWRzT1dVdkjTNF8WCkGDhTiHW", "oa/applyevent"),
}


def _other_oa_settings(make, monkeypatch, sandbox, tables, system: str, originator: str, approver: str):
    """A config whose corrections are approved in ``system``'s twin: a third source ``approvals``
    (outside the chain), its credentials in the environment as for any source."""
    from oafin.demo import sandbox_environment

    for key, value in sandbox_environment([("approvals", system)]).items():
        monkeypatch.setenv(key, value)
    from oafin.systems.base import approvals_of
    from oafin.systems.registry import get_system

    people_of = getattr(approvals_of(get_system(system)), "identity_system", None) or system
    ids = tables.external_ids(people_of)  # dingtalk-v1: the same userids as topapi
    form, _ = OTHER_OAS[system]
    return load_settings(
        make(
            'approval = "oa"\n'
            "[corrections.oa]\n"
            'source = "approvals"\n'
            f'process_code = "{form}"\n'
            f'originator_userid = "{ids[originator]}"\n'
            f"approvers = {json.dumps([ids[approver]])}\n"
            "[[sources]]\n"
            'name = "approvals"\n'
            f'system = "{system}"\n'
            'company_code = "C01"\n'
            f'base_url = "{sandbox.url(system)}"\n'
            "rate_limit_per_second = 500\n"
        )
    )


@pytest.mark.parametrize("system", sorted(OTHER_OAS))
def test_each_oa_decides_through_its_own_record(system, corrections_setup, monkeypatch) -> None:
    """Approved → pushed once; rejected → nothing; approved by the applicant → refused with the
    reason; withdrawn → nothing: four batches in one sandbox, each decided by the scripted approver."""
    make, engine, sandbox = corrections_setup
    tables = code_tables(load_settings(make()))
    proposed = propose(engine, tables, comment_userid=helpers.COMMENT_USER)
    rows = _rows(engine)
    applicants = {r["applicant_id"] for r in rows.values()}
    originator, approver = [p for p in tables.people["person_id"] if p not in applicants][:2]
    settings = _other_oa_settings(make, monkeypatch, sandbox, tables, system, originator, approver)
    desk = sandbox.state(system).desk
    _, create_call = OTHER_OAS[system]
    applicant = rows[proposed.keys[0]]["applicant_id"]
    own = [k for k in proposed.keys if rows[k]["applicant_id"] == applicant]
    rest = [k for k in proposed.keys if rows[k]["applicant_id"] != applicant]
    # the month has few proposals: one action a batch (the DingTalk tests above mix batches)
    batches = {"applicant": own[:1], "approve": rest[0:1], "reject": rest[1:2], "withdraw": rest[2:3]}
    assert all(batches.values()), (len(proposed.keys), len(own), {k: len(v) for k, v in batches.items()})

    def run(outcome: str):
        batch = _submit(settings, engine, batches[outcome])
        assert batch["system"] == system and batch["instance_id"]
        desk.set_script(outcome, after_reads=1)
        first = _check_and_push(settings, engine, tables)  # the first read: still open
        assert [b.status for b in first["batches"]] == ["open"] and first["results"] == []
        result = _check_and_push(settings, engine, tables)
        [outcome_] = result["batches"]
        assert outcome_.instance_id == batch["instance_id"] and outcome_.newly_decided
        return outcome_, result

    approved, result = run("approve")
    assert approved.status == "approved" and sorted(approved.approved) == sorted(batches["approve"])
    assert {r.outcome for r in result["results"]} == {"pushed"}
    label = _rows(engine)[batches["approve"][0]]["approved_by"]
    assert label.startswith(f"oa {system} instance {approved.instance_id}: ") and label.endswith(
        f"({approver})"
    )
    writes = len(_pushed_writes(sandbox))
    assert writes > 0
    assert _check_and_push(settings, engine, tables)["results"] == []  # pushed once
    assert len(_pushed_writes(sandbox)) == writes

    rejected, result = run("reject")
    assert (
        rejected.status == "rejected"
        and result["results"] == []
        and rejected.decided_by.endswith(f"({approver})")
    )
    assert len(_pushed_writes(sandbox)) == writes

    # withdrawn, in a batch whose create call's answer was lost: the check finds the instance by
    # the batch id in its form (the system's own find) and creates no second one
    creates = len([c for c in desk.calls if c["call"] == create_call])

    class Killed(BaseException):
        pass

    def kill(batch_id: str) -> None:
        raise Killed(batch_id)

    monkeypatch.setattr(oa, "after_create", kill)
    with pytest.raises(Killed):
        _submit(settings, engine, batches["withdraw"])
    monkeypatch.setattr(oa, "after_create", None)
    made = [c for c in desk.calls if c["call"] == create_call]
    assert len(made) == creates + 1
    lost = made[-1]["instance_id"]  # created, its id never recorded
    desk.set_script("withdraw", after_reads=0)
    result = _check_and_push(settings, engine, tables)
    [withdrawn] = result["batches"]
    assert withdrawn.instance_id == lost
    assert len([c for c in desk.calls if c["call"] == create_call]) == creates + 1, "a second instance"
    with engine.connect() as conn:
        [found] = [
            e for e in audit.entries(conn, approvals.subject(withdrawn.batch_id)) if e.event == "oa_instance"
        ]
    assert json.loads(found.payload)["found"] is True
    assert withdrawn.status == "withdrawn" and result["results"] == []
    assert withdrawn.decided_by.endswith(f"({originator})")
    assert all("withdrawn in OA" in r for r in withdrawn.refused.values())
    assert len(_pushed_writes(sandbox)) == writes

    by_applicant, result = run("applicant")
    assert by_applicant.status == "approved" and set(by_applicant.refused) == {own[0]}
    assert all(
        "segregation of duties" in reason and f"({applicant}) approved OA {system} instance" in reason
        for reason in by_applicant.refused.values()
    )
    assert [r for r in result["results"] if r.outcome == "pushed"] == []
    after = _rows(engine)
    assert all(after[k]["status"] == "proposed" for k in [own[0], *batches["reject"], *batches["withdraw"]])
    assert after[rest[0]]["status"] == "done"
    assert len([c for c in desk.calls if c["call"] == create_call]) == 4  # one instance per batch
    assert verify_url(settings.warehouse_url).ok


def test_feishu_instances_read_as_the_fact_sheet_says() -> None:
    from oafin.systems.feishu import approvals as fs

    assert [
        fs.status_of({"status": s}) for s in ("APPROVED", "REJECTED", "CANCELED", "PENDING", "RECALL")
    ] == [
        "approved",
        "rejected",
        "withdrawn",
        "pending",
        "withdrawn",
    ]
    records = fs.records_of(
        {
            "task_list": [
                {"status": "APPROVED", "type": "AUTO_PASS", "open_id": "", "end_time": "1762045200000"},
                {"status": "APPROVED", "type": "AND", "open_id": "ou_a", "end_time": "1762045200000"},
                {"status": "REJECTED", "type": "AND", "open_id": "ou_b", "end_time": "1762045200000"},
                {"status": "PENDING", "type": "AND", "open_id": "ou_c", "end_time": "0"},
            ],
            "timeline": [
                {"type": "START", "open_id": "ou_o", "create_time": "1762045100000"},
                {"type": "AUTO_PASS", "open_id": "", "create_time": "1762045100000"},
                {"type": "AUTO_PASS", "open_id": "ou_d", "create_time": "1762045100000"},
                {"type": "CANCEL", "open_id": "ou_o", "create_time": "1762045300000"},
            ],
        }
    )
    assert [(r.user_id, r.decision, r.human) for r in records] == [
        ("ou_a", "agree", True),
        ("ou_b", "refuse", True),
        ("ou_d", "agree", False),  # a system pass naming someone: segregation of duties only
        ("ou_o", "withdraw", True),
    ]
    assert records[0].at is not None and records[0].at.utcoffset() is not None


def test_wecom_forms_read_as_the_fact_sheet_says() -> None:
    from oafin.systems.wecom import approvals as wc

    assert [wc.status_of({"sp_status": s}) for s in (1, 2, 3, 4, 6, 10, "2")] == [
        "pending",
        "approved",
        "rejected",
        "withdrawn",
        "withdrawn",
        "approved",
        "approved",
    ]
    info = {
        "sp_status": 4,
        "applyer": {"userid": "WeCom00007"},
        "sp_record": [
            {
                "sp_status": 2,
                "approverattr": 2,
                "details": [
                    {"approver": {"userid": "WeCom00001"}, "sp_status": 2, "sptime": 1762045200},
                    {"approver": {"userid": "WeCom00002"}, "sp_status": 1, "sptime": 0},
                    {"approver": {"userid": "WeCom00003"}, "sp_status": 4, "sptime": 1762045200},  # 已转审
                ],
            },
            {
                "sp_status": 3,
                "details": [{"approver": {"userid": "WeCom00004"}, "sp_status": 3, "sptime": 1}],
            },
        ],
    }
    records = wc.records_of(info)
    assert [(r.user_id, r.decision) for r in records] == [
        ("WeCom00001", "agree"),
        ("WeCom00004", "refuse"),
        ("WeCom00007", "withdraw"),  # 已撤销 is the applicant's own act
    ]
    assert records[0].at is not None and records[0].at.utcoffset() is not None
    with pytest.raises(ValueError, match="更正明细"):
        wc.design_of({"template_content": {"controls": []}})


def test_dingtalk_v1_instances_read_as_the_fact_sheet_says() -> None:
    from oafin.systems.dingtalk_v1 import approvals as v1

    records = v1.records_of(
        {
            "operationRecords": [
                {"userId": "u0", "type": "START_PROCESS_INSTANCE", "result": "NONE"},
                {
                    "userId": "u1",
                    "type": "EXECUTE_TASK_NORMAL",
                    "result": "AGREE",
                    "date": "2026-11-02T01:00Z",
                },
                {"userId": "u2", "type": "TERMINATE_PROCESS_INSTANCE", "result": "NONE"},
            ],
            "tasks": [
                {"userId": "u1", "status": "COMPLETED", "result": "AGREE"},
                {"userId": "u3", "status": "COMPLETED", "result": "AGREE"},
                {"userId": "u4", "status": "RUNNING", "result": "NONE"},
            ],
        }
    )
    assert [(r.user_id, r.decision, r.human) for r in records] == [
        ("u1", "agree", True),
        ("u2", "withdraw", True),
        ("u3", "agree", False),
    ]
    assert records[0].at is not None and records[0].at.hour == 1 and records[0].at.utcoffset() is not None
    from oafin.systems.base import ApprovalRequest

    body = v1.create_body(
        ApprovalRequest("b" * 32, "PROC-X", "u8", "t", (), "https://r.example/x.html", ("u9",), "-1")
    )
    assert body["processCode"] == "PROC-X" and body["approvers"] == [{"actionType": "AND", "userIds": ["u9"]}]
    assert "deptId" not in body  # -1 (the root) is not sent as an int64 department
