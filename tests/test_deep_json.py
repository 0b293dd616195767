"""Deeply nested JSON is a bad record, not a crash (issue #10 item 12).

The sandbox's ``deep_json`` fault puts a value nested 100,000 levels deep inside one DingTalk
instance: the connector names the call, lands the record as unreadable, the run carries on, and
standardisation quarantines exactly those records with the reason.
"""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, select

from oafin.connectors import RetryPolicy
from oafin.connectors.errors import UNREADABLE_KEY
from oafin.connectors.http import JsonTooDeepError, parse_json
from oafin.connectors.limits import no_limit
from oafin.pipeline.extract import extract_source
from oafin.pipeline.standardize import map_source, store_standard
from oafin.records import RawRecord
from oafin.sandbox import credentials
from oafin.systems.dingtalk.client import DingTalkClient
from oafin.systems.dingtalk.twin_render import instances as dingtalk_instances
from oafin.warehouse.schema import metadata, quarantine, raw_record
from oafin.warehouse.store import PayloadTooDeepError, canonical_json, land_raw
from tests.test_orchestration_support import write_config

SHANGHAI = ZoneInfo("Asia/Shanghai")
EVERYTHING = (datetime(2000, 1, 1, tzinfo=SHANGHAI), datetime(2100, 1, 1, tzinfo=SHANGHAI))


def _deep(levels: int) -> list:
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


def test_the_decoder_refuses_deep_json_with_a_value_error() -> None:
    with pytest.raises(JsonTooDeepError):
        parse_json("[" * 100_000 + "]" * 100_000)
    with pytest.raises(JsonTooDeepError):
        parse_json('{"a": ' + "[" * 200 + "]" * 200 + "}")
    assert parse_json('{"a": [[1.5]]}') == {
        "a": [[json.loads("1.5", parse_float=__import__("decimal").Decimal)]]
    }


def test_a_deep_instance_is_landed_as_unreadable_naming_the_call(sandbox_fresh, sandbox_dataset) -> None:
    sandbox_fresh.faults.inject("dingtalk", "deep_json", times=2)
    with DingTalkClient(
        sandbox_fresh.dingtalk_url,
        credentials.DINGTALK_APP_KEY,
        credentials.DINGTALK_APP_SECRET,
        retry=RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0),
        limiter=no_limit,
    ) as dt:
        records = list(dt.iter_instances(sandbox_dataset.process_code, *EVERYTHING))
    assert len(records) == len(dingtalk_instances(sandbox_dataset))  # the run carried on
    bad = [r for r in records if UNREADABLE_KEY in r.payload]
    assert len(bad) == 2
    for record in bad:
        reason = record.payload[UNREADABLE_KEY]
        assert reason.startswith(f"dingtalk processinstance/get(process_instance_id={record.source_id}): ")
        assert "nested" in reason
    assert dt.stats.retries.get("processinstance/get", 0) == 0  # not retried: it would not heal


def test_a_deep_payload_never_raises_recursion_error_when_landed(tmp_path) -> None:
    with pytest.raises(PayloadTooDeepError):
        canonical_json({"x": _deep(100_000)})
    engine = create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    metadata.create_all(engine)
    with engine.begin() as conn:
        land_raw(
            conn,
            [RawRecord("dingtalk", "P", "i1", {"x": _deep(100_000)}), RawRecord("dingtalk", "P", "i2", {})],
        )
    with engine.connect() as conn:
        payloads = dict(conn.execute(select(raw_record.c.source_id, raw_record.c.payload)).all())
    assert json.loads(payloads["i1"])[UNREADABLE_KEY] == "dingtalk P i1: payload nested too deeply to store"
    assert json.loads(payloads["i2"]) == {}
    engine.dispose()


def test_deep_instances_are_quarantined_with_the_reason_and_the_rest_go_on(
    sandbox_fresh, sandbox_dataset, tmp_path
) -> None:
    from oafin.config import load_settings
    from oafin.periods import Period
    from oafin.pipeline.runtime import code_tables, warehouse

    sandbox_fresh.faults.inject("dingtalk", "deep_json", times=2)
    settings = load_settings(write_config(tmp_path, sandbox_fresh, f"sqlite:///{tmp_path / 'w.db'}"))
    engine = warehouse(settings.warehouse_url)
    start, end = Period.parse(sandbox_dataset.period).extraction_window(settings.reconcile.lookback_days)
    landed = extract_source(engine, settings, "oa", start, end)
    assert not sandbox_fresh.faults.pending()
    records = map_source(engine, settings, settings.source("oa"), code_tables(settings))
    summary = store_standard(engine, settings.source("oa"), records)
    with engine.connect() as conn:
        rows = conn.execute(select(quarantine.c.source_id, quarantine.c.reasons)).all()
    unreadable = {sid: json.loads(r) for sid, r in rows if "record not readable" in r}
    assert len(unreadable) == 2
    for sid, reasons in unreadable.items():
        assert len(reasons) == 1 and f"process_instance_id={sid}" in reasons[0]["message"]
    assert summary.valid + summary.quarantined == landed.landed
    assert summary.valid > 0
    engine.dispose()
