"""Process-wide handles shared by the steps: one engine per warehouse URL, settings by path."""

from __future__ import annotations

import threading
from functools import lru_cache

from sqlalchemy import Engine

from mappings.code_tables import CodeTables, load_code_tables
from oafin.config import Settings, load_settings
from oafin.warehouse.store import connect

_lock = threading.Lock()
_config_of: dict[str, str] = {}  # warehouse URL → the config file that named it, for error messages


def warehouse(url: str) -> Engine:
    """One engine per URL per process; tasks running in threads share it (and create tables once)."""
    with _lock:
        return _warehouse(url)


@lru_cache(maxsize=8)
def _warehouse(url: str) -> Engine:
    return connect(url, config=_config_of.get(url))


def settings_from(config_path: str) -> Settings:
    settings = load_settings(config_path)
    _config_of.setdefault(settings.warehouse_url, str(config_path))
    return settings


def code_tables(settings: Settings) -> CodeTables:
    return (
        load_code_tables(settings.resolve(settings.tables_dir)) if settings.tables_dir else load_code_tables()
    )
