"""Prefect's temporary (ephemeral) API server, started by ``oafin run`` and ``oafin demo``.

Without ``PREFECT_API_URL``, the first flow call starts a local Prefect server in a subprocess
and waits for it to answer; the first start also creates and migrates its SQLite database.
Prefect waits 20 s (``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS``), which a loaded
2-core machine misses ("Timed out while attempting to connect to ephemeral Prefect API
server", issue #10 item 4). ``ephemeral_server()`` wraps the flow call: it gives the server a
generous wait (unless the operator set one), says what is happening while it starts, and turns
a start that still fails into an error that says what to do.

Nothing here changes a run against a real server (``PREFECT_API_URL`` set): then it does nothing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TextIO

TIMEOUT_ENV = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
DEFAULT_STARTUP_TIMEOUT_SECONDS = 300  # Prefect's own default is 20
_PREFECT_TIMEOUT_TEXT = "Timed out while attempting to connect to ephemeral Prefect API server"


class PrefectServerStartError(RuntimeError):
    """The temporary Prefect server did not answer in time; the message says what to do."""


def startup_timeout(environ: Mapping[str, str] | None = None) -> int:
    """Seconds to wait for the temporary server: the operator's ``TIMEOUT_ENV`` if set, else ours."""
    env = os.environ if environ is None else environ
    value = env.get(TIMEOUT_ENV, "").strip()
    if value:
        try:
            return max(0, int(float(value)))
        except ValueError:
            pass
    return DEFAULT_STARTUP_TIMEOUT_SECONDS


def uses_ephemeral_server() -> bool:
    """True when no Prefect API URL is configured, so a flow call starts a temporary server."""
    from prefect.settings import PREFECT_API_URL

    return not PREFECT_API_URL.value()


def start_failure_advice(timeout: int) -> str:
    """What an operator can do when the temporary server does not come up."""
    return (
        f"Prefect's temporary local server did not answer within {timeout} s "
        "(the machine may be busy, or its first start is still migrating its database). "
        f"Try again with a longer wait, e.g. `export {TIMEOUT_ENV}=900`, "
        "or start a Prefect server once in another terminal (`prefect server start`) and "
        "point oafin at it: `export PREFECT_API_URL=http://127.0.0.1:4200/api`."
    )


def is_start_timeout(exc: BaseException) -> bool:
    """Prefect's own error for a temporary server that did not answer in time (a ``RuntimeError``)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if _PREFECT_TIMEOUT_TEXT in str(current):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


@contextmanager
def ephemeral_server(out: TextIO | None = None) -> Iterator[None]:
    """Run a flow call with a generous startup wait for Prefect's temporary server.

    Prints one line saying the server is starting (to ``out``, stderr by default); raises
    ``PrefectServerStartError`` with advice if it still does not start in time.
    """
    if not uses_ephemeral_server():
        yield
        return
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, temporary_settings

    timeout = startup_timeout()
    print(
        f"prefect: starting a temporary local Prefect server (its first start also migrates its "
        f"database; waiting up to {timeout} s; set PREFECT_API_URL to use a running server instead)",
        file=out or sys.stderr,
        flush=True,
    )
    try:
        with temporary_settings({PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: timeout}):
            yield
    except Exception as exc:
        if is_start_timeout(exc):
            raise PrefectServerStartError(start_failure_advice(timeout)) from exc
        raise
