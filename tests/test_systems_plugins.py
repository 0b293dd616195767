"""Source systems as plug-ins (issue #9): the registry, per-system settings, config as a list of
sources with a chain, credentials from the environment per source, and one step order."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from oafin.config import ConfigError, OaFinDefaults, load_settings, render_toml
from oafin.systems.base import SourceSystem, env_name
from oafin.systems.registry import get_system, refresh, systems

ROOT = Path(__file__).resolve().parents[1]

FAKE_SYSTEM = """
from oafin.systems.base import SourceSettings


class BooksSettings(SourceSettings):
    ledger_book: str = "main"


class Books:
    name = "fakebooks"
    role = "erp"
    settings_model = BooksSettings
    secret_fields = ("token_id", "token_secret")
    default_rate_per_second = 2.0
    rate_source = "a test"
    write_actions = {}

    def record_kinds(self, settings, mapping):
        return []

    def check_mapping(self, settings, mapping):
        return []

    def open(self, settings, credentials, *, limiter=None, retry=None):
        raise NotImplementedError

    def hint(self, exc, settings):
        return None


SYSTEM = Books()
"""


@pytest.fixture
def fake_package(tmp_path: Path):
    """A pip-installed package in all but name: a module and a dist-info declaring an
    ``oafin.systems`` entry point, on sys.path (what `pip install oafin-fakebooks` leaves)."""
    site = tmp_path / "site"
    (site / "oafin_fakebooks").mkdir(parents=True)
    (site / "oafin_fakebooks" / "__init__.py").write_text(FAKE_SYSTEM, encoding="utf-8")
    info = site / "oafin_fakebooks-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: oafin-fakebooks\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[oafin.systems]\nfakebooks = oafin_fakebooks:SYSTEM\n")
    sys.path.insert(0, str(site))
    try:
        refresh()
        yield
    finally:
        sys.path.remove(str(site))
        sys.modules.pop("oafin_fakebooks", None)
        refresh()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "oafin.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_both_systems_are_registered_through_entry_points() -> None:
    registered = systems()
    assert {"dingtalk", "kingdee"} <= set(registered)
    for name, system in registered.items():
        assert isinstance(system, SourceSystem) and system.name == name
        assert system.secret_fields and system.default_rate_per_second > 0 and system.rate_source
    assert get_system("dingtalk").role == "oa" and get_system("kingdee").role == "erp"
    assert set(get_system("kingdee").write_actions) == {"finance_create_bill", "finance_flag_recall"}
    assert set(get_system("dingtalk").write_actions) == {"oa_status_comment"}


def test_a_third_system_installed_as_a_package_is_picked_up(fake_package, tmp_path: Path) -> None:
    assert "fakebooks" in systems()
    text = OaFinDefaults.demo_toml("http://oa", "http://books", finance="fakebooks")
    settings = load_settings(
        _write(
            tmp_path,
            text.replace('name = "finance"', 'name = "books"').replace(
                'chain = ["oa", "finance"]', 'chain = ["oa", "books"]'
            ),
        )
    )
    books = settings.source("books")
    assert type(books).__name__ == "BooksSettings" and books.ledger_book == "main" and books.role == "erp"

    bad = text.replace('system = "fakebooks"', 'system = "fakebooks"\nledger_bok = "x"')
    with pytest.raises(ConfigError, match="unknown key 'ledger_bok'; did you mean 'ledger_book'"):
        load_settings(_write(tmp_path, bad))

    from oafin.pipeline.sources import source_credentials

    with pytest.raises(ConfigError) as missing:
        source_credentials(books, environ={env_name("books", "token_id"): "t"})
    assert "OAFIN_SOURCE_BOOKS_TOKEN_SECRET" in str(missing.value)
    assert "OAFIN_SOURCE_BOOKS_TOKEN_ID" not in str(missing.value)


def test_an_unknown_system_lists_the_registered_ones(tmp_path: Path) -> None:
    text = OaFinDefaults.demo_toml("http://oa", "http://erp", finance="yonyuo")
    with pytest.raises(ConfigError) as err:
        load_settings(_write(tmp_path, text))
    assert "unknown system 'yonyuo'" in str(err.value)
    assert re.search(r"registered systems: .*dingtalk.*kingdee", str(err.value))


def test_a_system_key_misspelt_is_refused_with_the_nearest_valid_key(tmp_path: Path) -> None:
    text = OaFinDefaults.demo_toml("http://oa", "http://erp")
    text = text.replace('system = "dingtalk"', 'system = "dingtalk"\nproces_code = "PROC-X"')
    with pytest.raises(ConfigError, match="unknown key 'proces_code'; did you mean 'process_code'"):
        load_settings(_write(tmp_path, text))
    # a key of another system is no key of this one
    text = OaFinDefaults.demo_toml("http://oa", "http://erp").replace(
        'system = "kingdee"', 'system = "kingdee"\nprocess_code = "PROC-X"'
    )
    with pytest.raises(ConfigError, match="source 'finance': unknown key 'process_code'"):
        load_settings(_write(tmp_path, text))


LEGACY = """\
[oa]
system = "dingtalk"
base_url = "https://oapi.dingtalk.com"
company_code = "C07"
process_code = "PROC-CUSTOM"
use_sandbox_credentials = true

[finance]
system = "kingdee"
base_url = "https://erp.example.com/k3cloud/"
company_code = "C07"
page_size = 500

[warehouse]
url = "sqlite:///w.db"
"""

REWRITE = """\
chain = ["oa", "finance"]

[[sources]]
name = "oa"
system = "dingtalk"
role = "oa"
base_url = "https://oapi.dingtalk.com"
company_code = "C07"
process_code = "PROC-CUSTOM"

[[sources]]
name = "finance"
system = "kingdee"
role = "erp"
base_url = "https://erp.example.com/k3cloud/"
company_code = "C07"
page_size = 500"""


def test_an_old_two_section_config_is_refused_with_the_exact_rewrite(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(_write(tmp_path, LEGACY))
    message = str(err.value)
    assert REWRITE in message
    assert "OAFIN_OA__APP_SECRET -> OAFIN_SOURCE_OA_APP_SECRET" in message
    assert "OAFIN_FINANCE__ACCT_ID -> OAFIN_SOURCE_FINANCE_ACCT_ID" in message
    # the rewrite works as printed
    settings = load_settings(_write(tmp_path, REWRITE + '\n\n[warehouse]\nurl = "sqlite:///w.db"\n'))
    assert settings.chain == ["oa", "finance"] and settings.company_code == "C07"
    assert settings.source("oa").process_code == "PROC-CUSTOM" and settings.source("finance").page_size == 500


def test_a_secret_inside_a_source_is_refused(tmp_path: Path) -> None:
    text = OaFinDefaults.demo_toml("http://oa", "http://erp").replace(
        'system = "kingdee"', 'system = "kingdee"\napp_secret = "hunter2"'
    )
    with pytest.raises(ConfigError) as err:
        load_settings(_write(tmp_path, text))
    assert "sources.1.app_secret must not be in a config file" in str(err.value)
    assert "hunter2" not in str(err.value)


def test_chain_names_sources_oa_first(tmp_path: Path) -> None:
    base = OaFinDefaults.demo_toml("http://oa", "http://erp")
    with pytest.raises(ConfigError, match="chain names nowhere, not a source"):
        load_settings(
            _write(tmp_path, base.replace('chain = ["oa", "finance"]', 'chain = ["oa", "nowhere"]'))
        )
    with pytest.raises(ConfigError, match="must start with an oa source"):
        load_settings(
            _write(tmp_path, base.replace('chain = ["oa", "finance"]', 'chain = ["finance", "oa"]'))
        )


def test_source_keys_are_overridable_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OAFIN_SOURCE_FINANCE__BASE_URL", "http://moved/k3cloud/")
    monkeypatch.setenv("OAFIN_SOURCE_OA__PROCESS_CODE", "PROC-FROM-ENV")
    settings = load_settings(_write(tmp_path, OaFinDefaults.demo_toml("http://oa", "http://erp")))
    assert settings.source("finance").base_url == "http://moved/k3cloud/"
    assert settings.source("oa").process_code == "PROC-FROM-ENV"


def test_render_toml_round_trips(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, OaFinDefaults.demo_toml("http://oa", "http://erp/k3cloud/")))
    again = load_settings(_write(tmp_path, render_toml(settings)))
    assert again.model_dump(exclude={"base_dir"}) == settings.model_dump(exclude={"base_dir"})


def test_credentials_come_only_from_the_source_variables(tmp_path: Path) -> None:
    from oafin.pipeline.sources import open_reader

    settings = load_settings(_write(tmp_path, OaFinDefaults.demo_toml("http://oa", "http://erp")))
    with pytest.raises(ConfigError, match="OAFIN_SOURCE_OA_APP_KEY, OAFIN_SOURCE_OA_APP_SECRET"):
        open_reader(settings.source("oa"), environ={})
    env = {"OAFIN_SOURCE_OA_APP_KEY": "k", "OAFIN_SOURCE_OA_APP_SECRET": "s"}
    with open_reader(settings.source("oa"), environ=env) as reader:
        assert reader.client.app_key == "k"


SYSTEM_FREE = ["flows", "tasks", "oafin/pipeline", "oafin/engine", "oafin/warehouse", "oafin/reporting"]


# A migration is history: it names the systems whose columns an old release had (0002 moves the
# DingTalk and Kingdee person columns into person_identity), and must keep doing so.
MIGRATIONS = ROOT / "oafin" / "warehouse" / "migrations"


@pytest.mark.parametrize("folder", SYSTEM_FREE)
def test_the_generic_floors_name_no_system(folder: str) -> None:
    literal = re.compile(r"""["'](dingtalk|kingdee)["']|system\s*==\s*["']""")
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in sorted((ROOT / folder).rglob("*.py"))
        if MIGRATIONS not in path.parents
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if literal.search(line)
    ]
    assert found == []


def test_production_code_never_imports_the_sandbox_credentials() -> None:
    """Only the sandbox itself, the twins and the demo (which puts them into the environment) do."""
    allowed = {"oafin/demo.py"}
    pattern = re.compile(
        r"from oafin\.sandbox import credentials|oafin\.sandbox\.credentials import|import oafin\.sandbox\.credentials"
    )
    found = []
    for folder in ("oafin", "flows", "tasks", "mappings", "data_contracts"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = str(path.relative_to(ROOT))
            if rel.startswith("oafin/sandbox") or re.search(r"/twin[^/]*\.py$", rel) or rel in allowed:
                continue
            if pattern.search(path.read_text(encoding="utf-8")):
                found.append(rel)
    assert found == []


def test_the_step_order_lives_once_and_both_runs_use_it() -> None:
    from oafin.pipeline.steps import run_daily

    calls: list[str] = []

    class Recorder:
        def plan(self):
            calls.append("plan")
            return [{"source": "oa", "kind": "k"}]

        def extract(self, plans):
            calls.append("extract")
            return [{"source": "oa", "system": "s", "kind": "k", "landed": 3, "mode": "full"}]

        def reference_tables(self):
            calls.append("reference_tables")

        def standardize(self, sources):
            calls.append("standardize:" + ",".join(sources))
            return [{"valid": 1}] * len(sources)

        def reconcile(self):
            calls.append("reconcile")
            return "result"

        def report(self, result):
            calls.append(f"report:{result}")
            return {}

    class FakeSettings:
        chain = ["oa", "finance"]

    run = run_daily(Recorder(), FakeSettings())
    assert calls == [
        "plan",
        "extract",
        "reference_tables",
        "standardize:oa,finance",
        "reconcile",
        "report:result",
    ]
    assert run.extracted == {"oa": 3, "finance": 0}
    for module in ("flows/daily.py", "oafin/run.py"):
        assert "run_daily(" in (ROOT / module).read_text(encoding="utf-8")


def test_demo_and_serve_take_system_names() -> None:
    from oafin.cli import _parser, _ports

    args = _parser().parse_args(["demo", "--oa", "dingtalk", "--finance", "kingdee"])
    assert (args.oa, args.finance) == ("dingtalk", "kingdee")
    assert _parser().parse_args(["demo"]).oa == "dingtalk"
    assert _ports(["dingtalk=18801", "kingdee=18802"]) == {"dingtalk": 18801, "kingdee": 18802}
    with pytest.raises(ConfigError, match="registered systems"):
        _ports(["dingtalkk=1"])
