"""No secret value in a config error, and no credential in a config file (issue #10, item 9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from oafin.config import ConfigError, OaFinDefaults, load_settings

SECRET = "sk-live-7d9f0c2e4b1a"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "oafin.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _base() -> str:
    return OaFinDefaults.demo_toml("http://oa", "http://erp/k3cloud/")


def _refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as err:
        load_settings(_write(tmp_path, text))
    message = str(err.value)
    assert SECRET not in message and "hunter2" not in message, message
    return message


def test_a_validation_error_never_echoes_the_value_given(tmp_path: Path) -> None:
    # a secret pasted into the wrong key: pydantic's input_value would print it
    message = _refused(tmp_path, _base() + f'\n[reconcile]\namount_tolerance_fen = "{SECRET}"\n')
    assert "reconcile.amount_tolerance_fen" in message


def test_a_bad_value_from_the_environment_is_not_echoed_either(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OAFIN_RECONCILE__PAYMENT_SLA_DAYS", SECRET)
    message = _refused(tmp_path, _base())
    assert "payment_sla_days" in message


@pytest.mark.parametrize(
    ("where", "line"),
    [
        ('system = "kingdee"', f'appsecret = "{SECRET}"'),
        ('system = "dingtalk"', f'client_secret = "{SECRET}"'),
        ('system = "dingtalk"', f'App-Secret = "{SECRET}"'),
        ("[reports]", f'api_token = "{SECRET}"'),
    ],
)
def test_credential_keys_are_refused_however_spelt(tmp_path: Path, where: str, line: str) -> None:
    message = _refused(tmp_path, _base().replace(where, f"{where}\n{line}", 1))
    assert "must not be in a config file" in message


def test_a_password_inside_a_url_is_refused(tmp_path: Path) -> None:
    text = _base().replace(
        'url = "sqlite:///oafin.db"', 'url = "postgresql+psycopg://oafin:hunter2@db/oafin"'
    )
    message = _refused(tmp_path, text)
    assert "warehouse.url" in message and "password" in message and "OAFIN_WAREHOUSE__URL" in message


def test_a_url_without_a_password_is_fine(tmp_path: Path) -> None:
    text = _base().replace('url = "sqlite:///oafin.db"', 'url = "postgresql+psycopg://oafin@db/oafin"')
    assert load_settings(_write(tmp_path, text)).warehouse.url == "postgresql+psycopg://oafin@db/oafin"


def test_secrets_inside_lists_are_found(tmp_path: Path) -> None:
    text = _base() + (
        "\n[corrections]\n"
        f'auto_approve = [{{name = "r", action = "oa_status_comment", password = "{SECRET}"}}]\n'
        f'extra_urls = ["https://bot:hunter2@hooks.example.com/x"]\n'
    )
    message = _refused(tmp_path, text)
    assert "corrections.auto_approve.0.password" in message and "corrections.extra_urls.0" in message
