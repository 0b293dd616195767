"""A configured source: its system, its mapping, its credentials, and a reader over its API."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mappings.loader import default_mapping_path, load_mapping
from oafin.config import ConfigError, Settings, SourceConfig
from oafin.connectors.limits import Acquire, RetryPolicy
from oafin.systems.base import RecordKind, RecordReader, SourceSystem, credentials_from_env
from oafin.systems.registry import get_system


def system_of(source: SourceConfig) -> SourceSystem:
    return get_system(source.system)


def source_credentials(source: SourceConfig, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The source's credentials from ``environ`` (default: the process environment), each from
    ``OAFIN_SOURCE_<NAME>_<FIELD>``; a missing one is a ConfigError naming the variables to set.

    This is the one seam credentials enter by: the demo and the tests put the sandbox's public fake
    credentials into the environment under these names (oafin.demo.sandbox_environment).
    """
    found, missing = credentials_from_env(source.name, system_of(source).secret_fields, environ)
    if missing:
        raise ConfigError(
            f"source {source.name!r} ({source.system}): credentials missing; set the environment "
            f"variables {', '.join(missing)}"
        )
    return found


def open_reader(
    source: SourceConfig,
    limiter: Acquire | None = None,
    retry: RetryPolicy | None = None,
    environ: Mapping[str, str] | None = None,
) -> RecordReader:
    """A reader for ``source`` with credentials from the environment.

    ``limiter`` is called before every request; the flow passes one shared by every task and flow
    run (a Prefect global rate limit, ``tasks.limits``). Without one, an in-process token bucket
    at ``rate_limit_per_second`` (or the system's documented default) applies. ``retry``
    replaces the connector's default retry policy (tests shorten its waits).
    """
    credentials = source_credentials(source, os.environ if environ is None else environ)
    return system_of(source).open(source, credentials, limiter=limiter, retry=retry)


def mapping_path(settings: Settings, source: SourceConfig) -> Path:
    return settings.resolve(source.mapping) if source.mapping else default_mapping_path(source.system)


def source_mapping(settings: Settings, source: SourceConfig) -> Any:
    return load_mapping(mapping_path(settings, source))


def record_kinds(settings: Settings, source: SourceConfig) -> list[RecordKind]:
    """The kinds ``source`` is extracted by, after checking its settings against its mapping."""
    mapping = source_mapping(settings, source)
    system = system_of(source)
    problems = system.check_mapping(source, mapping)
    kinds = system.record_kinds(source, mapping)
    if source.kinds is not None:
        known = [k.name for k in kinds]
        problems += [
            f"source {source.name!r}: kinds names {name!r}, not a kind of its mapping ({', '.join(known)})"
            for name in source.kinds
            if name not in known
        ]
        kinds = [k for k in kinds if k.name in source.kinds]
    elif not _after_an_expense_platform(settings, source):
        # Vouchers are reconciled only against an expense platform's payments (issue #14); an ERP
        # right after the OA is read for its bills and payments, as before the chains, so a two-system
        # run never needs the ledger's permissions.
        vouchers = set(voucher_kinds(mapping))
        kinds = [k for k in kinds if k.name not in vouchers]
    if problems:
        raise ConfigError("; ".join(problems) + f" (mapping {mapping_path(settings, source)})")
    return kinds


def voucher_kinds(mapping: Any) -> list[str]:
    """The mapping's kinds whose records are vouchers (``doc_type`` the constant ``voucher``)."""
    return [
        kind
        for kind in mapping.kinds
        if (spec := mapping.fields_for(kind).get("doc_type")) is not None and spec.constant == "voucher"
    ]


def _after_an_expense_platform(settings: Settings, source: SourceConfig) -> bool:
    chain = [s.name for s in settings.chain_sources]
    at = chain.index(source.name) if source.name in chain else -1
    return at > 0 and settings.chain_sources[at - 1].role == "expense"


def check_sources(settings: Settings) -> None:
    """Every source's settings against its mapping (process codes, forms), before any extraction."""
    for source in settings.sources:
        record_kinds(settings, source)


def source_rate(source: SourceConfig) -> float:
    """The configured requests per second, else the system's documented default."""
    return float(source.rate_limit_per_second or system_of(source).default_rate_per_second)


def operator_hint(exc: BaseException, source: SourceConfig) -> str:
    """What an operator can do about an error that retrying will not fix."""
    hint = system_of(source).hint(exc, source)
    return hint or "the system answered in a way the connector does not understand; see the detail above"


def source_systems(settings: Settings) -> dict[str, list[str]]:
    """Standard entity → the systems whose records map to it (from each source's mapping)."""
    out: dict[str, list[str]] = {}
    for source in settings.chain_sources:
        entity = source_mapping(settings, source).entity
        if source.system not in out.setdefault(entity, []):
            out[entity].append(source.system)
    return out
