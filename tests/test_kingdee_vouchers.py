"""Kingdee vouchers (GL_VOUCHER) over real HTTP: one record per voucher from ExecuteBillQuery's per-line
rows, mapped onto finance_doc (doc_type voucher), debit equal to credit as a data contract."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime

import pytest

from data_contracts.validate import validate_records
from mappings.apply import map_records
from mappings.code_tables import load_code_tables
from mappings.loader import default_mapping_path, load_mapping
from oafin.connectors.limits import RetryPolicy
from oafin.records import RawRecord
from oafin.sandbox.chain import chain_of
from oafin.sandbox.dataset import Dataset
from oafin.sandbox_server import SandboxHandle, running_sandbox
from oafin.systems.kingdee import SYSTEM
from oafin.systems.kingdee.twin import TWIN

START = datetime.fromisoformat("2026-10-01T00:00:00+08:00")
END = datetime.fromisoformat("2026-11-01T00:00:00+08:00")


@pytest.fixture(scope="module")
def kingdee(sandbox_dataset: Dataset) -> Iterator[SandboxHandle]:
    with running_sandbox(sandbox_dataset, twins=[TWIN]) as handle:
        yield handle


def read_vouchers(handle: SandboxHandle, page_size: int) -> list[RawRecord]:
    mapping = load_mapping(default_mapping_path("kingdee"))
    kind = next(k for k in SYSTEM.record_kinds(None, mapping) if k.name == "GL_VOUCHER")  # type: ignore[arg-type]
    settings = SYSTEM.settings_model(  # the sandbox's rate (the demo's), not the 10/s default for an ERP
        name="finance",
        system="kingdee",
        role="erp",
        base_url=handle.url("kingdee"),
        page_size=page_size,
        rate_limit_per_second=500,
    )
    creds = {k: str(v) for k, v in TWIN.credentials.items() if k in SYSTEM.secret_fields}
    with SYSTEM.open(
        settings, creds, retry=RetryPolicy(max_attempts=4, base_delay=0.0, max_delay=0.0)
    ) as reader:
        return list(reader.read(kind, START, END))


def test_each_voucher_is_one_record_with_its_lines_whatever_the_paging(
    kingdee: SandboxHandle, sandbox_dataset: Dataset
) -> None:
    kingdee.reset()
    expected = [v for v in chain_of(sandbox_dataset).vouchers if START <= v.when < END]
    small = read_vouchers(kingdee, page_size=3)  # a voucher's two lines fall on two pages
    kingdee.faults.inject("kingdee", "duplicate_record", path_contains="ExecuteBillQuery", times=5)
    faulted = read_vouchers(kingdee, page_size=2000)
    kingdee.reset()
    for records in (small, faulted):
        assert [r.source_id for r in records] == [str(v.voucher_id) for v in expected]
        assert all(len(r.payload["FEntity"]) == 2 for r in records)
    assert [r.payload for r in small] == [r.payload for r in faulted]


def test_vouchers_map_to_finance_docs_of_type_voucher(
    kingdee: SandboxHandle, sandbox_dataset: Dataset
) -> None:
    kingdee.reset()
    raws = read_vouchers(kingdee, page_size=50)
    by_id = {str(v.voucher_id): v for v in chain_of(sandbox_dataset).vouchers}
    mapped = map_records(load_mapping(default_mapping_path("kingdee")), raws, load_code_tables(), {})
    assert mapped and not [m.issues for m in mapped if m.issues]
    for raw, record in zip(raws, mapped, strict=True):
        voucher = by_id[raw.source_id]
        values = record.values
        assert values["doc_type"] == "voucher"
        assert (values["doc_no"], values["amount_fen"], values["credit_fen"]) == (
            voucher.number,
            voucher.amount_fen,
            voucher.amount_fen,
        )
        assert values["source_doc_nos"] == voucher.payment.doc_no
        assert values["period"] == voucher.period
    assert validate_records("finance_doc", mapped).quarantined == []


def test_a_voucher_whose_debits_differ_from_its_credits_is_quarantined(kingdee: SandboxHandle) -> None:
    kingdee.reset()
    raw = read_vouchers(kingdee, page_size=50)[0]
    lines = [dict(line) for line in raw.payload["FEntity"]]
    lines[1]["FCREDIT"] = 1  # one yuan credited against the whole debit
    broken = dataclasses.replace(raw, payload={**raw.payload, "FEntity": lines})
    mapped = map_records(load_mapping(default_mapping_path("kingdee")), [raw, broken], load_code_tables(), {})
    result = validate_records("finance_doc", mapped)
    assert len(result.valid) == 1
    (held,) = result.quarantined
    assert any(i.code == "CONTRACT_VIOLATION" and "voucher_balanced" in i.message for i in held.issues), (
        held.issues
    )
