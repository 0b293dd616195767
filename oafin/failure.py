"""How a command that failed tells the operator: one clear line, and the traceback kept.

``report_failure`` prints ``oafin: <what> failed: <Type>: <message>`` on stderr, appends the full
traceback to the error log (``$OAFIN_LOG_DIR/oafin-errors.log``, default the system temp folder)
and names it; with ``--verbose`` (``OAFIN_VERBOSE=1``) the traceback goes to stderr as well
(issue #10 item 16: the commands used to drop it).
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path

VERBOSE_ENV = "OAFIN_VERBOSE"
LOG_DIR_ENV = "OAFIN_LOG_DIR"


def error_log_path() -> Path:
    return Path(os.environ.get(LOG_DIR_ENV) or tempfile.gettempdir()) / "oafin-errors.log"


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes")


def report_failure(what: str, exc: BaseException) -> Path | None:
    """Tell the operator ``what`` failed and keep the traceback; returns the log written, if any."""
    text = "".join(traceback.format_exception(exc))
    path: Path | None = error_log_path()
    try:
        if path is None:
            raise OSError("no error log")
        with path.open("a", encoding="utf-8") as log:
            log.write(f"--- {datetime.now(UTC).isoformat(timespec='seconds')} oafin {what} failed\n{text}\n")
    except OSError:
        path = None
    if verbose():
        print(text, file=sys.stderr, end="")
    where = f"traceback in {path}" if path else "traceback not kept: the error log is not writable"
    hint = "" if verbose() else "; --verbose prints it"
    print(f"oafin: {what} failed: {type(exc).__name__}: {exc} ({where}{hint})", file=sys.stderr)
    return path
