"""Hesine/Ekuaibao specifics the conformance suite does not cover, against its twin over real HTTP:
the money object, the token renewed before it expires, deleted documents, and the write-back
actions (erpVoucher only in ``paid``, a comment answered 204 with no body)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

import pytest

from mappings.parse import ParseError, parse_money_object
from oafin.connectors import SourceError
from oafin.connectors.limits import RetryPolicy, no_limit
from oafin.sandbox.dataset import Dataset
from oafin.sandbox_server import SandboxHandle, running_sandbox
from oafin.systems.base import ActionInput, CannotPropose
from oafin.systems.hesine import SYSTEM
from oafin.systems.hesine.client import HesineClient
from oafin.systems.hesine.twin import TWIN, HesineState
from oafin.systems.hesine.twin_render import flow_id

FAST = RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0)


@pytest.fixture(scope="module")
def hesine(sandbox_dataset: Dataset) -> Iterator[SandboxHandle]:
    with running_sandbox(sandbox_dataset, twins=[TWIN]) as handle:
        yield handle


def client(handle: SandboxHandle, **kwargs: object) -> HesineClient:
    creds = TWIN.credentials
    return HesineClient(
        handle.url("hesine"),
        str(creds["app_key"]),
        str(creds["app_security"]),
        retry=FAST,
        limiter=no_limit,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("money", "fen"),
    [
        ({"standard": "33.00", "standardScale": 2}, 3300),
        ({"standard": "33.5", "standardScale": "2"}, 3350),
        ({"standard": "1,234.56", "standardScale": 2, "standardStrCode": "CNY"}, 123456),
        ({"standard": "７.０１"}, 701),
    ],
)
def test_the_money_object_is_read_with_decimal_whatever_its_scale_is_written_as(
    money: dict, fen: int
) -> None:
    assert parse_money_object(money) == fen


@pytest.mark.parametrize(
    "money",
    [
        {"standard": "33.005", "standardScale": 2},  # more decimals than the scale says
        {"standardScale": 2},
        {"standard": "12.00", "standardStrCode": "USD"},
        "33.00",
    ],
)
def test_a_money_object_that_cannot_be_read_exactly_is_refused(money: object) -> None:
    with pytest.raises(ParseError):
        parse_money_object(money)


def test_the_token_is_renewed_before_it_expires_and_the_old_one_dies(hesine: SandboxHandle) -> None:
    hesine.reset()
    hesine.set_token_lifetime(2.0, "hesine")
    state = hesine.state("hesine")
    assert isinstance(state, HesineState)
    with client(hesine, token_refresh_margin=1.5) as c:
        credential, generation = c.auth.cache.get()  # fetched with getAccessToken
        first = str(credential.value)
        time.sleep(0.6)  # past the cache's deadline (lifetime 2 s less the 1.5 s margin)
        second = str(c.auth.cache.get()[0].value)
        assert c.auth.cache.get()[1] == generation + 1
    assert second != first
    assert hesine.calls.count("/auth/refreshToken") == 1, "a living token is refreshed, not re-fetched"
    assert hesine.calls.count("/auth/getAccessToken") == 1
    assert state.tokens.check(first) == "unknown", "refreshing changes both tokens (§6.1)"
    hesine.reset()


def test_deleted_documents_are_read_apart_and_land_as_deleted(
    hesine: SandboxHandle, sandbox_dataset: Dataset
) -> None:
    hesine.reset()
    start = datetime.fromisoformat("2026-10-01T00:00:00+08:00")
    end = datetime.fromisoformat("2026-11-01T00:00:00+08:00")
    with client(hesine) as c:
        records = list(c.iter_documents("expense", start, end))
    deleted = [r for r in records if r.payload["active"] is False]
    assert len(deleted) == 3 and all(r.source_id.endswith("D") for r in deleted)
    assert records[-3:] == deleted, "live documents first, then the deleted ones"
    assert len({r.source_id for r in records}) == len(records)


def _paid_and_unpaid(state: HesineState) -> tuple[dict, dict]:
    payments = state.by_type["payment"]
    paid = next(d for d in payments if d["state"] == "paid")
    unpaid = next(d for d in state.by_type["expense"] if d["state"] == "paying")
    return paid, unpaid


def test_the_voucher_number_is_written_back_only_to_a_paid_document(hesine: SandboxHandle) -> None:
    hesine.reset()
    state = hesine.state("hesine")
    assert isinstance(state, HesineState)
    paid, unpaid = _paid_and_unpaid(state)
    action = SYSTEM.write_actions["expense_write_voucher_no"]
    doc = {"doc_id": f"hesine:payment:{paid['id']}", "doc_no": paid["form"]["code"], "status": "paid"}
    voucher = {"doc_no": "JZ202610-7777", "posted_at": datetime.fromisoformat("2026-10-20T10:00:00+08:00")}
    plan = action.plan(ActionInput(claim={}, doc=doc, options={"voucher": voucher}))
    writes_before = len(state.writes)
    with client(hesine) as c:
        assert action.landed(c, plan.content, "m1", {}) is None
        reply = action.send(c, plan.content, "m1", {})
        assert reply == {"value": True}
        assert action.landed(c, plan.content, "m1", {}) == {"voucherNo": "JZ202610-7777"}
        with pytest.raises(SourceError, match=r"^hesine flow/data/erpVoucher.*HTTP 400.*单据不是已支付状态"):
            c.write_voucher(unpaid["id"], "JZ202610-7778", voucher["posted_at"])
    assert state.writes[writes_before]["body"]["voucher"][0]["voucherNo"] == "JZ202610-7777"
    assert len(state.writes) == writes_before + 1, "the refused write was not recorded as received"
    with pytest.raises(CannotPropose, match="paid only"):
        action.plan(ActionInput(claim={}, doc={**doc, "status": "received"}, options={"voucher": voucher}))


def test_a_comment_answered_204_with_no_body_is_a_success_and_is_found_again(
    hesine: SandboxHandle, sandbox_dataset: Dataset
) -> None:
    hesine.reset()
    bill = sandbox_dataset.bills[0]
    action = SYSTEM.write_actions["expense_comment"]
    doc = {"doc_id": f"hesine:expense:{flow_id(bill.doc_id)}", "doc_no": bill.doc_no}
    plan = action.plan(
        ActionInput(
            claim={},
            doc=doc,
            text="凭证已生成",
            options={"comment_staff_id": "oafinSandboxCorp:ID01oaf00001"},
        )
    )
    with client(hesine) as c:
        assert action.send(c, plan.content, "[oafin:abc]", {}) == {"status": "204 no content"}
        assert action.landed(c, plan.content, "[oafin:abc]", {}) is not None
        assert action.landed(c, plan.content, "[oafin:other]", {}) is None
    assert [c for c in hesine.calls if "/comment/" in c.path][-1].status == 204


def test_approvals_go_ten_flow_ids_a_call_a_minute_apart(
    hesine: SandboxHandle, sandbox_dataset: Dataset
) -> None:
    hesine.reset()
    state = hesine.state("hesine")
    assert isinstance(state, HesineState)
    now = [1000.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    ids = [flow_id(b.doc_id) for b in sandbox_dataset.bills[:23]]
    before = len(state.writes)
    with client(hesine, clock=lambda: now[0], sleep=sleep) as c:
        answers = c.approve(ids, "oafinSandboxCorp:ID01oaf00001", "freeflow.agree", "同意")
    calls = [w for w in state.writes[before:] if w["call"] == "backlog/data"]
    assert [len(w["flowIds"]) for w in calls] == [10, 10, 3]
    assert [f for w in calls for f in w["flowIds"]] == ids
    assert waits == [60.0, 60.0], "each call after the first waits out the minute"
    assert [a["value"]["success"] for a in answers] == [10, 10, 3]
    # the twin refuses a second call within the minute when it keeps time
    state.approve_spacing = 60.0
    state._last_approve = float("-inf")
    try:
        with client(hesine) as c:
            assert (
                c.approve(ids[:2], "oafinSandboxCorp:ID01oaf00001", "freeflow.agree")[0]["value"]["success"]
                == 2
            )
            c._last_approve = float("-inf")  # as a second client would: no memory of the first call
            with pytest.raises(SourceError, match=r"^hesine backlog/data.*HTTP 400.*1分钟"):
                c.approve(ids[2:4], "oafinSandboxCorp:ID01oaf00001", "freeflow.agree")
    finally:
        state.approve_spacing = 0.0
