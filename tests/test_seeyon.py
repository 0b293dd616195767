"""Seeyon A8/V5 (issue #13): what the conformance suite does not cover.

- a mapping that names a field the form's definition lacks fails before any record is read,
  naming the field and the fields the form has, with their display names;
- a closed REST whitelist (HTTP 401 with an HTML page, real-clients.md §2.4) is reported as
  exactly that, with what to ask the Seeyon administrator, never as "not JSON";
- the settings' documented defaults, the whole-day date range and its undocumented end.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mappings.loader import default_mapping_path, load_mapping
from oafin.connectors import AuthError
from oafin.connectors.limits import no_limit
from oafin.sandbox.dataset import Dataset
from oafin.sandbox_server import SandboxHandle, running_sandbox
from oafin.systems.base import check_keys
from oafin.systems.kingdee.twin import TWIN as KINGDEE_TWIN
from oafin.systems.seeyon import SYSTEM, SeeyonSettings
from oafin.systems.seeyon.client import MappingFieldsMissingError, SeeyonClient, WhitelistClosedError
from oafin.systems.seeyon.twin import TWIN, SeeyonState
from tests.conformance.systems import FAST

SHANGHAI = ZoneInfo("Asia/Shanghai")
CREDS = {k: str(v) for k, v in TWIN.credentials.items()}


@pytest.fixture(scope="module")
def seeyon(sandbox_dataset: Dataset) -> Iterator[SandboxHandle]:
    with running_sandbox(sandbox_dataset, twins=[TWIN, KINGDEE_TWIN]) as handle:
        yield handle


@pytest.fixture
def fresh(seeyon: SandboxHandle) -> Iterator[SandboxHandle]:
    seeyon.reset()
    yield seeyon
    state = seeyon.state("seeyon")
    assert isinstance(state, SeeyonState)
    state.whitelist_closed = False
    seeyon.reset()


def month(dataset: Dataset) -> tuple[datetime, datetime]:
    year, mon = map(int, dataset.period.split("-"))
    return datetime(year, mon, 1, tzinfo=SHANGHAI), datetime(
        year + mon // 12, mon % 12 + 1, 1, tzinfo=SHANGHAI
    )


def settings(url: str, **keys: object) -> SeeyonSettings:
    return SeeyonSettings(name="oa", system="seeyon", role="oa", base_url=url, **keys)  # type: ignore[arg-type]


def edited_mapping(tmp_path: Path, *replacements: tuple[str, str]) -> object:
    text = default_mapping_path("seeyon").read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "seeyon.yaml"
    path.write_text(text, encoding="utf-8")
    return load_mapping(path)


def read_all(handle: SandboxHandle, mapping: object, **keys: object) -> list[object]:
    source = settings(handle.url("seeyon"), **keys)
    (kind,) = SYSTEM.record_kinds(source, mapping)
    start, end = month(handle.dataset)
    with SYSTEM.open(source, CREDS, retry=FAST, limiter=no_limit) as reader:
        return list(reader.read(kind, start, end))


def test_the_default_mapping_reads_the_month(fresh: SandboxHandle) -> None:
    records = read_all(fresh, load_mapping(default_mapping_path("seeyon")))
    start, end = month(fresh.dataset)
    assert len(records) == sum(start <= c.created < end for c in fresh.dataset.claims)
    assert fresh.calls.count("/flow/state/") == len(records)


@pytest.mark.parametrize(
    ("old", "new", "missing"),
    [
        ("masterData.field0003.showValue", "masterData.field0042.showValue", "field0042"),
        ("{label: field0016,", "{label: field0061,", "formson_0232.field0061"),
        ("form: formson_0232", "form: formson_0999", "formson_0999"),
    ],
    ids=["master field", "sub-table cell", "sub-table"],
)
def test_a_mapping_naming_a_field_the_form_lacks_fails_before_any_record(
    fresh: SandboxHandle, tmp_path: Path, old: str, new: str, missing: str
) -> None:
    mapping = edited_mapping(tmp_path, (old, new))
    assert SYSTEM.check_mapping(settings(fresh.url("seeyon")), mapping) == []  # needs the server to tell
    with pytest.raises(MappingFieldsMissingError) as caught:
        read_all(fresh, mapping)
    message = str(caught.value)
    assert message.startswith("seeyon cap4/form/soap/export(templateCode=BX001, page=1): "), message
    assert f"names {missing}," in message, message
    # the fields that exist, with their display names, master and sub-table
    assert "field0003 (报销金额)" in message and "sub-table formson_0232: field0010 (发票代码)" in message
    assert not caught.value.retryable
    # before extraction: one export call, no record's flow state read
    assert fresh.calls.count("/cap4/form/soap/export") == 1
    assert fresh.calls.count("/flow/state/") == 0
    hint = SYSTEM.hint(caught.value, settings(fresh.url("seeyon")))
    assert hint is not None and "mapping file" in hint


@pytest.mark.parametrize("call", ["token", "export"])
def test_a_closed_rest_whitelist_says_so_and_what_to_ask(fresh: SandboxHandle, call: str) -> None:
    state = fresh.state("seeyon")
    assert isinstance(state, SeeyonState)
    start, end = month(fresh.dataset)
    with SeeyonClient(
        fresh.url("seeyon"), CREDS["user_name"], CREDS["password"], retry=FAST, limiter=no_limit
    ) as client:
        if call == "export":  # a token issued before the whitelist closed
            list(client.iter_form_records("BX001", start, start.replace(hour=1)))
        state.whitelist_closed = True
        with pytest.raises(WhitelistClosedError) as caught:
            list(client.iter_form_records("BX001", start, end))
    message = str(caught.value)
    expected_call = "token" if call == "token" else "cap4/form/soap/export"
    assert message.startswith(f"seeyon {expected_call}"), message
    assert "REST whitelist" in message and "administrator" in message and "IP address" in message
    assert "not JSON" not in message.replace("instead of JSON", "")
    assert not caught.value.retryable
    hint = SYSTEM.hint(caught.value, settings(fresh.url("seeyon")))
    assert hint is not None and "whitelist" in hint and "OAFIN_SOURCE" not in hint
    # one answer was enough: never retried, never a token refetch loop
    assert sum(c.status == 401 for c in fresh.calls) == 1


def test_wrong_rest_password_is_an_auth_error_not_the_whitelist(fresh: SandboxHandle) -> None:
    start, _ = month(fresh.dataset)
    client = SeeyonClient(fresh.url("seeyon"), CREDS["user_name"], "wrong", retry=FAST, limiter=no_limit)
    with client, pytest.raises(AuthError) as caught:
        list(client.iter_form_records("BX001", start, start.replace(hour=6)))
    assert not isinstance(caught.value, WhitelistClosedError)
    assert str(caught.value).startswith("seeyon token"), str(caught.value)
    hint = SYSTEM.hint(caught.value, settings(fresh.url("seeyon")))
    assert hint is not None and "OAFIN_SOURCE_OA_USER_NAME" in hint


def test_a_template_the_mapping_does_not_map_is_a_config_problem() -> None:
    mapping = load_mapping(default_mapping_path("seeyon"))
    problems = SYSTEM.check_mapping(settings("http://oa", template_code="BX777"), mapping)
    assert problems and "BX777" in problems[0] and "BX001" in problems[0]


def test_settings_defaults_are_the_documented_ones_and_typos_are_refused() -> None:
    s = settings("http://oa")
    assert (s.rest_path, s.template_code, s.date_format, s.token_in) == (
        "/seeyon/rest",
        "BX001",
        "%Y-%m-%d",
        "header",
    )
    (problem,) = check_keys(SeeyonSettings, {"templat_code": "X"}, "sources[0]")
    assert "template_code" in problem
    with pytest.raises(ValueError):
        SeeyonSettings(name="oa", system="seeyon", role="oa", base_url="x", rightid="1.2")  # type: ignore[call-arg]


def test_the_date_range_covers_the_window_in_china_days() -> None:
    start = datetime(2026, 10, 1, tzinfo=SHANGHAI)
    end = datetime(2026, 10, 8, tzinfo=SHANGHAI)
    inclusive = SeeyonClient("http://oa", "u", "p")
    exclusive = SeeyonClient("http://oa", "u", "p", end_date_inclusive=False)
    try:
        assert inclusive.date_range(start, end) == ("2026-10-01", "2026-10-07")
        assert exclusive.date_range(start, end) == ("2026-10-01", "2026-10-08")
        # a UTC window: 2026-09-30T16:00Z is already October 1st in China
        utc = ZoneInfo("UTC")
        assert inclusive.date_range(
            datetime(2026, 9, 30, 16, tzinfo=utc), datetime(2026, 10, 1, 16, tzinfo=utc)
        ) == (
            "2026-10-01",
            "2026-10-01",
        )
    finally:
        inclusive.close()
        exclusive.close()


def test_the_end_date_setting_reads_the_same_records(fresh: SandboxHandle) -> None:
    mapping = load_mapping(default_mapping_path("seeyon"))
    default = read_all(fresh, mapping)
    wider = read_all(fresh, mapping, end_date_inclusive=False, page_size=7)
    assert [r.source_id for r in wider] == [r.source_id for r in default]  # type: ignore[attr-defined]


def test_a_run_with_a_mapping_naming_a_missing_field_stops_before_landing_anything(
    fresh: SandboxHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same check inside a run: the run fails on the OA source, naming the field and the form's
    fields, and no Seeyon record reaches the warehouse."""
    import sqlalchemy as sa

    from oafin.config import OaFinDefaults, load_settings
    from oafin.demo import sandbox_environment, settings_sources
    from oafin.run import run_plain

    edited_mapping(tmp_path, ("masterData.field0005.showValue", "masterData.field0050.showValue"))
    text = OaFinDefaults.demo_toml(fresh.url("seeyon"), fresh.url("kingdee"), oa="seeyon", finance="kingdee")
    text = text.replace('url = "sqlite:///oafin.db"', f'url = "sqlite:///{tmp_path / "w.db"}"')
    text = text.replace('system = "seeyon"\n', 'system = "seeyon"\nmapping = "seeyon.yaml"\n')
    config = tmp_path / "oafin.toml"
    config.write_text(text, encoding="utf-8")
    for key, value in sandbox_environment(settings_sources(load_settings(config))).items():
        monkeypatch.setenv(key, value)
    with pytest.raises(Exception) as caught:
        run_plain(config, fresh.dataset.period, full=True, retry=FAST)
    message = str(caught.value)
    assert "field0050" in message and "field0005 (费用类型)" in message, message
    assert fresh.calls.count("/flow/state/") == 0
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.connect() as conn:
        tables = sa.inspect(conn).get_table_names()
        landed = (
            conn.execute(sa.text("select count(*) from raw_record where system = 'seeyon'")).scalar()
            if "raw_record" in tables
            else 0
        )
    assert landed == 0


def test_data_faults_in_seeyons_envelopes_are_survived(fresh: SandboxHandle) -> None:
    """A page carrying a record twice lands it once; a flow state nested too deep lands that one
    record as unreadable (quarantined later) and the read goes on; a drifted field is ignored."""
    mapping = load_mapping(default_mapping_path("seeyon"))
    clean = read_all(fresh, mapping)
    fresh.faults.inject("seeyon", "duplicate_record", path_contains="/cap4/form/soap/export", times=2)
    fresh.faults.inject("seeyon", "schema_drift", path_contains="/cap4/form/soap/export")
    fresh.faults.inject("seeyon", "deep_json", path_contains="/flow/state/")
    faulted = read_all(fresh, mapping)
    assert [r.source_id for r in faulted] == [r.source_id for r in clean]  # type: ignore[attr-defined]
    unreadable = [r for r in faulted if "oafin_unreadable" in r.payload]  # type: ignore[attr-defined]
    assert len(unreadable) == 1 and "flow/state" in unreadable[0].payload["oafin_unreadable"]  # type: ignore[attr-defined]
    assert sum(c.fault is not None for c in fresh.calls) == 4


def test_a_build_without_flow_state_is_a_setting(fresh: SandboxHandle) -> None:
    records = read_all(fresh, load_mapping(default_mapping_path("seeyon")), read_flow_state=False)
    assert records and fresh.calls.count("/flow/state/") == 0
    assert all("flowState" not in r.payload and "masterData" in r.payload for r in records)  # type: ignore[attr-defined]
