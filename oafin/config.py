"""Configuration: one TOML file, every key overridable by ``OAFIN_*`` environment variables.

Nested keys use a double underscore: ``OAFIN_WAREHOUSE__URL``, ``OAFIN_RECONCILE__PAYMENT_SLA_DAYS``,
``OAFIN_OA__APP_SECRET``. Credentials are read only from the environment (or a Prefect Secret
block named in ``secret_block``); a config file that holds one is refused.

Relative paths in the file (mapping files, tables, reports, a SQLite database) are relative to the
file's own folder, so a config written next to its reports works from any working directory.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

SECRET_KEYS = frozenset({"app_secret", "password", "secret", "token", "access_token", "app_key_secret"})


class ConfigError(Exception):
    """The configuration cannot be used; the message says which key and why."""


class SourceConfig(BaseModel):
    """One source system: where it is, how to map it, and its credentials (from the environment)."""

    system: Literal["dingtalk", "kingdee"]
    base_url: str
    company_code: str = "C01"
    mapping: Path | None = None  # None: the packaged default mapping for the system
    process_code: str = "PROC-OAFIN-EXPENSE"  # DingTalk: the approval form to extract
    # Requests per second to this system; None: the connector's default from the documented limits
    # (DingTalk 40/s per app and API, source-systems.md §1.6; Kingdee documents none).
    rate_limit_per_second: float | None = None
    page_size: int | None = None
    timeout_seconds: float = 30.0
    # The sandbox's published fake credentials; only for `oafin demo` and `oafin sandbox serve`.
    use_sandbox_credentials: bool = False
    # Credentials: never in the file. Set OAFIN_OA__APP_KEY / OAFIN_OA__APP_SECRET, or for Kingdee
    # OAFIN_FINANCE__ACCT_ID, __USERNAME, __APP_ID, __APP_SECRET.
    app_key: str | None = None
    app_secret: SecretStr | None = None
    acct_id: str | None = None
    username: str | None = None
    app_id: str | None = None


class WarehouseConfig(BaseModel):
    url: str = "sqlite:///oafin.db"


class ReportsConfig(BaseModel):
    dir: Path = Path("reports")


class ReconcileConfig(BaseModel):
    """Tolerances and windows (DESIGN, "Reconciliation")."""

    amount_tolerance_fen: int = Field(1, ge=0)
    date_window_days: int = Field(15, ge=0)
    payment_sla_days: int = Field(5, ge=0)
    lookback_days: int = Field(62, ge=0)


class AutoApproveRule(BaseModel):
    """A correction the flow may push without a human (issue #6): its action, and optionally a
    cap on the claim amount and the exception types it applies to (empty: any)."""

    name: str
    action: Literal["oa_status_comment", "finance_create_bill", "finance_flag_recall"]
    max_amount_fen: int | None = Field(None, ge=0)
    exception_types: list[str] = []


class CorrectionsConfig(BaseModel):
    """Pushing corrections back (DESIGN, "Corrections"); see pipeline/corrections."""

    allow_audit: bool = False  # Kingdee: also Audit the bills oafin creates (else Save + Submit only)
    comment_userid: str | None = None  # DingTalk userid the status comments are posted as
    approval_timeout_seconds: int = Field(3600, ge=1)
    approval_poll_seconds: int = Field(10, ge=1)
    auto_approve: list[AutoApproveRule] = []


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OAFIN_", env_nested_delimiter="__", extra="forbid")

    oa: SourceConfig
    finance: SourceConfig
    warehouse: WarehouseConfig = WarehouseConfig()
    reports: ReportsConfig = ReportsConfig()
    reconcile: ReconcileConfig = ReconcileConfig()
    corrections: CorrectionsConfig = CorrectionsConfig()
    tables_dir: Path | None = None  # None: the packaged default code tables
    base_dir: Path = Path(".")  # the config file's folder; relative paths resolve against it

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    @property
    def reports_dir(self) -> Path:
        return self.resolve(self.reports.dir)

    @property
    def warehouse_url(self) -> str:
        url = self.warehouse.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
            return prefix + str(self.resolve(Path(url[len(prefix) :])))
        return url


def _find_secrets(data: dict[str, Any], trail: str = "") -> list[str]:
    found = []
    for key, value in data.items():
        where = f"{trail}.{key}" if trail else key
        if isinstance(value, dict):
            found += _find_secrets(value, where)
        elif key.lower() in SECRET_KEYS and value not in (None, ""):
            found.append(where)
    return found


def load_settings(path: Path | str) -> Settings:
    """Read ``path`` (TOML), apply ``OAFIN_*`` overrides, refuse secrets in the file."""
    path = Path(path).resolve()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    secrets = _find_secrets(data)
    if secrets:
        raise ConfigError(
            f"{path}: {', '.join(secrets)} must not be in a config file; set them in the environment "
            "(e.g. OAFIN_OA__APP_SECRET) or a Prefect Secret block"
        )
    data.setdefault("base_dir", str(path.parent))

    class _FileSettings(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            # environment first, then the file: OAFIN_* overrides every key
            return (env_settings, init_settings)

    try:
        loaded = _FileSettings(**data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return Settings.model_validate(loaded.model_dump())


def render_toml(settings: Settings) -> str:
    """The settings as a TOML file, without credentials (for `oafin demo` to write beside its reports)."""
    lines: list[str] = []
    if settings.tables_dir is not None:
        lines.append(f'tables_dir = "{settings.tables_dir}"')
    for section in ("oa", "finance", "warehouse", "reports", "reconcile"):
        model: BaseModel = getattr(settings, section)
        lines.append(f"\n[{section}]")
        for key, value in model.model_dump(exclude_none=True).items():
            if key in SECRET_KEYS or key in {"app_key", "acct_id", "username", "app_id"}:
                continue
            if isinstance(value, bool):
                lines.append(f"{key} = {'true' if value else 'false'}")
            elif isinstance(value, int | float):
                lines.append(f"{key} = {value}")
            else:
                lines.append(f'{key} = "{value}"')
    return "\n".join(lines).lstrip() + "\n"


class OaFinDefaults:
    """The embedded defaults `oafin demo` runs on: the sandbox, a SQLite file, reports beside it."""

    @staticmethod
    def demo_toml(dingtalk_url: str, kingdee_url: str) -> str:
        return f"""# Written by `oafin demo`. Credentials are the sandbox's public fake ones (use_sandbox_credentials);
# for real systems set them in the environment: OAFIN_OA__APP_KEY, OAFIN_OA__APP_SECRET,
# OAFIN_FINANCE__ACCT_ID, OAFIN_FINANCE__USERNAME, OAFIN_FINANCE__APP_ID, OAFIN_FINANCE__APP_SECRET.
[oa]
system = "dingtalk"
base_url = "{dingtalk_url}"
company_code = "C01"
use_sandbox_credentials = true
rate_limit_per_second = 500  # the local sandbox; a real DingTalk app allows 40/s per API

[finance]
system = "kingdee"
base_url = "{kingdee_url}"
company_code = "C01"
use_sandbox_credentials = true
rate_limit_per_second = 200

[warehouse]
url = "sqlite:///oafin.db"

[reports]
dir = "reports"
"""
