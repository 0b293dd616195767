"""Weaver e-cology 9 (oafin/systems/weaver): what the conformance suite does not pin down.

Over real HTTP against the Weaver twin: the three spellings of ``code`` and the two of the
server's secret, the RSA round trip (the twin decrypts the secret and the ``userid`` the client
encrypted with its ``spk``), per-user lists and the warning when a list yields fewer requests than
it counts, and a mapping that names a field the form lacks failing before anything is read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from itertools import islice
from pathlib import Path

import pytest
import yaml

from mappings.loader import default_mapping_path, load_mapping
from mappings.spec import ChildMapping
from oafin.connectors import AuthError, SourceError
from oafin.connectors.limits import RetryPolicy, no_limit
from oafin.sandbox.dataset import Dataset
from oafin.sandbox.generator import generate
from oafin.sandbox_server import SandboxHandle, running_sandbox
from oafin.systems.base import RecordKind
from oafin.systems.weaver import SYSTEM, WeaverReader, WeaverSettings, mapped_field_names
from oafin.systems.weaver.client import (
    WeaverClient,
    check_list,
    code_ok,
    render_date_conditions,
    rsa_encrypt_b64,
)
from oafin.systems.weaver.twin import ADMIN, CODE_STYLES, TWIN, WeaverState
from oafin.systems.weaver.twin_render import WORKFLOW_ID, requests, weaver_id
from tests.conformance.systems import period_window

FAST = RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0)
APP_ID = str(TWIN.credentials["app_id"])


@pytest.fixture(scope="module")
def month() -> Dataset:
    return generate(seed=11, n_claims=60)


@pytest.fixture(scope="module")
def served(month: Dataset) -> Iterator[SandboxHandle]:
    with running_sandbox(month, twins=[TWIN]) as handle:
        yield handle


@pytest.fixture
def weaver(served: SandboxHandle) -> Iterator[SandboxHandle]:
    served.reset()
    yield served
    served.reset()
    state = _state(served)
    state.code_style, state.secret_key, state.expiry_envelope = "string", "secrit", "token"


def _state(handle: SandboxHandle) -> WeaverState:
    state = handle.state("weaver")
    assert isinstance(state, WeaverState)
    return state


def _client(handle: SandboxHandle, **options: object) -> WeaverClient:
    options = {"retry": FAST, "limiter": no_limit, **options}
    return WeaverClient(handle.url("weaver"), APP_ID, **options)  # type: ignore[arg-type]


def _month_ids(month: Dataset) -> list[str]:
    start, end = period_window(month)
    return sorted(r.request_id for r in requests(month) if start <= r.created < end)


def _read_ids(client: WeaverClient, month: Dataset) -> list[str]:
    start, end = period_window(month)
    return sorted(r.source_id for r in client.iter_requests(WORKFLOW_ID, start, end))


# -- code spellings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "ok"),
    [
        ("SUCCESS", True),
        ({"statusCode": "1"}, True),
        ({"statusCode": 1}, True),
        ({"name": "SUCCESS"}, True),
        ("NO_PERMISSION", False),
        ({"statusCode": "0"}, False),
        ({"name": "PARAM_ERROR"}, False),
        ({}, False),
        (None, None),
    ],
)
def test_code_is_read_in_each_build_spelling(code: object, ok: bool | None) -> None:
    assert code_ok(code) is ok


@pytest.mark.parametrize("style", CODE_STYLES)
def test_each_code_spelling_reads_the_whole_month(style: str, weaver: SandboxHandle, month: Dataset) -> None:
    _state(weaver).code_style = style
    with _client(weaver) as client:
        assert _read_ids(client, month) == _month_ids(month)
    assert (
        _state(weaver).code(True)
        == {"string": "SUCCESS", "statusCode": {"statusCode": "1"}, "name": {"name": "SUCCESS"}}[style]
    )


@pytest.mark.parametrize("style", CODE_STYLES)
def test_a_refusal_in_each_code_spelling_names_the_call(style: str, weaver: SandboxHandle) -> None:
    _state(weaver).code_style = style
    with _client(weaver) as client, pytest.raises(SourceError) as caught:
        client.get_request("999")  # no such request: PARAM_ERROR, spelt as the build does
    assert str(caught.value).startswith("weaver getWorkflowRequest(requestId=999)")


@pytest.mark.parametrize("spelling", ["secrit", "secret"])
def test_both_spellings_of_the_registered_secret_are_accepted(spelling: str, weaver: SandboxHandle) -> None:
    _state(weaver).secret_key = spelling
    with _client(weaver) as client:
        assert client._apply_token().value
        assert client.register()[0] == _state(weaver).app_secret


# -- RSA round trip ---------------------------------------------------------------------------


def test_the_twin_decrypts_what_the_client_encrypted_with_its_spk(weaver: SandboxHandle) -> None:
    state = _state(weaver)
    cipher = rsa_encrypt_b64(state.spk, "18007")
    assert cipher != rsa_encrypt_b64(state.spk, "18007")  # PKCS#1 v1.5 pads at random
    assert state.decrypt(cipher) == "18007"
    assert state.decrypt("bm90IGVuY3J5cHRlZA==") is None


def test_the_userid_header_impersonates_that_user(weaver: SandboxHandle, month: Dataset) -> None:
    """The twin decrypts ``userid``: a user's "my requests" are exactly what they created."""
    creator = month.claims[0].originator
    start, end = period_window(month)
    wide = (datetime(2000, 1, 1, tzinfo=start.tzinfo), datetime(2100, 1, 1, tzinfo=start.tzinfo))
    with _client(weaver, userid=weaver_id(creator), lists=("my",)) as client:
        got = sorted(r.source_id for r in client.iter_requests(WORKFLOW_ID, *wide))
    created = sorted(r.request_id for r in requests(month) if r.creator_id == weaver_id(creator))
    assert got == created and got


def test_a_wrongly_encrypted_secret_is_refused_at_applytoken(weaver: SandboxHandle) -> None:
    with _client(weaver) as client:
        secret, spk = client.register()
        client._registered = ("not-the-secret", spk)
        with pytest.raises(AuthError) as caught:
            client._apply_token()
    assert str(caught.value).startswith("weaver applytoken")
    assert "secret解密失败" in str(caught.value)
    assert secret not in str(caught.value)


def test_an_unknown_user_is_refused_not_retried(weaver: SandboxHandle, month: Dataset) -> None:
    start, end = period_window(month)
    with _client(weaver, userid="424242") as client, pytest.raises(AuthError) as caught:
        list(client.iter_requests(WORKFLOW_ID, start, end))
    assert "424242" in str(caught.value)
    assert sum(client.stats.retries.values()) == 0


# -- per-user lists ----------------------------------------------------------------------------


def test_another_user_sees_less_than_the_sysadmin(weaver: SandboxHandle, month: Dataset) -> None:
    manager = next(p for p in month.people if p.role == "manager")
    with _client(weaver, userid=weaver_id(manager), lists=("todo", "handled", "my")) as client:
        theirs = _read_ids(client, month)
        assert not client.notes  # their lists are complete for them: nothing to warn about
    with _client(weaver, userid=ADMIN, lists=("all",)) as client:
        everything = _read_ids(client, month)
    assert set(theirs) < set(everything) and everything == _month_ids(month)


def test_a_list_shorter_than_its_count_is_warned_and_noted(
    weaver: SandboxHandle, month: Dataset, caplog: pytest.LogCaptureFixture
) -> None:
    """The count says the list holds more than the impersonated user is shown."""
    weaver.faults.answer("weaver", 999, path_contains="getAllWorkflowRequestCount", times=5)
    settings = WeaverSettings(
        name="oa", system="weaver", role="oa", base_url=weaver.url("weaver"), lists=["all"]
    )
    kind = SYSTEM.record_kinds(settings, load_mapping(default_mapping_path("weaver")))[0]
    start, end = period_window(month)
    with (
        caplog.at_level(logging.WARNING),
        SYSTEM.open(settings, {"app_id": APP_ID}, limiter=no_limit) as reader,
    ):
        assert isinstance(reader, WeaverReader)
        read = sum(1 for _ in reader.read(kind, start, end))
        notes = reader.notes
    assert read == len(_month_ids(month))
    assert len(notes) == 1 and "counts 999" in notes[0] and "user 1" in notes[0], notes
    assert any("counts 999" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_date_conditions_narrow_the_list_on_the_server(weaver: SandboxHandle, month: Dataset) -> None:
    tz = period_window(month)[0].tzinfo
    window = (datetime(2026, 10, 1, tzinfo=tz), datetime(2026, 11, 1, tzinfo=tz))
    template = {"from": "{start_date}", "to": "{end_date}", "t0": "{start_time}", "t1": "{end_time}"}
    assert render_date_conditions(template, *window) == {
        "from": "2026-10-01",
        "to": "2026-10-31",  # the window's last second: both ends inclusive
        "t0": "2026-10-01 00:00:00",
        "t1": "2026-10-31 23:59:59",
    }
    conditions = {"createdatefrom": "{start_date}", "createdateto": "{end_date}"}
    with _client(weaver, lists=("all",), page_size=10, date_conditions=conditions) as narrow:
        assert _read_ids(narrow, month) == _month_ids(month)
        narrow_pages = narrow.stats.requests["getAllWorkflowRequestList"]
    with _client(weaver, lists=("all",), page_size=10) as wide:
        assert _read_ids(wide, month) == _month_ids(month)
        wide_pages = wide.stats.requests["getAllWorkflowRequestList"]
    assert narrow_pages < wide_pages


# -- field definitions -------------------------------------------------------------------------


def test_a_mapping_naming_a_field_the_form_lacks_fails_before_anything_is_read(
    weaver: SandboxHandle, month: Dataset, tmp_path: Path
) -> None:
    raw = yaml.safe_load(default_mapping_path("weaver").read_text(encoding="utf-8"))
    raw["forms"][WORKFLOW_ID]["fields"]["amount_fen"]["form"] = "bxje_amount"
    edited = tmp_path / "weaver.yaml"
    edited.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    mapping = load_mapping(edited)
    assert "bxje_amount" in mapped_field_names(mapping, WORKFLOW_ID)
    settings = WeaverSettings(name="oa", system="weaver", role="oa", base_url=weaver.url("weaver"))
    kind = SYSTEM.record_kinds(settings, mapping)[0]
    start, end = period_window(month)
    with (
        SYSTEM.open(settings, {"app_id": APP_ID}, limiter=no_limit) as reader,
        pytest.raises(SourceError) as caught,
    ):
        list(islice(reader.read(kind, start, end), 1))
    message = str(caught.value)
    assert message.startswith("weaver getWorkflowRequest")
    assert "bxje_amount" in message and "bxje, " in message and "bxdh" in message, message
    assert not caught.value.retryable


def test_the_default_mapping_names_only_fields_the_form_has(weaver: SandboxHandle, month: Dataset) -> None:
    settings = WeaverSettings(name="oa", system="weaver", role="oa", base_url=weaver.url("weaver"))
    kind = SYSTEM.record_kinds(settings, load_mapping(default_mapping_path("weaver")))[0]
    assert isinstance(kind, RecordKind) and "bxje" in kind.fields
    start, end = period_window(month)
    with SYSTEM.open(settings, {"app_id": APP_ID}, limiter=no_limit) as reader:
        assert len(list(reader.read(kind, start, end))) == len(_month_ids(month))


def test_a_child_table_is_read_from_a_path_or_a_form_never_both() -> None:
    fields = {"claim_id": {"parent": "claim_id"}}
    with pytest.raises(ValueError, match="exactly one of form"):
        ChildMapping.model_validate({"form": "发票明细", "path": "a.b", "fields": fields})
    with pytest.raises(ValueError, match="where only applies with path"):
        ChildMapping.model_validate({"form": "发票明细", "where": {"t": "x"}, "fields": fields})
    # rows_path with form: the rows inside the field's value (WeCom's Table control, children)
    assert ChildMapping.model_validate({"form": "发票明细", "rows_path": "children", "fields": fields}).form
    assert ChildMapping.model_validate({"path": "a.b", "where": {"t": "x"}, "fields": fields}).source == "a.b"


def test_request_status_has_a_node_id_but_no_node_name(weaver: SandboxHandle, month: Dataset) -> None:
    """real-clients.md §2.3: getRequestStatus's ``status`` is an exit label, not a node name."""
    pending = next(r for r in requests(month) if r.pending)
    with _client(weaver) as client:
        status = client.get_status(pending.request_id)
        detail = client.get_request(pending.request_id)
    assert status["currentNodeId"] == detail["currentNodeId"]
    assert "currentNodeName" not in status and "至" in status["status"]


def test_the_run_keeps_the_visibility_note(month: Dataset, tmp_path: Path) -> None:
    """The note reaches the run's summary (``run_plain(...)["notes"]``; the flow's ``notes``)."""
    from oafin.config import OaFinDefaults, load_settings
    from oafin.demo import sandbox_environment, settings_sources
    from oafin.run import run_plain
    from oafin.systems.kingdee.twin import TWIN as KINGDEE_TWIN

    with running_sandbox(month, twins=[TWIN, KINGDEE_TWIN]) as handle:
        text = OaFinDefaults.demo_toml(handle.url("weaver"), handle.urls["kingdee"], oa="weaver")
        text = text.replace('url = "sqlite:///oafin.db"', f'url = "sqlite:///{tmp_path / "w.db"}"')
        config = tmp_path / "oafin.toml"
        config.write_text(text, encoding="utf-8")
        env = sandbox_environment(settings_sources(load_settings(config)))
        handle.faults.answer("weaver", 10_000, path_contains="getHandledWorkflowRequestCount", times=3)
        with pytest.MonkeyPatch.context() as mp:
            for key, value in env.items():
                mp.setenv(key, value)
            run = run_plain(config, month.period, full=True, retry=FAST)
    notes = run["notes"]
    assert len(notes) == 1 and "Handled list of user 1" in notes[0] and "counts 10000" in notes[0], notes
    assert run["landed"]["oa"] > 0


def test_the_http_layer_sends_form_fields_and_extra_headers(weaver: SandboxHandle) -> None:
    """``ApiClient.request(data=..., headers=...)``: what Weaver's calls need (source-systems.md §4.1)."""
    from oafin.connectors.http import ApiClient, Call

    api = ApiClient("weaver", weaver.url("weaver"), retry=FAST)
    try:
        reg = api.request(
            Call("weaver", "regist"), "POST", "/api/ec/dev/auth/regist", headers={"appid": APP_ID, "cpk": "x"}
        )
        refused = api.request(
            Call("weaver", "regist"), "POST", "/api/ec/dev/auth/regist", headers={"appid": "no"}
        )
    finally:
        api.close()
    assert reg["status"] is True and reg["spk"]
    assert refused["status"] is False  # the header is what the twin judged
    with _client(weaver, page_size=3) as client:
        rows = client.api.request(
            Call("weaver", "list"),
            "POST",
            "/api/workflow/paService/getAllWorkflowRequestList",
            data={"pageNo": "2", "pageSize": "3", "conditions": "{}"},
            check=check_list,
        )
    assert len(rows) == 3 and rows[0]["requestId"] == _state(weaver).requests[3].request_id
