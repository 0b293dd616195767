"""Bad input: malformed records go to quarantine with a reason, nothing crashes, and nothing a
record carries reaches a report cell as a live formula.

Property-based (hypothesis): a real approved DingTalk instance from the generator, with one field
broken at a time (wrong types, missing fields, huge strings, control characters, lone
surrogates, negative and absurd amounts, dates in 1900 and 9999, SQL and ``=HYPERLINK(...)``
strings), mapped, held to its contract and stored in a real warehouse (SQLite and PostgreSQL).
"""

from __future__ import annotations

import copy
import csv
import io
import json
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from mappings.apply import map_records
from mappings.code_tables import load_code_tables
from mappings.loader import default_mapping_path, load_mapping
from oafin.config import source_settings
from oafin.pipeline.extract import extract_source
from oafin.pipeline.standardize import map_source, store_standard
from oafin.records import RawRecord
from oafin.reporting.exceptions_csv import report_frame
from oafin.sandbox.generator import generate
from oafin.systems.dingtalk.twin_render import instances as dingtalk_instances
from oafin.warehouse.schema import STANDARD_TABLES, quarantine
from tests.test_orchestration_support import write_config

FORMULAS = ['=HYPERLINK("http://evil.example","点我")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "=1+1"]
SQL = ["'; DROP TABLE expense_claim;--", '" OR 1=1 --', "Robert'); DELETE FROM quarantine; --"]
CONTROL = ["\x00", "\x07bell", "a\x1b[31mred", "\x7f", "x\x0b\x0cy"]
UNDECODABLE = ["\ud800", "ab\udfffcd", "\ufffd\ufffd"]  # lone surrogates; what invalid UTF-8 became
DATES = ["1900-01-01 00:00:00", "9999-12-31 23:59:59", "2026-02-30 10:00:00", "yesterday", "", "0"]
AMOUNTS = ["-12.00", "-0.01", "0", "99999999999999.99", "1e308", "NaN", "Infinity", "12,,3", "１２a"]

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.text(max_size=30),
    st.text(min_size=2100, max_size=2200),
    st.sampled_from(FORMULAS + SQL + CONTROL + UNDECODABLE + DATES + AMOUNTS),
    st.builds(lambda a, b: a + b, st.sampled_from(CONTROL + UNDECODABLE), st.text(max_size=10)),
)
TOP_FIELDS = ["business_id", "originator_userid", "title", "create_time", "finish_time", "status", "result"]
FORM_FIELDS = ["报销金额", "费用类型", "所属部门", "预算编号", "报销事由", "发票明细"]


@pytest.fixture(scope="module")
def good():
    """An approved instance that maps and passes its contract, and the mapping machinery."""
    dataset = generate(seed=7, n_claims=50)
    mapping = load_mapping(default_mapping_path("dingtalk"))
    tables = load_code_tables()
    raws = [
        RawRecord("dingtalk", dataset.process_code, i["process_instance_id"], copy.deepcopy(i))
        for i in dingtalk_instances(dataset)
        if i["status"] == "COMPLETED" and i["result"] == "agree"
    ]
    mapped = map_records(mapping, raws, tables, {"company_code": "C01"})
    ok = next(r for r, m in zip(raws, mapped, strict=True) if not m.issues)
    return ok, mapping, tables


def _amount_ok(value: object) -> bool:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return False  # a JSON number is as good as numeric text; a list, a map or true is not
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return False
    return amount.is_finite() and Decimal("0") < amount <= Decimal("1000000000")


# (checked on the stripped value: the mapping strips surrounding whitespace, \x0b-\x0c and
# \x1c-\x1f included, before anything is stored)
_BAD_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffd]")
EPOCH_MS_2000, EPOCH_MS_2027 = 946_684_800_000, 1_830_297_600_000


def _timestamp_ok(value: object) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return EPOCH_MS_2000 <= value < EPOCH_MS_2027  # DingTalk also sends epoch ms
    if not isinstance(value, str):
        return False
    try:
        return 2000 <= datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S").year <= 2026
    except ValueError:
        return False


def must_quarantine(where: str, field: str, value: object, removed: bool) -> bool:
    """Breakages no record may carry into the standard tables (other junk may be legitimate data,
    such as a title that looks like a formula: that one must only be shown escaped)."""
    if removed:
        return field in ("business_id", "originator_userid", "create_time", "finish_time")
    if where == "form" and field == "报销金额":
        return not _amount_ok(value)
    if where == "form" and field == "报销事由":  # the claim's title in the standard
        return isinstance(value, str) and (bool(_BAD_CHAR.search(value.strip())) or len(value) > 2000)
    if where == "form":
        return False
    if field in ("create_time", "finish_time"):
        return not _timestamp_ok(value)
    if (
        field in ("business_id", "originator_userid")
        and isinstance(value, str)
        and _BAD_CHAR.search(value.strip())
    ):
        return True
    if field == "business_id":
        return value is None or (isinstance(value, str) and (not value.strip() or len(value) > 200))
    return False


def _break(payload: dict, where: str, field: str, value: object, remove: bool) -> None:
    if where == "top":
        if remove:
            payload.pop(field, None)
        else:
            payload[field] = value
        return
    for comp in payload["form_component_values"]:
        if comp["name"] == field:
            comp["value"] = value


def _stored(engine, source_id: str) -> tuple[list[dict], list[dict]]:
    claims, q = STANDARD_TABLES["expense_claim"], quarantine
    with engine.connect() as conn:
        valid = [
            dict(r)
            for r in conn.execute(
                select(claims).where(claims.c.claim_id == f"dingtalk:{source_id}")
            ).mappings()
        ]
        held = [dict(r) for r in conn.execute(select(q).where(q.c.source_id == source_id)).mappings()]
    return valid, held


def _report_cells(frame: pd.DataFrame) -> list[str]:
    text = io.StringIO()
    report_frame(frame).to_csv(text, index=False)
    return [cell for row in csv.reader(io.StringIO(text.getvalue())) for cell in row]


@settings(
    max_examples=120,
    deadline=None,
    database=None,
    derandomize=True,  # the same examples every run: a stable suite
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    where_field=st.one_of(
        st.tuples(st.just("top"), st.sampled_from(TOP_FIELDS)),
        st.tuples(st.just("form"), st.sampled_from(FORM_FIELDS)),
    ),
    value=junk,
    remove=st.booleans(),
)
def test_a_broken_record_is_quarantined_with_a_reason_and_never_crashes(
    good, warehouse_engine, where_field, value, remove
):
    raw, mapping, tables = good
    where, field = where_field
    remove = remove and where == "top"
    payload = copy.deepcopy(raw.payload)
    _break(payload, where, field, value, remove)
    broken = RawRecord(raw.system, raw.kind, raw.source_id, payload)
    source = source_settings({"name": "oa", "system": "dingtalk", "base_url": "http://unused"})

    records = map_records(mapping, [broken], tables, {"company_code": "C01"})
    summary = store_standard(warehouse_engine, source, records)  # must not raise
    valid, held = _stored(warehouse_engine, raw.source_id)

    assert len(valid) + len(held) == 1, "the record is lost or stored twice"
    assert summary.valid + summary.quarantined == 1
    if held:
        reasons = json.loads(held[0]["reasons"])
        assert reasons and all(r["message"] for r in reasons)
    if must_quarantine(where, field, value, remove):
        assert held, f"{where} {field}={value!r:.60} was let through"

    # Whatever the record carried, a report shows it as text, never as a formula.
    row = valid[0] if valid else held[0]
    shown = pd.DataFrame(
        [
            {
                "exception_id": "x",
                "exception_type": "CONTRACT_VIOLATION",
                "claim_no": row.get("claim_no") or row.get("business_key"),
                "person_id": row.get("applicant_id") or row.get("person_id"),
                "detail": str(row.get("title") or row.get("reasons")),
                "status": "open",
                "first_seen": pd.Timestamp("2026-10-31T16:00Z"),
                "last_seen": pd.Timestamp("2026-10-31T16:00Z"),
            }
        ]
    )
    for cell in _report_cells(shown):
        assert not cell.startswith(("=", "+", "-", "@")) or cell.lstrip("-").replace(".", "").isdigit(), cell


def test_invalid_utf8_in_a_page_quarantines_those_records_only(sandbox_fresh, sandbox_dataset, tmp_path):
    """Bytes that are not UTF-8 inside a served page: the page still decodes (the bad bytes
    become U+FFFD), the run goes on, and exactly the records carrying them are quarantined."""
    from oafin.config import load_settings
    from oafin.periods import Period
    from oafin.pipeline.runtime import code_tables, warehouse

    sb = sandbox_fresh
    sb.faults.inject("dingtalk", "invalid_utf8", times=3)
    settings = load_settings(write_config(tmp_path, sb, f"sqlite:///{tmp_path / 'w.db'}"))
    engine = warehouse(settings.warehouse_url)
    start, end = Period.parse(sandbox_dataset.period).extraction_window(settings.reconcile.lookback_days)
    landed = extract_source(engine, settings, "oa", start, end)
    assert not sb.faults.pending()
    records = map_source(engine, settings, settings.source("oa"), code_tables(settings))
    summary = store_standard(engine, settings.source("oa"), records)
    with engine.connect() as conn:
        held = {
            sid: json.loads(r)
            for sid, r in conn.execute(select(quarantine.c.source_id, quarantine.c.reasons))
        }
    undecodable = {sid for sid, r in held.items() if any("not valid UTF-8" in i["message"] for i in r)}
    engine.dispose()

    # The same month read without the fault: exactly its quarantine plus the three, nothing else.
    clean = load_settings(write_config(tmp_path / "clean", sb, f"sqlite:///{tmp_path / 'clean.db'}"))
    clean_engine = warehouse(clean.warehouse_url)
    extract_source(clean_engine, clean, "oa", start, end)
    store_standard(
        clean_engine,
        clean.source("oa"),
        map_source(clean_engine, clean, clean.source("oa"), code_tables(clean)),
    )
    with clean_engine.connect() as conn:
        held_clean = set(conn.execute(select(quarantine.c.source_id)).scalars())
    clean_engine.dispose()

    assert len(undecodable) == 3
    assert summary.valid + summary.quarantined == landed.landed
    assert set(held) == held_clean | undecodable
    assert summary.quarantined == len(held)
