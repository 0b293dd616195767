"""The Yonyou YonBIP connector and default mapping against the twin over real HTTP (issue #15):
what the conformance suite does not pin down on its own.

Token refreshed before ``expire``; the token answer nested as ``data.data`` (source-systems.md
§8.1); the window sent as ``periodStart``/``periodEnd`` + ``tsStart``/``tsEnd`` and half-open;
19-digit ids kept as text; the mapping's doc types from the entry lines, a void voucher (05)
reversed and a voucher of another shape quarantined, not guessed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from data_contracts.validate import validate_records
from mappings.apply import map_records
from mappings.code_tables import load_code_tables
from mappings.loader import default_mapping_path, load_mapping
from oafin.connectors import AuthError
from oafin.connectors.limits import RetryPolicy, no_limit
from oafin.records import RawRecord
from oafin.sandbox import credentials
from oafin.sandbox.chain import chain_of
from oafin.sandbox.generator import generate
from oafin.sandbox_server import SandboxHandle, running_sandbox
from oafin.systems.yonyou import PLATFORM_VOUCHERS, SYSTEM, YonyouSettings
from oafin.systems.yonyou.client import YonyouClient, months_before
from oafin.systems.yonyou.twin import TWIN as YONYOU_TWIN
from oafin.systems.yonyou.twin_render import vouchers

SHANGHAI = ZoneInfo("Asia/Shanghai")
FAST = RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0)
START, END = datetime(2026, 1, 1, tzinfo=SHANGHAI), datetime(2027, 1, 1, tzinfo=SHANGHAI)


@pytest.fixture(scope="module")
def yonyou() -> Iterator[SandboxHandle]:
    with running_sandbox(generate(seed=23, n_claims=50), twins=[YONYOU_TWIN]) as handle:
        yield handle


@pytest.fixture
def twin(yonyou: SandboxHandle) -> Iterator[SandboxHandle]:
    yonyou.reset()
    yield yonyou
    yonyou.reset()


def client(handle: SandboxHandle, **kwargs: Any) -> YonyouClient:
    return YonyouClient(
        handle.url("yonyou"),
        credentials.YONYOU_APP_KEY,
        credentials.YONYOU_APP_SECRET,
        accbook_code=credentials.YONYOU_ACCBOOK_CODE,
        limiter=no_limit,
        retry=FAST,
        **kwargs,
    )


def test_the_token_is_fetched_again_before_it_expires(twin: SandboxHandle) -> None:
    twin.state("yonyou").tokens.lifetime = 60  # the twin's tokens say expire 60
    with client(twin, page_size=20, token_refresh_margin=60) as yy:  # refresh 60 s before: at once
        records = list(yy.iter_vouchers(START, END))
    queries = twin.calls.count("queryVouchers")
    assert len(records) > 40 and queries >= 3
    assert twin.calls.count("getAccessToken") == queries  # a fresh token for every call
    assert sum(yy.stats.refreshes.values()) == 0  # never sent a dying token, so never refused


def test_a_token_nested_as_data_data_is_read(twin: SandboxHandle) -> None:
    with client(twin) as yy:
        real = str(yy._fetch_token().value)
    twin.faults.answer(
        "yonyou",
        {"code": "00000", "message": "成功", "data": {"data": {"access_token": real, "expire": 7200}}},
        path_contains="getAccessToken",
    )
    with client(twin) as yy:
        assert str(yy._fetch_token().value) == real
        assert list(yy.iter_vouchers(START, END))


def test_a_refused_token_names_the_code_and_never_retries(twin: SandboxHandle) -> None:
    twin.faults.answer("yonyou", {"code": "310005", "message": "应用不存在"}, path_contains="getAccessToken")
    with client(twin) as yy, pytest.raises(AuthError) as caught:
        list(yy.iter_vouchers(START, END))
    assert str(caught.value).startswith("yonyou getAccessToken: token refused: code 310005")
    assert "appKey" in str(caught.value)
    assert twin.calls.count("getAccessToken") == 1


def test_the_window_is_sent_as_periods_and_ts_and_is_half_open(twin: SandboxHandle) -> None:
    served = vouchers(twin.dataset)
    # the middle voucher, or the first after it whose ts differs from its predecessor's (a chain's
    # voucher is made the second its payment is)
    mid = next(
        i
        for i in range(len(served) // 2, len(served))
        if served[i]["header"]["ts"] != served[i - 1]["header"]["ts"]
    )
    middle = datetime.strptime(served[mid]["header"]["ts"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
    with client(twin, period_lookback_months=2) as yy:
        query = yy.window_query(START, middle)
        first = [r.source_id for r in yy.iter_vouchers(START, middle)]
        second = [r.source_id for r in yy.iter_vouchers(middle, END)]
    assert query["accbookCode"] == credentials.YONYOU_ACCBOOK_CODE
    assert query["periodStart"] == months_before("2026-01", 2) == "2025-11"
    assert query["periodEnd"] == (middle - timedelta(seconds=1)).strftime("%Y-%m")
    assert query["tsStart"] == "2026-01-01 00:00:00"
    assert query["tsEnd"] == (middle - timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S")
    everything = [str(v["header"]["id"]) for v in served]
    assert first + second == everything  # adjacent windows: nothing twice, nothing lost
    assert served[mid]["header"]["id"] == int(second[0])


def test_ids_are_kept_as_text_digit_for_digit(twin: SandboxHandle) -> None:
    with client(twin) as yy:
        record = next(iter(yy.iter_vouchers(START, END)))
    assert isinstance(record.payload["header"]["id"], str) and len(record.source_id) == 19
    assert record.source_id == record.payload["header"]["id"]
    assert all(isinstance(line["id"], str) and len(line["id"]) == 19 for line in record.payload["body"])


def _map(payloads: list[dict[str, Any]], kind: str = "vouchers") -> list[Any]:
    raws = [RawRecord("yonyou", kind, str(p["header"]["id"]), p) for p in payloads]
    return map_records(
        load_mapping(default_mapping_path("yonyou")), raws, load_code_tables(), {"company_code": "C01"}
    )


def test_doc_type_comes_from_the_lines_and_a_void_voucher_is_reversed(yonyou: SandboxHandle) -> None:
    month = yonyou.dataset
    served = vouchers(month)
    bill_voucher = next(v for v in served if v["header"]["billcode"] == month.bills[0].doc_no)
    pay = next(p for p in month.payments if p.bills)
    pay_voucher = next(v for v in served if v["header"]["billcode"] == pay.doc_no)
    void = copy.deepcopy(pay_voucher)
    void["header"]["voucherstatus"] = "05"
    bill, paid, reversed_ = _map([bill_voucher, pay_voucher, void])
    assert (bill.values["doc_type"], bill.values["status"]) == ("reimbursement", "audited")
    assert bill.values["department_code"] == month.bills[0].proposer.dept_code
    assert (paid.values["doc_type"], paid.values["status"]) == ("payment", "paid")
    assert paid.values["source_doc_nos"] == ",".join(b.doc_no for b in pay.bills)
    assert paid.values["paid_at"] == pay.when and paid.values["posted_at"] is None
    assert reversed_.values["status"] == "reversed" and not reversed_.issues


def test_a_voucher_of_another_shape_is_quarantined_not_guessed(yonyou: SandboxHandle) -> None:
    direct = copy.deepcopy(vouchers(yonyou.dataset)[0])
    direct["body"][1]["accsubject"] = {"code": "1002", "name": "银行存款"}  # Dr expense / Cr bank
    (record,) = _map([direct])
    assert [(i.code, i.field) for i in record.issues] == [("UNMAPPED_CODE", "doc_type")], record.issues


def test_each_kind_reads_its_own_vouchers_and_a_platform_voucher_maps_to_a_voucher(
    twin: SandboxHandle,
) -> None:
    """The ledger kind reads the month's bills and payments (subject 2241), never a chain's vouchers;
    ``platform_vouchers`` (subject 6602, 付) reads exactly the vouchers booking the platform's
    payments, each a ``voucher`` carrying the platform's code, its debit and credit totals."""
    month = twin.dataset
    settings = YonyouSettings(name="finance", system="yonyou", role="erp", base_url=twin.url("yonyou"))
    mapping = load_mapping(default_mapping_path("yonyou"))
    kinds = {k.name: k for k in SYSTEM.record_kinds(settings, mapping)}
    assert set(kinds) == {"vouchers", PLATFORM_VOUCHERS}
    env = {"app_key": credentials.YONYOU_APP_KEY, "app_secret": credentials.YONYOU_APP_SECRET}
    with SYSTEM.open(settings, env, limiter=no_limit, retry=FAST) as reader:
        ledger = list(reader.read(kinds["vouchers"], START, END))
        booked = list(reader.read(kinds[PLATFORM_VOUCHERS], START, END))
    chain = chain_of(month)
    assert sorted(r.payload["header"]["billcode"] for r in ledger) == sorted(
        d.doc_no for d in [*month.bills, *month.payments]
    )
    assert sorted(r.payload["header"]["billcode"] for r in booked) == sorted(v.number for v in chain.vouchers)
    assert {r.kind for r in booked} == {PLATFORM_VOUCHERS}

    by_number = {v.number: v for v in chain.vouchers}
    mapped = _map([r.payload for r in booked], PLATFORM_VOUCHERS)
    assert not [m.issues for m in mapped if m.issues]
    assert validate_records("finance_doc", mapped).quarantined == []
    for record in mapped:
        voucher = by_number[record.values["doc_no"]]
        assert record.values["doc_type"] == "voucher"
        assert record.values["source_doc_nos"] == voucher.payment.doc_no
        assert record.values["amount_fen"] == record.values["credit_fen"] == voucher.amount_fen
        assert record.values["posted_at"] == voucher.when
        assert record.values["period"] == voucher.period
        assert record.values["claim_no_ref"] in ("", None)
    # the chain's findings are in the vouchers served: an amount differing from the payment's, a
    # voucher booked into the month before the payment's
    assert any(v.amount_fen != v.payment.amount_fen for v in chain.vouchers)
    assert any(v.period < v.payment.when.astimezone(SHANGHAI).strftime("%Y-%m") for v in chain.vouchers)


def test_the_mapping_may_add_platform_vouchers_to_one_ledger_kind_and_no_more() -> None:
    settings = YonyouSettings(name="finance", system="yonyou", role="erp", base_url="https://yy.example")
    mapping = load_mapping(default_mapping_path("yonyou"))
    assert SYSTEM.check_mapping(settings, mapping) == []
    only_ledger = mapping.model_copy(update={"forms": {"vouchers": mapping.forms["vouchers"]}})
    assert SYSTEM.check_mapping(settings, only_ledger) == []
    two_ledgers = mapping.model_copy(update={"forms": {**mapping.forms, "more": mapping.forms["vouchers"]}})
    (problem,) = SYSTEM.check_mapping(settings, two_ledgers)
    assert "one kind of ledger vouchers" in problem and "more" in problem
    with pytest.raises(ValueError, match="platform_voucher_types"):
        YonyouSettings(
            name="finance",
            system="yonyou",
            role="erp",
            base_url="https://yy.example",
            platform_voucher_types=[],
        )


def test_a_platform_voucher_whose_debits_differ_from_its_credits_is_quarantined(
    yonyou: SandboxHandle,
) -> None:
    booked = next(v for v in vouchers(yonyou.dataset) if v["header"]["srcsystem"] == "OPENAPI")
    broken = copy.deepcopy(booked)
    broken["header"]["id"] += 1_000_000
    broken["body"][1]["credit_org"] = 1  # one yuan credited against the whole debit
    mapped = _map([booked, broken], PLATFORM_VOUCHERS)
    result = validate_records("finance_doc", mapped)
    assert len(result.valid) == 1
    (held,) = result.quarantined
    assert any(i.code == "CONTRACT_VIOLATION" and "voucher_balanced" in i.message for i in held.issues), (
        held.issues
    )
