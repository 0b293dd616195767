"""Checks a command makes before anything starts (issue #11, "Errors"): its arguments, the
warehouse and every source's address, each failure one line saying what failed, where (a URL, a
database with its password masked) and what to do.

Without them a mistyped ``--period`` started a Prefect server and ended in a traceback, a sandbox
that was down surfaced after 82 s of retries as "connection failed" with no URL, and an
unreachable PostgreSQL printed 305 lines. The exit codes (``oafin.cli``): 2 for an argument or
config error, 1 for a system that cannot be reached.
"""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from oafin.config import Settings
from oafin.periods import Period

CONNECT_TIMEOUT_SECONDS = 5.0
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0"})


class ArgumentError(Exception):
    """A command-line argument cannot be used; the message names it and the expected form."""


class UnreachableError(Exception):
    """A system or database the run needs does not answer; the message is the operator's one line."""


def check_period(value: str | None, *, option: str = "--period", relative: bool = True) -> None:
    """``2026-10`` (or ``current`` / ``previous`` where ``relative``), else ``ArgumentError``."""
    if value is None or (relative and value in ("current", "previous")):
        return
    try:
        Period.parse(value)
    except ValueError:
        also = " (or current / previous)" if relative else ""
        raise ArgumentError(
            f"{option} {value!r} is not a period: give the month as YYYY-MM, e.g. 2026-10{also}"
        ) from None


def check_as_of(value: str | None) -> None:
    if value is None:
        return
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ArgumentError(
            f"--as-of {value!r} is not an ISO date or time: e.g. 2026-10-20 or 2026-10-20T18:00 "
            "(China time unless a zone is given)"
        ) from None


def masked_url(url: str) -> str:
    """A database URL with its password replaced by ``***``."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads: show only its scheme
        return url.split("://", 1)[0] + "://..."


def check_warehouse(settings: Settings, config: Path) -> None:
    """Connect to the warehouse once, with a short timeout."""
    from sqlalchemy import create_engine, text

    url = settings.warehouse_url
    args = {"connect_timeout": int(CONNECT_TIMEOUT_SECONDS)} if url.startswith("postgresql") else {}
    try:
        engine = create_engine(url, connect_args=args)
        try:
            with engine.connect() as conn:
                conn.execute(text("select 1"))
        finally:
            engine.dispose()
    except Exception as exc:
        reason = _first_line(getattr(exc, "orig", None) or exc)
        raise UnreachableError(
            f"cannot connect to the warehouse {masked_url(url)}: {reason}. Start the database or "
            f"correct [warehouse] url in {config} (or OAFIN_WAREHOUSE__URL)"
        ) from None


def check_sources_reachable(
    settings: Settings, config: Path, connect: Callable[[str, int], None] | None = None
) -> None:
    """A TCP connection to each source's host and port (skipped where a proxy carries the traffic)."""
    for source in settings.sources:
        parts = urlsplit(source.base_url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if _proxied(parts.scheme, host):
            continue
        try:
            (connect or _connect)(host, port)
        except OSError as exc:
            local = host in LOCAL_HOSTS
            todo = (
                "start the sandbox (`.venv/bin/oafin sandbox serve`, in another terminal)"
                if local
                else "check the address and the network (firewall, VPN)"
            )
            raise UnreachableError(
                f"cannot reach source {source.name!r} ({source.system}) at {source.base_url}: "
                f"{exc.strerror or exc}. {todo.capitalize()}, or correct its base_url in {config}"
            ) from None


def _connect(host: str, port: int) -> None:
    with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_SECONDS):
        pass


def _proxied(scheme: str, host: str) -> bool:
    proxies = urllib.request.getproxies()
    return bool(proxies.get(scheme) or proxies.get("all")) and not urllib.request.proxy_bypass(host)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0].rstrip(".")
