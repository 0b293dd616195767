"""The first SIGTERM ends a command, even one hung in a call that never returns (issue #10 item 14).

Inside a flow, Prefect turns SIGTERM into an exception in the main thread, but before it marks
the run crashed it waits for its task threads (``ThreadPoolTaskRunner.__exit__`` joins them); a
task blocked in a read that does not return (a server that stops answering) keeps the process
alive until a second SIGTERM. Here a watcher
thread learns of the signal through the interpreter's wake-up fd (whichever Python handler is
installed at the time: Prefect's bridge during a flow; outside one SIGTERM keeps its default
and ends the process at once), says so, gives the orderly path ``GRACE_SECONDS`` to
finish, then ends the process (the Prefect run then stays ``Running`` until Prefect's heartbeat
check marks it crashed). Nothing is lost by that: every warehouse write is a transaction
and a re-run resumes from what was committed (tests/test_crash.py kills runs with SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

GRACE_SECONDS = 10.0
EXIT_CODE = 128 + signal.SIGTERM
_installed = False
_before_forced_exit: list[Callable[[], object]] = []


def before_forced_exit(callback: Callable[[], object]) -> None:
    """Call ``callback`` (from the watcher thread) before the process ends without unwinding:
    for what the orderly path would have stopped (a server process started by this one)."""
    _before_forced_exit.append(callback)


def _watch(fd: int, grace: float) -> None:
    while True:
        try:
            got = os.read(fd, 64)
        except OSError:
            return
        if not got:
            return
        if signal.SIGTERM in got:
            break
    print(
        "oafin: stopped by SIGTERM; what was committed stays, a re-run resumes from there",
        file=sys.stderr,
        flush=True,
    )
    time.sleep(grace)  # the orderly path: Prefect marks the run crashed and returns
    print(
        f"oafin: still busy {grace:.0f} s after SIGTERM (a call that does not return): exiting now",
        file=sys.stderr,
        flush=True,
    )
    for callback in list(_before_forced_exit):
        with contextlib.suppress(Exception):  # the exit must happen whatever a callback does
            callback()
    os._exit(EXIT_CODE)


def stop_on_first_sigterm(grace: float = GRACE_SECONDS) -> None:
    """Install the watcher (once per process, from the main thread; elsewhere it does nothing)."""
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread() or os.name != "posix":
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    threading.Thread(target=_watch, args=(read_fd, grace), name="oafin-sigterm", daemon=True).start()
    _installed = True
