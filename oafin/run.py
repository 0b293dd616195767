"""``oafin run``: the daily flow for one period, with a clear message instead of a traceback on failure."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from oafin.config import load_settings


def run_flow(config_path: Path, period: str, as_of: str | None = None) -> dict[str, Any]:
    from flows.daily import daily

    load_settings(config_path)  # fail on a bad config before Prefect starts
    return daily(config_path=str(Path(config_path).resolve()), period=period, as_of=as_of)


def run_period(config_path: Path, period: str, as_of: str | None) -> int:
    try:
        summary = run_flow(config_path, period, as_of)
    except Exception as exc:  # the flow's own logs hold the details; the operator gets one clear line
        from oafin.config import ConfigError

        if isinstance(exc, ConfigError):
            raise
        print(f"oafin: run failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print_summary(summary)
    return 0


def print_summary(summary: dict[str, Any]) -> None:
    stats = summary["stats"]
    print(
        f"period {summary['period']}: {stats['exceptions']} exceptions, auto-match rate {stats['auto_match_rate']}"
    )
    for name, path in summary["reports"].items():
        print(f"  {name:8} {path}")
