"""Issue #10 items 5 and 6, on SQLite and PostgreSQL against a sandbox of the test's own over HTTP.

5. Two pushers at once (two threads, each with its own engine, as two ``oafin corrections
   --apply`` processes would be) push every approved action exactly once: the sandbox counts.
6. A ledger row edited behind oafin's back (a ``done`` row set back to ``approved`` under another
   approver; the audit tail deleted and the anchors nulled; the content swapped) is named by
   ``oafin audit verify`` and refused by the push, which sends nothing.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, delete, func, select, update

from oafin.audit import verify_url
from oafin.config import Settings, load_settings
from oafin.pipeline.corrections.approval import Decision
from oafin.pipeline.corrections.model import Action
from oafin.pipeline.corrections.push import push_approved
from oafin.pipeline.corrections.service import record_decision
from oafin.sandbox_server import SandboxHandle
from oafin.systems.dingtalk.twin_render import instances as dingtalk_instances
from oafin.warehouse import audit, inflight, ledger
from oafin.warehouse.audit import audit_log
from oafin.warehouse.ledger import correction_ledger
from oafin.warehouse.store import connect
from tests import test_corrections_helpers as helpers

fresh_sandbox = helpers.fresh_sandbox
APPROVER = "审批人 (P0002)"
N_ACTIONS = 12


def _actions(dataset, n: int = N_ACTIONS) -> list[Action]:
    """Comments on ``n`` distinct OA instances (one write each, easy to count per instance)."""
    return [
        Action(
            exception_id=f"e{i:03d}",
            exception_type="STATUS_MISMATCH",
            action="oa_status_comment",
            system="dingtalk",
            target=f"dingtalk instance {inst['process_instance_id']}",
            content={
                "instance_id": inst["process_instance_id"],
                "comment_userid": helpers.COMMENT_USER,
                "text": f"oafin test comment {i}",
            },
            preview=f"comment {i}",
            claim_no=inst["business_id"],
            applicant_id="P0009",
            amount_fen=1000 + i,
        )
        for i, inst in enumerate(dingtalk_instances(dataset)[:n])
    ]


@pytest.fixture
def approved(
    warehouse_url: str, fresh_sandbox: SandboxHandle, sandbox_dataset, tmp_path
) -> Iterator[tuple[Engine, Settings, list[Action], SandboxHandle]]:
    config = helpers.write_config(
        tmp_path / "oafin.toml", (fresh_sandbox.dingtalk_url, fresh_sandbox.kingdee_url), warehouse_url
    )
    settings = load_settings(config)
    engine = connect(warehouse_url)
    actions = _actions(sandbox_dataset)
    with engine.begin() as conn:
        ledger.record_proposals(conn, [a.ledger_row() for a in actions])
    record_decision(engine, Decision(approved={a.key: APPROVER for a in actions}))
    yield engine, settings, actions, fresh_sandbox
    engine.dispose()


def _comments_per_instance(sandbox: SandboxHandle) -> Counter:
    return Counter(w["body"]["process_instance_id"] for w in sandbox.received_writes("dingtalk"))


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


# --- item 5: exactly one of two concurrent pushers pushes ------------------------------------


def test_two_pushers_at_once_push_each_action_exactly_once(approved) -> None:
    engine, settings, actions, sandbox = approved
    start = threading.Barrier(2)
    results: list[list] = [[], []]
    failures: list[BaseException] = []

    def pusher(i: int) -> None:
        own = connect(_url(engine))  # its own engine and pool, as another process would have
        try:
            start.wait()
            results[i] = push_approved(own, settings)
        except BaseException as exc:  # reported below, not lost in the thread
            failures.append(exc)
        finally:
            own.dispose()

    threads = [threading.Thread(target=pusher, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not failures, failures

    assert _comments_per_instance(sandbox) == Counter({a.content["instance_id"]: 1 for a in actions})
    outcomes = Counter(r.outcome for rs in results for r in rs)
    assert outcomes["pushed"] == len(actions)
    assert set(outcomes) <= {"pushed", "busy", "skipped_done"}
    with engine.connect() as conn:
        rows = ledger.rows(conn)
        pushes = conn.execute(select(func.count()).select_from(audit_log).where(audit_log.c.event == "push"))
        assert pushes.scalar_one() == len(actions)  # one claim each: the loser's audit row rolled back
    assert {r["status"] for r in rows} == {"done"}
    assert verify_url(_url(engine)).ok


def test_a_pending_action_whose_pusher_is_alive_is_left_alone(approved) -> None:
    engine, settings, actions, sandbox = approved
    key = actions[0].key
    with engine.begin() as conn:  # claimed by a pusher that is still waiting for the system's answer
        ledger.transition(conn, key, "pending", event="push", actor=APPROVER, attempts=1)
    with inflight.hold(engine, key) as mine:
        assert mine
        (result,) = push_approved(engine, settings, [key])
    assert result.outcome == "busy"
    assert sandbox.received_writes() == []
    (result,) = push_approved(engine, settings, [key])  # that pusher died: recovered, sent once
    assert result.outcome == "pushed"
    assert _comments_per_instance(sandbox) == Counter({actions[0].content["instance_id"]: 1})


def test_a_claim_is_compare_and_set(warehouse_engine: Engine) -> None:
    row = helpers_proposal("k1")
    with warehouse_engine.begin() as conn:
        ledger.record_proposals(conn, [row])
        ledger.transition(conn, "k1", "approved", event="approved", actor=APPROVER, approved_by=APPROVER)
        read = ledger.get(conn, "k1")
    expect = (read["status"], read["audit_seq"])
    with warehouse_engine.begin() as conn:
        ledger.transition(conn, "k1", "pending", event="push", actor=APPROVER, expect=expect, attempts=1)
    with pytest.raises(ledger.StaleRow), warehouse_engine.begin() as conn:
        ledger.transition(conn, "k1", "pending", event="push", actor=APPROVER, expect=expect, attempts=1)
    with warehouse_engine.connect() as conn:
        assert [e.event for e in audit.entries(conn, "k1")] == ["proposed", "approved", "push"]
        assert audit.verify(conn).ok


def helpers_proposal(key: str) -> dict:
    return {
        "idempotency_key": key,
        "exception_id": "e-" + key,
        "exception_type": "MISSING_IN_FINANCE",
        "action": "finance_create_bill",
        "system": "kingdee",
        "target": "kingdee ER_ExpReimbursement for OA BX1",
        "content_hash": "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",  # sha256("{}")
        "content": "{}",
        "preview": "Save then Submit",
        "claim_no": "BX1",
        "applicant_id": "P0007",
        "amount_fen": 12_345,
    }


# --- item 6: the ledger is verified against the audit chain ----------------------------------


def test_a_done_row_set_back_to_approved_is_found_and_not_pushed(approved) -> None:
    engine, settings, actions, sandbox = approved
    push_approved(engine, settings)
    sent = len(sandbox.received_writes())
    victim = actions[3].key
    with engine.begin() as conn:
        conn.execute(
            update(correction_ledger)
            .where(correction_ledger.c.idempotency_key == victim)
            .values(status="approved", approved_by="李四 (P0003)", response=None)
        )

    report = verify_url(_url(engine))
    results = {r.key: r for r in push_approved(engine, settings)}

    assert not report.ok
    assert any(victim[:16] in p and "audit trail says done" in p for p in report.problems), report.problems
    assert results[victim].outcome == "unverified"
    assert len(sandbox.received_writes()) == sent


def test_a_deleted_audit_tail_with_nulled_anchors_is_found_and_not_pushed(approved) -> None:
    engine, settings, actions, sandbox = approved
    push_approved(engine, settings)
    sent = len(sandbox.received_writes())
    with engine.begin() as conn:
        last_approval = conn.execute(
            select(func.max(audit_log.c.seq)).where(audit_log.c.event == "approved")
        ).scalar_one()
        conn.execute(delete(audit_log).where(audit_log.c.seq > last_approval))
        conn.execute(update(correction_ledger).values(status="approved", audit_seq=None, audit_hash=None))

    report = verify_url(_url(engine))
    results = push_approved(engine, settings)

    assert not report.ok
    assert any("has no audit anchor" in p for p in report.problems), report.problems
    assert {r.outcome for r in results} == {"unverified"}
    assert len(sandbox.received_writes()) == sent


def test_an_approved_rows_content_or_applicant_edited_is_not_pushed(approved) -> None:
    engine, settings, actions, sandbox = approved
    swapped, own = actions[0].key, actions[1].key
    with engine.begin() as conn:
        conn.execute(
            update(correction_ledger)
            .where(correction_ledger.c.idempotency_key == swapped)
            .values(content='{"instance_id":"X","comment_userid":"oafin-bot","text":"pay me"}')
        )
        conn.execute(  # the approver's own claim: the applicant field edited so SoD would pass
            update(correction_ledger)
            .where(correction_ledger.c.idempotency_key == own)
            .values(applicant_id="P0001")
        )

    results = {r.key: r for r in push_approved(engine, settings)}

    assert results[swapped].outcome == "unverified"
    assert results[own].outcome == "unverified"
    assert {r.outcome for k, r in results.items() if k not in (swapped, own)} == {"pushed"}
    touched = {w["body"]["process_instance_id"] for w in sandbox.received_writes("dingtalk")}
    assert touched == {a.content["instance_id"] for a in actions[2:]}
