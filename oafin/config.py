"""Configuration: one TOML file, every key overridable by ``OAFIN_*`` environment variables.

Nested keys use a double underscore: ``OAFIN_WAREHOUSE__URL``, ``OAFIN_RECONCILE__PAYMENT_SLA_DAYS``;
a source's keys ``OAFIN_SOURCE_<NAME>__<KEY>`` (``OAFIN_SOURCE_OA__BASE_URL``).

Sources are a list (``[[sources]]``: ``name``, ``system``, ``role``, ``company_code`` and the
system's own keys, checked by its settings model, oafin.systems.base), and ``chain`` names them
in order, OA first. Credentials are read only from the environment, per source:
``OAFIN_SOURCE_<NAME>_<FIELD>`` (``OAFIN_SOURCE_OA_APP_SECRET``; each system lists its fields);
a config file that holds one is refused. The old ``[oa]`` / ``[finance]`` sections are refused
with the rewrite printed.

Relative paths in the file (mapping files, tables, reports, a SQLite database) are relative to the
file's own folder, so a config written next to its reports works from any working directory.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from oafin.systems.base import SourceSettings, check_keys, env_name
from oafin.systems.registry import UnknownSystemError, get_system

SECRET_KEYS = frozenset({"app_secret", "password", "secret", "token", "access_token", "app_key_secret"})
# A key is a credential when, lower-cased without ``_`` and ``-``, it is one of these or ends in one
# (appsecret, client_secret, App-Secret, api_token, db_password, ...).
_SECRET_NAMES = frozenset({"secret", "password", "passwd", "pwd", "token", "apikey", "privatekey"})
_SECRET_ENDINGS = ("secret", "password", "passwd", "token", "apikey", "privatekey")
# user:password@ inside a URL (a DSN or a webhook): the password belongs in the environment.
_URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    norm = re.sub(r"[-_\s]", "", key.lower())
    return key.lower() in SECRET_KEYS or norm in _SECRET_NAMES or norm.endswith(_SECRET_ENDINGS)


SourceConfig = SourceSettings  # one source's settings: a registered system's settings model


class ConfigError(Exception):
    """The configuration cannot be used; the message says which key and why."""


class _Section(BaseModel):
    """A config section: an unknown key is refused (``unknown_keys`` names the nearest valid one)."""

    model_config = ConfigDict(extra="forbid")


class WarehouseConfig(_Section):
    url: str = "sqlite:///oafin.db"


class ReportsConfig(_Section):
    dir: Path = Path("reports")
    # Where ``dir`` is published for people (a web server or share serving the reports folder,
    # e.g. "https://reports.example.com/oafin/"): the run page links the reports under it. Unset:
    # the links are the worker's file paths, which a browser elsewhere cannot open.
    public_url: str | None = None


class ReconcileConfig(_Section):
    """Tolerances and windows (DESIGN, "Reconciliation")."""

    amount_tolerance_fen: int = Field(1, ge=0)
    date_window_days: int = Field(15, ge=0)
    payment_sla_days: int = Field(5, ge=0)
    lookback_days: int = Field(62, ge=0)


class AutoApproveRule(_Section):
    """A correction the flow may push without a human (issue #6): its action, and optionally a
    cap on the claim amount and the exception types it applies to (empty: any)."""

    name: str
    action: Literal[
        "oa_status_comment",
        "finance_create_bill",
        "finance_flag_recall",
        "expense_write_voucher_no",
        "expense_comment",
    ]
    max_amount_fen: int | None = Field(None, ge=0)
    exception_types: list[str] = []


class OaApprovalConfig(_Section):
    """Corrections approved in the company's OA (issue #17): each batch becomes an approval
    instance of the form ``process_code``, submitted as ``originator_userid``."""

    source: str | None = None  # the OA source whose approval forms are used; default: the chain's first
    process_code: str | None = (
        None  # the approval form (DingTalk process code); the README says how to make it
    )
    originator_userid: str | None = None  # the OA user id the instances are submitted as
    dept_id: str | None = None  # the originator's department in the OA (DingTalk: -1 for the root)
    approvers: list[str] = []  # OA user ids who must approve; empty: the form's own approval flow
    # Actions that only an OA approval may approve (neither auto rules nor the Prefect form):
    # by action name, and by the role of the target system ("erp": every write to the ERP).
    required_for_actions: list[
        Literal["oa_status_comment", "finance_create_bill", "finance_flag_recall"]
    ] = []
    required_for_roles: list[Literal["oa", "expense", "erp"]] = []
    # How long a suspended corrections run waits for the instance before Prefect fails it (the
    # scheduled check still pushes a later approval).
    wait_timeout_seconds: int = Field(7 * 86400, ge=1)


class CorrectionsConfig(_Section):
    """Pushing corrections back (DESIGN, "Corrections"); see pipeline/corrections."""

    allow_audit: bool = False  # Kingdee: also Audit the bills oafin creates (else Save + Submit only)
    comment_userid: str | None = None  # DingTalk userid the status comments are posted as
    # the expense platform's staff id its comments are posted as (Hesine: "<corpId>:<staffId>")
    comment_staff_id: str | None = None
    approval_timeout_seconds: int = Field(3600, ge=1)
    approval_poll_seconds: int = Field(10, ge=1)
    auto_approve: list[AutoApproveRule] = []
    # Who approves what the auto rules leave: "prefect" (the run page's form; approver
    # self-declared) or "oa" (an approval instance in the OA; oa.required_* send chosen actions
    # there even under "prefect").
    approval: Literal["prefect", "oa"] = "prefect"
    oa: OaApprovalConfig = OaApprovalConfig()

    @model_validator(mode="after")
    def _oa_complete(self) -> CorrectionsConfig:
        oa = self.oa
        if self.approval == "oa" or oa.required_for_actions or oa.required_for_roles:
            missing = [k for k in ("process_code", "originator_userid") if not getattr(oa, k)]
            if missing:
                raise ValueError(
                    f"corrections.oa.{' and corrections.oa.'.join(missing)} must be set to approve corrections in the OA"
                )
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OAFIN_", env_nested_delimiter="__", extra="forbid")

    sources: list[SerializeAsAny[SourceSettings]]
    chain: list[str] = []  # source names, OA first; default: the sources in file order
    warehouse: WarehouseConfig = WarehouseConfig()
    reports: ReportsConfig = ReportsConfig()
    reconcile: ReconcileConfig = ReconcileConfig()
    corrections: CorrectionsConfig = CorrectionsConfig()
    tables_dir: Path | None = None  # None: the packaged default code tables
    base_dir: Path = Path(".")  # the config file's folder; relative paths resolve against it

    @field_validator("sources", mode="before")
    @classmethod
    def _system_settings(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [source_settings(item) if isinstance(item, dict) else item for item in value]

    @model_validator(mode="after")
    def _check_chain(self) -> Settings:
        names = [s.name for s in self.sources]
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            raise ValueError(f"source names must be unique: {', '.join(doubled)}")
        if not self.chain:
            self.chain = names
        unknown = [n for n in self.chain if n not in names]
        if unknown:
            raise ValueError(f"chain names {', '.join(unknown)}, not a source; sources: {', '.join(names)}")
        if len(self.chain) < 2:
            raise ValueError("chain needs at least two sources (an OA and a finance system)")
        roles = [self.source(n).role for n in self.chain]
        if roles[0] != "oa" or roles[-1] == "oa":
            raise ValueError(f"chain {self.chain} must start with an oa source and end with a finance one")
        return self

    def source(self, name: str) -> SourceSettings:
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(f"no source named {name!r}; sources: {', '.join(s.name for s in self.sources)}")

    @property
    def chain_sources(self) -> list[SourceSettings]:
        """The sources in chain order (the OA first)."""
        return [self.source(n) for n in self.chain]

    @property
    def company_code(self) -> str:
        """The company a run is for: the chain's first (OA) source's."""
        return self.chain_sources[0].company_code

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


SANDBOX_CREDENTIALS_KEY = "use_sandbox_credentials"


def source_settings(data: dict[str, Any]) -> SourceSettings:
    """One ``[[sources]]`` entry validated by its system's settings model (``ValueError`` if not)."""
    name = data.get("name", "?")
    if SANDBOX_CREDENTIALS_KEY in data:
        # An old demo config's switch: no config key can make a run use the sandbox's fake
        # credentials (only ``oafin demo`` puts them in its own environment, demo.sandbox_environment).
        fields = get_system(str(data["system"])).secret_fields if "system" in data else ("<FIELD>",)
        raise ValueError(
            f"source {name!r}: {SANDBOX_CREDENTIALS_KEY} no longer exists; credentials come only from "
            f"the environment ({', '.join(env_name(str(name), f) for f in fields)}); remove the key"
        )
    if "system" not in data:
        raise ValueError(f"source {name!r}: no system key")
    try:
        system = get_system(str(data["system"]))
    except UnknownSystemError as exc:
        raise ValueError(f"source {name!r}: {exc}") from None
    data = {**data, "role": data.get("role", system.role)}
    if data["role"] != system.role:
        raise ValueError(
            f"source {name!r}: a {system.name} system is an {system.role} source, not {data['role']}"
        )
    problems = check_keys(system.settings_model, data, f"source {name!r}")
    if problems:
        raise ValueError("; ".join(problems))
    try:
        return system.settings_model.model_validate(data)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"source {name!r}: {details}") from None


def unknown_keys(model: type[BaseModel], data: Any, trail: str = "") -> list[str]:
    """Every key of ``data`` (a parsed config or one of its sections, at any depth) that ``model``
    does not have, each with the nearest valid name. ``sources`` entries are left to their system's
    settings model (``source_settings``)."""
    if not isinstance(data, dict):
        return []
    valid = [k for k in model.model_fields if k != "base_dir"]
    problems = []
    for key, value in data.items():
        where = f"{trail}.{key}" if trail else str(key)
        if key not in model.model_fields:
            near = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.5)
            hint = f"; did you mean {near[0]!r}?" if near else f"; valid keys: {', '.join(valid)}"
            problems.append(f"unknown key {where!r}{hint}")
            continue
        if key == "sources":
            continue
        sub = _section_model(model.model_fields[key].annotation)
        if sub is None:
            continue
        if isinstance(value, list):
            for i, item in enumerate(value):
                problems += unknown_keys(sub, item, f"{where}[{i}]")
        else:
            problems += unknown_keys(sub, value, where)
    return problems


def _section_model(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds, directly or as ``list[Model]``; None for plain values."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _find_secrets(data: Any, trail: str = "") -> list[str]:
    """Where ``data`` (a parsed config, tables and lists at any depth) holds a credential: a key
    named like one with a value, or a URL carrying a password. Names the places, never the values."""
    found = []
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else []
    for key, value in items:
        where = f"{trail}.{key}" if trail else str(key)
        if isinstance(value, dict | list):
            found += _find_secrets(value, where)
        elif isinstance(key, str) and is_secret_key(key) and value not in (None, ""):
            found.append(where)
        elif isinstance(value, str) and _URL_PASSWORD.search(value):
            found.append(f"{where} (a password inside a URL; e.g. OAFIN_WAREHOUSE__URL for warehouse.url)")
    return found


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


LEGACY_ROLES = {"oa": "oa", "finance": "erp"}
LEGACY_DROPPED = frozenset({"use_sandbox_credentials", "app_key", "acct_id", "username", "app_id"})


def legacy_rewrite(data: dict[str, Any]) -> str:
    """The ``[[sources]]`` + ``chain`` text that replaces a config's old ``[oa]`` / ``[finance]`` sections."""
    lines = [f"chain = {_toml_value([s for s in LEGACY_ROLES if s in data])}"]
    for section, role in LEGACY_ROLES.items():
        if section not in data:
            continue
        old = dict(data[section])
        lines += ["", "[[sources]]", f'name = "{section}"']
        system = old.pop("system", "?")
        lines += [f"system = {_toml_value(system)}", f'role = "{role}"']
        for key, value in old.items():
            if key in LEGACY_DROPPED or is_secret_key(key):
                continue
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines)


def _legacy_env(data: dict[str, Any]) -> list[str]:
    moves = []
    for section in LEGACY_ROLES:
        if section not in data:
            continue
        try:
            fields = get_system(str(data[section].get("system"))).secret_fields
        except UnknownSystemError:
            continue
        moves += [f"OAFIN_{section.upper()}__{f.upper()} -> {env_name(section, f)}" for f in fields]
    return moves


def _source_env_overrides(data: dict[str, Any], environ: dict[str, str]) -> None:
    """``OAFIN_SOURCE_<NAME>__<KEY>=value`` overrides ``key`` of the source named ``name``."""
    for source in data.get("sources") or []:
        if not isinstance(source, dict) or "name" not in source:
            continue
        prefix = env_name(str(source["name"]), "") + "_"  # OAFIN_SOURCE_OA__
        for var, value in environ.items():
            if var.startswith(prefix) and len(var) > len(prefix):
                source[var[len(prefix) :].lower()] = value


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
            "(OAFIN_SOURCE_<NAME>_<FIELD>, e.g. OAFIN_SOURCE_OA_APP_SECRET) or a Prefect Secret block"
        )
    if any(section in data for section in LEGACY_ROLES):
        env = _legacy_env(data)
        raise ConfigError(
            f"{path}: the [oa] and [finance] sections are replaced by a list of sources and a chain. "
            "Replace them with:\n\n"
            + legacy_rewrite(data)
            + ("\n\nand rename the credential variables: " + ", ".join(env) if env else "")
        )
    problems = unknown_keys(Settings, data)
    if problems:
        raise ConfigError(f"{path}: {'; '.join(problems)}")
    _source_env_overrides(data, dict(os.environ))
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
        return Settings.model_validate(loaded.model_dump())
    except ValidationError as exc:
        raise ConfigError(f"{path}: {describe(exc)}") from None


def describe(exc: ValidationError) -> str:
    """A validation error as ``key: problem`` lines, never echoing the values given (a secret may be one)."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "config"
        lines.append(f"{where}: {error['msg']}")
    return "; ".join(lines)


def render_toml(settings: Settings) -> str:
    """The settings as a TOML file, without credentials (for `oafin demo` to write beside its reports)."""
    lines: list[str] = []
    if settings.tables_dir is not None:
        lines.append(f'tables_dir = "{settings.tables_dir}"')
    lines.append(f"chain = {_toml_value(settings.chain)}")
    for source in settings.sources:
        lines.append("\n[[sources]]")
        for key, value in source.model_dump(exclude_none=True).items():
            lines.append(f"{key} = {_toml_value(value)}")
    for section in ("warehouse", "reports", "reconcile"):
        model: BaseModel = getattr(settings, section)
        lines.append(f"\n[{section}]")
        for key, value in model.model_dump(exclude_none=True).items():
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines).lstrip() + "\n"


class OaFinDefaults:
    """The embedded defaults `oafin demo` runs on: the sandbox, a SQLite file, reports beside it."""

    @staticmethod
    def chain_toml(systems: list[tuple[str, str, str]], kinds: dict[str, list[str]] | None = None) -> str:
        """One source per ``(name, system, url)``, chained in that order, on the sandbox; ``kinds``:
        source name → the record kinds it reads (default: all its mapping's)."""
        names = ", ".join(f'"{name}"' for name, _, _ in systems)
        kinds = kinds or {}
        sources = "".join(
            f"""
[[sources]]
name = "{name}"
system = "{system}"
company_code = "C01"
base_url = "{url}"
rate_limit_per_second = {500 if i == 0 else 200}
"""
            + (f"kinds = {json.dumps(kinds[name])}\n" if name in kinds else "")
            for i, (name, system, url) in enumerate(systems)
        )
        return f"""# Written by `oafin demo --chain`. Credentials come from the environment, per source:
# OAFIN_SOURCE_<NAME>_<FIELD> (the demo sets the sandbox's public fake ones).
chain = [{names}]
{sources}
[warehouse]
url = "sqlite:///oafin.db"

[reports]
dir = "reports"
"""

    @staticmethod
    def demo_toml(oa_url: str, finance_url: str, *, oa: str = "dingtalk", finance: str = "kingdee") -> str:
        """Two sources named ``oa`` and ``finance`` (systems ``oa`` and ``finance``) on the sandbox."""
        return f"""# Written by `oafin demo`. Credentials come from the environment, per source:
# OAFIN_SOURCE_OA_<FIELD> and OAFIN_SOURCE_FINANCE_<FIELD> (the demo sets the sandbox's public
# fake ones; the fields each system reads are in the README).
chain = ["oa", "finance"]

[[sources]]
name = "oa"
system = "{oa}"
company_code = "C01"
base_url = "{oa_url}"
rate_limit_per_second = 500  # the local sandbox; a real DingTalk app allows 40/s per API

[[sources]]
name = "finance"
system = "{finance}"
company_code = "C01"
base_url = "{finance_url}"
rate_limit_per_second = 200

[warehouse]
url = "sqlite:///oafin.db"

[reports]
dir = "reports"
"""
