"""Build a connector client for a configured source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mappings.loader import default_mapping_path, load_mapping
from oafin.config import ConfigError, Settings, SourceConfig
from oafin.connectors.http import Timeouts
from oafin.connectors.limits import Acquire, RateLimiter, RetryPolicy
from oafin.systems.dingtalk.client import DingTalkClient
from oafin.systems.kingdee.client import KingdeeClient


def _require(value: Any, env: str, system: str) -> Any:
    if value in (None, ""):
        raise ConfigError(f"{system}: credential missing; set the environment variable {env}")
    return value


def open_client(
    source: SourceConfig, role: str, limiter: Acquire | None = None, retry: RetryPolicy | None = None
) -> DingTalkClient | KingdeeClient:
    """A client for ``source`` with credentials from the environment (or the sandbox's public ones).

    ``limiter`` is called before every request; the flow passes one shared by every task and flow
    run (a Prefect global rate limit, ``tasks.limits``). Without one, an in-process token bucket
    at ``rate_limit_per_second`` (or the connector's documented default) applies. ``retry``
    replaces the connector's default retry policy (tests shorten its waits).
    """
    env = f"OAFIN_{role.upper()}__"
    secret = source.app_secret.get_secret_value() if source.app_secret else None
    if source.system == "dingtalk":
        if source.use_sandbox_credentials:
            from oafin.sandbox import credentials as sc

            key, secret = sc.DINGTALK_APP_KEY, sc.DINGTALK_APP_SECRET
        else:
            key = _require(source.app_key, env + "APP_KEY", "dingtalk")
            secret = _require(secret, env + "APP_SECRET", "dingtalk")
        return DingTalkClient(source.base_url, key, secret, **_client_options(source, limiter, retry))
    if source.use_sandbox_credentials:
        from oafin.sandbox import credentials as sc

        acct, user, app_id, secret = (
            sc.KINGDEE_ACCT_ID,
            sc.KINGDEE_USERNAME,
            sc.KINGDEE_APP_ID,
            sc.KINGDEE_APP_SECRET,
        )
    else:
        acct = _require(source.acct_id, env + "ACCT_ID", "kingdee")
        user = _require(source.username, env + "USERNAME", "kingdee")
        app_id = _require(source.app_id, env + "APP_ID", "kingdee")
        secret = _require(secret, env + "APP_SECRET", "kingdee")
    return KingdeeClient(
        source.base_url, acct, user, app_id, secret, **_client_options(source, limiter, retry)
    )


def _client_options(
    source: SourceConfig, limiter: Acquire | None = None, retry: RetryPolicy | None = None
) -> dict[str, Any]:
    options: dict[str, Any] = {"timeouts": Timeouts(read=source.timeout_seconds)}
    if retry is not None:
        options["retry"] = retry
    if source.page_size:
        options["page_size"] = source.page_size
    if limiter is not None:
        options["limiter"] = limiter
    elif source.rate_limit_per_second:
        rate = source.rate_limit_per_second
        options["limiter"] = RateLimiter(rate, burst=max(1, int(rate // 10))).acquire
    return options


def mapping_path(settings: Settings, source: SourceConfig) -> Path:
    return settings.resolve(source.mapping) if source.mapping else default_mapping_path(source.system)


def source_mapping(settings: Settings, source: SourceConfig) -> Any:
    return load_mapping(mapping_path(settings, source))
