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
