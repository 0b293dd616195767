"""The OA approval batches in the warehouse (issue #17), on SQLite and PostgreSQL: each change is
audited, a batch is decided once, and an edit behind oafin's back is named by the replay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from oafin.config import ConfigError, load_settings
from oafin.pipeline.corrections.oa import requires_oa
from oafin.warehouse import approvals, audit
from tests.test_corrections_helpers import write_config

APPROVERS = [{"external_id": "u2", "person_id": "P0002", "name": "张桂敏"}]


def _decided(engine: Engine) -> dict:
    with approvals_writing(engine) as conn:
        batch = approvals.new_batch(conn, source="oa", system="sys", process_code="PROC-1", keys=["k1", "k2"])
    with approvals_writing(engine) as conn:
        approvals.set_instance(conn, batch["batch_id"], "I-1", found=False)
    with approvals_writing(engine) as conn:
        approvals.decide(
            conn,
            batch["batch_id"],
            "approved",
            actor="oa sys instance I-1: 张桂敏 (P0002)",
            approvers=APPROVERS,
            detail={},
        )
    with engine.connect() as conn:
        row = approvals.get(conn, batch["batch_id"])
    assert row is not None
    return row


def approvals_writing(engine: Engine):
    from oafin.warehouse import ledger

    return ledger.writing(engine)


def test_a_batch_replays_from_its_audit_trail_and_is_decided_once(warehouse_engine: Engine) -> None:
    row = _decided(warehouse_engine)
    assert (row["status"], row["instance_id"]) == ("approved", "I-1")
    with warehouse_engine.connect() as conn:
        trail = approvals.trails(conn)[row["batch_id"]]
        assert audit.verify(conn).ok
    assert [e.event for e in trail] == ["oa_submit", "oa_instance", "oa_decided"]
    assert approvals.trail_problems(row, trail) == []
    with pytest.raises(approvals.StaleBatch), approvals_writing(warehouse_engine) as conn:
        approvals.decide(conn, row["batch_id"], "rejected", actor="x", approvers=[], detail={})
    with warehouse_engine.begin() as conn:
        conn.execute(approvals.approval_batch.update().values(instance_id="I-2"))
    with warehouse_engine.connect() as conn:
        edited = approvals.get(conn, row["batch_id"])
        assert edited is not None
        problems = approvals.trail_problems(edited, approvals.trails(conn)[row["batch_id"]])
    assert any("names instance 'I-2', the audit log 'I-1'" in p for p in problems)


def test_an_action_approved_in_the_oa_must_match_its_batch(warehouse_engine: Engine) -> None:
    batch = _decided(warehouse_engine)
    good = {"via": "oa", "batch": batch["batch_id"], "instance_id": "I-1", "approvers": ["P0002"]}
    assert approvals.ledger_problems("k1", good, "P0001", batch) == []
    assert any("own applicant P0002" in p for p in approvals.ledger_problems("k1", good, "P0002", batch))
    assert any("not an action of OA batch" in p for p in approvals.ledger_problems("k9", good, None, batch))
    other = {**good, "approvers": ["P0003"]}
    assert any("approvers are not those" in p for p in approvals.ledger_problems("k1", other, None, batch))
    assert "does not exist" in approvals.ledger_problems("k1", good, None, None)[0]
    assert json.loads(batch["approvers"]) == APPROVERS


def test_oa_approval_needs_its_form_and_required_rules_pick_actions(tmp_path: Path) -> None:
    urls = ("http://127.0.0.1:9", "http://127.0.0.1:9/k3cloud/")
    with pytest.raises(ConfigError, match="corrections.oa.process_code and corrections.oa.originator_userid"):
        load_settings(write_config(tmp_path / "a.toml", urls, "sqlite:///x.db", 'approval = "oa"\n'))
    config = write_config(
        tmp_path / "b.toml",
        urls,
        "sqlite:///x.db",
        '[corrections.oa]\nprocess_code = "P"\noriginator_userid = "u"\nrequired_for_roles = ["erp"]\n'
        'required_for_actions = ["oa_status_comment"]\n',
    )
    settings = load_settings(config)
    assert requires_oa({"action": "finance_create_bill", "system": "kingdee"}, settings)
    assert requires_oa({"action": "oa_status_comment", "system": "dingtalk"}, settings)
    plain = load_settings(write_config(tmp_path / "c.toml", urls, "sqlite:///x.db"))
    assert not requires_oa({"action": "finance_create_bill", "system": "kingdee"}, plain)
