"""Operators following the README literally (issue #11, "Operators"): config typos refused with the
nearest valid key, sandbox credentials never reaching production, one-line errors with exit codes
from the real CLI, the shipped example config and deployments, the README's commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from oafin.config import ConfigError, OaFinDefaults, load_settings

ROOT = Path(__file__).resolve().parent.parent


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "oafin.toml"
    path.write_text(text, encoding="utf-8")
    return path


SOURCES = """\
chain = ["oa", "finance"]

[[sources]]
name = "oa"
system = "dingtalk"
base_url = "http://127.0.0.1:1"

[[sources]]
name = "finance"
system = "kingdee"
base_url = "http://127.0.0.1:2/k3cloud/"

"""


# --- a typo anywhere is refused with the nearest valid key --------------------------------------


@pytest.mark.parametrize(
    ("extra", "key", "near"),
    [
        ("chian = []\n", "chian", "chain"),
        ("tables_dri = 'x'\n", "tables_dri", "tables_dir"),
        ("[reconcile]\npayment_sla_day = 2\n", "reconcile.payment_sla_day", "payment_sla_days"),
        ("[corrections]\nallow_audt = true\n", "corrections.allow_audt", "allow_audit"),
        (
            "[[corrections.auto_approve]]\nname = 'x'\naction = 'oa_status_comment'\nmax_amout_fen = 3\n",
            "corrections.auto_approve[0].max_amout_fen",
            "max_amount_fen",
        ),
        ("[reports]\ndri = 'r'\n", "reports.dri", "dir"),
        ("[warehouse]\nulr = 'sqlite:///x.db'\n", "warehouse.ulr", "url"),
    ],
)
def test_a_misspelt_key_in_any_section_is_refused_with_the_nearest_valid_one(
    tmp_path: Path, extra: str, key: str, near: str
) -> None:
    top, sections = (extra, "") if not extra.startswith("[") else ("", extra)
    text = top + SOURCES + sections
    with pytest.raises(ConfigError) as err:
        load_settings(_write(tmp_path, text))
    assert f"unknown key {key!r}; did you mean {near!r}?" in str(err.value), str(err.value)


def test_the_whole_demo_config_still_loads(tmp_path: Path) -> None:
    text = OaFinDefaults.demo_toml("http://127.0.0.1:1", "http://127.0.0.1:2/k3cloud/")
    settings = load_settings(_write(tmp_path, text))
    assert settings.reconcile.payment_sla_days == 5


# --- sandbox credentials never reach production -------------------------------------------------


@pytest.mark.parametrize("url", ["https://oapi.dingtalk.com", "http://127.0.0.1:18701"])
def test_use_sandbox_credentials_is_refused_and_says_where_credentials_come_from(
    tmp_path: Path, url: str
) -> None:
    text = OaFinDefaults.demo_toml(url, "http://127.0.0.1:2/k3cloud/").replace(
        'system = "dingtalk"', 'system = "dingtalk"\nuse_sandbox_credentials = true', 1
    )
    with pytest.raises(ConfigError) as err:
        load_settings(_write(tmp_path, text))
    message = str(err.value)
    assert "use_sandbox_credentials" in message and "OAFIN_SOURCE_OA_APP_SECRET" in message, message


# --- errors: one line each, from the real CLI ----------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _oafin(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    import os
    import subprocess

    full_env = {**os.environ, "PREFECT_API_URL": "", **(env or {})}
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "oafin"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=full_env,
        cwd=ROOT,
    )
    return done.returncode, done.stdout, done.stderr


def _config_on_free_ports(tmp_path: Path) -> Path:
    oa, erp = _free_port(), _free_port()
    text = SOURCES.replace("127.0.0.1:1", f"127.0.0.1:{oa}").replace("127.0.0.1:2", f"127.0.0.1:{erp}")
    return _write(tmp_path, text)


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr and "temporary local Prefect server" not in stderr, stderr
    return lines[0]


def test_a_bad_period_is_refused_before_anything_starts_with_exit_2(tmp_path: Path) -> None:
    code, _, err = _oafin("run", "--config", str(_config_on_free_ports(tmp_path)), "--period", "2026/10")
    line = _one_line(err)
    assert code == 2
    assert "--period '2026/10'" in line and "YYYY-MM" in line


def test_a_bad_as_of_is_refused_with_exit_2(tmp_path: Path) -> None:
    config = str(_config_on_free_ports(tmp_path))
    code, _, err = _oafin("run", "--config", config, "--period", "2026-10", "--as-of", "20/10/2026")
    assert code == 2 and "--as-of '20/10/2026'" in _one_line(err)


def test_a_sandbox_that_is_down_is_one_line_with_its_url_and_what_to_do(tmp_path: Path) -> None:
    config = _config_on_free_ports(tmp_path)
    code, out, err = _oafin("run", "--config", str(config), "--period", "2026-10")
    line = _one_line(err)
    assert code == 1
    assert f"relative paths in it resolve against {tmp_path}" in out  # said in the run's output
    url = load_settings(config).source("oa").base_url
    assert f"cannot reach source 'oa' (dingtalk) at {url}" in line
    assert ".venv/bin/oafin sandbox serve" in line and str(config) in line


def test_an_unreachable_postgresql_is_one_line_with_the_password_masked(tmp_path: Path) -> None:
    config = _config_on_free_ports(tmp_path)
    url = f"postgresql+psycopg://oafin:hunter2@127.0.0.1:{_free_port()}/oafin"
    # the sources are down too: the warehouse is checked as well, whichever comes first is reported
    code, _, err = _oafin("corrections", "--config", str(config), env={"OAFIN_WAREHOUSE__URL": url})
    line = _one_line(err)
    assert code == 1
    assert "hunter2" not in err
    assert "cannot connect to the warehouse postgresql+psycopg://oafin:***@127.0.0.1:" in line
    assert "OAFIN_WAREHOUSE__URL" in line


# --- corrections: a server to approve on, a decision per action ----------------------------------


def test_corrections_apply_without_a_prefect_server_is_refused_naming_the_setting(tmp_path: Path) -> None:
    config = _write(tmp_path, SOURCES + '[warehouse]\nurl = "sqlite:///w.db"\n')
    code, _, err = _oafin("corrections", "--config", str(config), "--apply")
    line = _one_line(err)
    assert code == 2
    assert "PREFECT_API_URL" in line and ".venv/bin/prefect server start" in line


ROWS = [
    {
        "idempotency_key": "a" * 64,
        "action": "finance_create_bill",
        "system": "kingdee",
        "target": "ER_ExpReimbursement",
        "claim_no": "BX-1",
        "amount_fen": 123456,
        "preview": "Save+Submit a bill of ¥1,234.56 for BX-1",
    },
    {
        "idempotency_key": "b" * 64,
        "action": "oa_status_comment",
        "system": "dingtalk",
        "target": "proc-inst-9",
        "claim_no": "BX-2",
        "amount_fen": 500,
        "preview": "comment 'paid 2026-10-03'",
    },
    {
        "idempotency_key": "c" * 64,
        "action": "oa_status_comment",
        "system": "dingtalk",
        "target": "proc-inst-10",
        "claim_no": "BX-3",
        "amount_fen": 700,
        "preview": "comment 'rejected in finance'",
    },
]


def test_the_pause_form_is_a_decision_per_action_with_approve_all_per_type() -> None:
    from flows.corrections import action_field, approval_form, chosen_keys, type_field

    form = approval_form(ROWS)
    schema = form.model_json_schema()
    assert schema["required"] == ["approver"]  # required, and not shown as "(Optional)"
    props = schema["properties"]
    assert "Optional" not in props["approver"]["title"]
    first = props[action_field("a" * 64)]
    assert (
        "BX-1" in first["title"] and "¥1,234.56" in first["title"] and "ER_ExpReimbursement" in first["title"]
    )
    assert "Save+Submit a bill" in first["description"]
    assert props[type_field("oa_status_comment")]["title"].startswith("Approve all 2")

    one = form(approver="P0001", **{action_field("a" * 64): True})
    assert chosen_keys(one, ROWS) == ["a" * 64]
    by_type = form(approver="P0001", **{type_field("oa_status_comment"): True})
    assert chosen_keys(by_type, ROWS) == ["b" * 64, "c" * 64]
    assert chosen_keys(form(approver="P0001"), ROWS) == []


# --- the current period's default as-of is now, not its future end -------------------------------


def test_the_default_as_of_is_never_in_the_future() -> None:
    from datetime import UTC, datetime

    from oafin.periods import Period, parse_as_of

    now = datetime(2026, 11, 15, 3, 0, tzinfo=UTC)
    current, past = Period.parse("2026-11"), Period.parse("2026-10")
    assert parse_as_of(None, current, now) == now
    assert parse_as_of(None, past, now) == past.end
    assert parse_as_of("2026-11-20", current, now) > now  # an explicit --as-of is taken as given


def test_flow_runs_are_named_by_kind() -> None:
    from flows.daily import run_kind

    assert run_kind("current", False) == "daily"
    assert run_kind("previous", True) == "monthly-close"
    assert run_kind("2026-10", True) == "monthly-close"


# --- the shipped deployments and configs --------------------------------------------------------


def _deployments(entrypoint: str = "flows/daily.py:daily") -> list[dict]:
    import yaml

    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    return [d for d in spec["deployments"] if d["entrypoint"] == entrypoint]


@pytest.mark.parametrize(
    "dep",
    _deployments("flows/corrections.py:corrections")
    + _deployments("flows/corrections.py:check_oa_approvals"),
    ids=lambda d: d["name"],
)
def test_the_corrections_deployments_call_their_flows_with_parameters_they_accept(dep: dict) -> None:
    import importlib
    import inspect

    path, name = dep["entrypoint"].split(":")
    flow = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), name)
    inspect.signature(flow.fn).bind(**dep["parameters"])
    load_settings(ROOT / dep["parameters"]["config_path"])
    assert all(s["active"] is False for s in dep.get("schedules", [])), "schedules start paused"


@pytest.mark.parametrize(
    "dep", _deployments() + _deployments("flows/group_close.py:group_close"), ids=lambda d: d["name"]
)
def test_every_deployment_names_a_config_that_loads_and_parameters_the_flow_accepts(dep: dict) -> None:
    import importlib
    import inspect

    from flows.daily import resolve_period
    from oafin.pipeline.sources import check_sources

    path, name = dep["entrypoint"].split(":")
    flow = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), name)
    signature = inspect.signature(flow.fn)
    params = dep["parameters"]
    assert set(params) <= set(signature.parameters), dep["name"]
    signature.bind(**params)  # every required parameter given
    resolve_period(params["period"])
    # the worker's working directory is the repository root
    configs = params.get("config_paths") or [params["config_path"]]
    for config in configs:
        settings = load_settings(ROOT / config)
        check_sources(settings)  # every source's settings against its mapping
    assert all(s["active"] is False for s in dep["schedules"]), "schedules start paused"
    if "sandbox" in dep["name"]:
        # runs out of the box against `oafin sandbox serve` on its defaults
        from oafin import sandbox_server

        urls = {s.system: s.base_url for s in settings.sources}
        assert urls["dingtalk"] == f"http://127.0.0.1:{sandbox_server.DEFAULT_DINGTALK_PORT}"
        assert urls["kingdee"].startswith(f"http://127.0.0.1:{sandbox_server.DEFAULT_KINGDEE_PORT}/")
        assert params["period"] == "2026-10"  # what `oafin sandbox serve` serves by default


def test_the_sandbox_config_runs_against_the_sandbox(sandbox, tmp_path: Path, monkeypatch) -> None:
    """config/sandbox-C01.toml, pointed at the test sandbox (OAFIN_SOURCE_<NAME>__BASE_URL), with the
    credentials `oafin sandbox env` prints: plan and read a page of each source."""
    import os
    import shlex
    from contextlib import redirect_stdout
    from io import StringIO

    from oafin.demo import sandbox_env_command
    from oafin.periods import Period
    from oafin.pipeline.sources import open_reader, record_kinds

    for key in [k for k in os.environ if k.startswith("OAFIN_SOURCE_")]:  # only what env prints
        monkeypatch.delenv(key)
    monkeypatch.setenv("OAFIN_SOURCE_OA__BASE_URL", sandbox.dingtalk_url)
    monkeypatch.setenv("OAFIN_SOURCE_FINANCE__BASE_URL", sandbox.kingdee_url)
    out = StringIO()
    with redirect_stdout(out):
        assert sandbox_env_command(ROOT / "config" / "sandbox-C01.toml") == 0
    for line in out.getvalue().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        monkeypatch.setenv(key, shlex.split(value)[0])
    settings = load_settings(ROOT / "config" / "sandbox-C01.toml")
    period = Period.parse(sandbox.dataset.period)
    for source in settings.sources:
        kind = record_kinds(settings, source)[0]
        with open_reader(source) as reader:
            first = next(iter(reader.read(kind, period.start, period.end)))
        assert first is not None


def test_sandbox_env_refuses_a_config_with_a_non_local_url() -> None:
    code, out, err = _oafin("sandbox", "env", "--config", str(ROOT / "config" / "C01.toml"))
    assert code == 2 and out == ""
    assert "not the local sandbox" in _one_line(err)


def test_run_with_postgresql_unreachable_is_one_line_before_prefect_starts(sandbox, tmp_path: Path) -> None:
    text = SOURCES.replace("http://127.0.0.1:1", sandbox.dingtalk_url).replace(
        "http://127.0.0.1:2/k3cloud/", sandbox.kingdee_url
    )
    url = f"postgresql+psycopg://oafin:hunter2@127.0.0.1:{_free_port()}/oafin"
    config = _write(tmp_path, text + f'[warehouse]\nurl = "{url.replace(":hunter2", "")}"\n')
    code, _, err = _oafin(
        "run", "--config", str(config), "--period", "2026-10", env={"OAFIN_WAREHOUSE__URL": url}
    )
    line = _one_line(err)
    assert code == 1 and "hunter2" not in err
    assert "cannot connect to the warehouse postgresql+psycopg://oafin:***@" in line


def test_the_demos_reproduce_lines_paste_from_the_repository_root() -> None:
    import shlex

    from oafin.cli import _parser
    from oafin.demo import reproduce_lines

    lines = reproduce_lines(7, "2026-10", ROOT / "demo" / "oafin.toml")
    for line in lines:
        words = shlex.split(line, comments=True)
        if words[0] == "eval":
            words = shlex.split(words[1].removeprefix("$(").removesuffix(")"))
        assert words[0] == ".venv/bin/oafin", line
        _parser().parse_args(words[1:])
    assert any("sandbox env --config demo/oafin.toml" in line for line in lines)
