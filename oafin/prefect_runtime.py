"""Prefect's temporary (ephemeral) API server, started by ``oafin run`` and ``oafin demo``.

Without ``PREFECT_API_URL``, the first flow call starts a local Prefect server in a subprocess
and waits for it to answer; the first start also creates and migrates its SQLite database.
Prefect waits 20 s (``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS``), which a loaded
2-core machine misses ("Timed out while attempting to connect to ephemeral Prefect API
server", issue #10 item 4). ``ephemeral_server()`` wraps the flow call: it gives the server a
generous wait (unless the operator set one), says what is happening while it starts, and turns
a start that still fails into an error that says what to do.

``EarlyServer`` (``oafin demo``) starts that server at the beginning of the command instead, in
the background, so that its start (about a third of the demo on a new PREFECT_HOME: importing the
server, migrating its database) overlaps the demo's own preparation (generating and serving the
sandbox, importing the flow); the flow call then finds it running. A command that fails or is
interrupted before it reaches the flow stops it, so no server is left behind.

Nothing here changes a run against a real server (``PREFECT_API_URL`` set): then it does nothing.
"""

from __future__ import annotations

import contextvars
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TextIO

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


def _starting_message(timeout: int) -> str:
    return (
        f"prefect: starting a temporary local Prefect server (its first start also migrates its "
        f"database; waiting up to {timeout} s; set PREFECT_API_URL to use a running server instead)"
    )


class EarlyServer:
    """Prefect's temporary server, started now in a background thread, for a flow call later.

    The thread calls Prefect's own ``SubprocessASGIServer().start()`` (the same server, port
    choice, settings and wait as the flow call would use); the flow call then finds that server
    running and uses it. ``wait()`` before the flow call: it blocks until the server answers and
    raises what its start raised (``PrefectServerStartError`` with advice when it did not answer
    in time). ``stop()`` when the command ends without having handed the server to a flow (a
    failure or Ctrl-C before it): the server process is stopped, never left behind. A server that
    was handed over is stopped by Prefect when the process exits, as before.
    """

    def __init__(self, timeout: int | None = None) -> None:
        # imported here, in the calling thread: the background thread only spawns and polls
        from prefect.server.api.server import SubprocessASGIServer

        self.timeout = startup_timeout() if timeout is None else timeout
        self.server: Any = SubprocessASGIServer()  # Prefect's one temporary server of this process
        # one already running (started by someone else in this process) is used, never stopped here
        self.handed_over = bool(self.server.running)
        self.error: BaseException | None = None
        from oafin.stopping import before_forced_exit

        before_forced_exit(self._kill)  # a SIGTERM that cannot unwind (oafin.stopping) kills it
        context = contextvars.copy_context()  # the caller's Prefect settings, in the thread too
        self._thread = threading.Thread(
            target=context.run, args=(self._start,), name="oafin-prefect-server", daemon=True
        )
        self._thread.start()

    def _kill(self) -> None:
        process = self.server.server_process
        if process is not None:
            process.kill()

    def _start(self) -> None:
        try:
            self.server.start(timeout=self.timeout)
        except BaseException as exc:  # raised by wait(), in the thread that needs the server
            self.error = exc

    @property
    def process(self) -> Any:
        """The server's ``subprocess.Popen`` (None before it is spawned and after ``stop()``)."""
        return self.server.server_process

    def wait(self) -> None:
        """Block until the server answers; raise what its start raised."""
        self._thread.join()
        if self.error is not None:
            if is_start_timeout(self.error):
                raise PrefectServerStartError(start_failure_advice(self.timeout)) from self.error
            raise self.error
        self.handed_over = True

    def stop(self) -> None:
        """Stop the server process (safe to call more than once); not one that was already running."""
        if self.handed_over:
            return
        # the thread spawns the process as soon as it runs: wait for that, so none is spawned after
        while self._thread.is_alive() and self.server.server_process is None:
            time.sleep(0.01)
        self.server.stop()  # terminate, then kill after 5 s; also ends the thread's wait
        self._thread.join(timeout=10)

    def close(self) -> None:
        """At the end of the command: stop the server unless a flow call was handed it."""
        if not self.handed_over:
            self.stop()


def _raise_system_exit(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def early_server(out: TextIO | None = None) -> Iterator[EarlyServer | None]:
    """Start Prefect's temporary server now (``EarlyServer``); None against a running server.

    Until the block ends, SIGTERM unwinds the main thread (``SystemExit(143)``) instead of ending
    the process at once, so the block's end stops a server that no flow was handed. (During the
    flow Prefect installs its own SIGTERM handler, and restores this one after it.)
    """
    if not uses_ephemeral_server():
        yield None
        return
    timeout = startup_timeout()
    print(_starting_message(timeout) + "; meanwhile the demo prepares", file=out or sys.stderr, flush=True)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_system_exit)
    server = EarlyServer(timeout)
    try:
        yield server
    finally:
        try:
            server.close()
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


@contextmanager
def ephemeral_server(out: TextIO | None = None, early: EarlyServer | None = None) -> Iterator[None]:
    """Run a flow call with a generous startup wait for Prefect's temporary server.

    Prints one line saying the server is starting (to ``out``, stderr by default); raises
    ``PrefectServerStartError`` with advice if it still does not start in time. ``early``: the
    server already being started (``early_server``); waited for here, before the flow call.
    """
    if early is not None:
        early.wait()
        yield
        return
    if not uses_ephemeral_server():
        yield
        return
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, temporary_settings

    timeout = startup_timeout()
    print(_starting_message(timeout), file=out or sys.stderr, flush=True)
    try:
        with temporary_settings({PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: timeout}):
            yield
    except Exception as exc:
        if is_start_timeout(exc):
            raise PrefectServerStartError(start_failure_advice(timeout)) from exc
        raise
