"""The PostgreSQL server a test session uses: the one at ``OAFIN_TEST_PG_URL`` if it answers, else a
throwaway one of its own.

The throwaway server is pytest-postgresql's ``PostgreSQLExecutor`` (the process behind its
``postgresql_proc`` fixture) over the operating system's PostgreSQL binaries (Debian's ``postgresql``
package: ``/usr/lib/postgresql/<ver>/bin``, which is not on the PATH). It lives in a temporary
directory, listens on a free port of 127.0.0.1 with trust authentication, gets a ``test`` database,
and is stopped and deleted when the context ends. PostgreSQL refuses to run as root, so as root the
server runs as the ``postgres`` system user (``nobody`` if there is none) through ``runuser``.

Plain functions, no pytest: ``tests/fixtures_db.py`` wraps them in a session fixture and
``tests/test_pg_server.py`` tests them with real processes.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import port_for
import psycopg
from pytest_postgresql.executors import PostgreSQLExecutor
from sqlalchemy import create_engine, text

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin/pg_ctl"
START_TIMEOUT_S = 90  # generous: the machine may be loaded; a normal start takes 1-2 s


class NoPostgres(RuntimeError):
    """Neither a running server nor a throwaway one: the message says why, and what to do."""


@dataclass(frozen=True)
class Served:
    """The server a session uses: its URL, whether this session started it, and how long that took."""

    url: str
    started: bool
    start_s: float = 0.0
    folder: Path | None = None  # the throwaway server's directory (data, socket, log)


def configured_url() -> str:
    return os.environ.get("OAFIN_TEST_PG_URL", DEFAULT_URL)


def probe(url: str, timeout_s: int = 3) -> str | None:
    """None when a server answers ``select 1`` at ``url``; otherwise why it did not."""
    engine = create_engine(url, connect_args={"connect_timeout": timeout_s})
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    finally:
        engine.dispose()
    return None


def _version(path: Path) -> tuple[int, ...]:
    match = re.search(r"/postgresql/([\d.]+)/bin/", str(path))
    return tuple(int(p) for p in match.group(1).split(".")) if match else ()


def find_pg_ctl() -> Path | None:
    """``$OAFIN_TEST_PG_CTL``, else the newest Debian install, else ``pg_ctl`` on the PATH."""
    if override := os.environ.get("OAFIN_TEST_PG_CTL"):
        return Path(override)
    debian = sorted((Path(p) for p in glob.glob(DEBIAN_BIN_GLOB)), key=_version, reverse=True)
    if debian:
        return debian[0]
    on_path = shutil.which("pg_ctl")
    return Path(on_path) if on_path else None


def _unprivileged_account() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise NoPostgres("running as root and there is no 'postgres' or 'nobody' user to run PostgreSQL as")


def _as_user_wrapper(pg_ctl: Path, account: pwd.struct_passwd, folder: Path) -> Path:
    """A ``pg_ctl`` that runs the real one as ``account`` (root-owned, in a root-only folder)."""
    runuser = shutil.which("runuser")
    if runuser is None:
        raise NoPostgres(
            "running as root and 'runuser' (util-linux) is missing: cannot drop to a PostgreSQL user"
        )
    wrapper = folder / "pg_ctl"
    wrapper.write_text(
        f'#!/bin/sh\ncd / && exec {runuser} -u {account.pw_name} -- "{pg_ctl}" "$@"\n', encoding="utf-8"
    )
    wrapper.chmod(0o700)
    return wrapper


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def _first_connection(port: int) -> psycopg.Connection:
    """Connect as soon as the server accepts logins ("the database system is starting up" until then)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            return psycopg.connect(
                host="127.0.0.1",
                port=port,
                user="postgres",
                dbname="postgres",
                autocommit=True,
                connect_timeout=5,
            )
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextmanager
def throwaway_postgres(dbname: str = "test") -> Iterator[Served]:
    """Start a PostgreSQL server in a temporary directory; stop it and delete the directory at the end."""
    began = time.perf_counter()
    pg_ctl = find_pg_ctl()
    if pg_ctl is None or not pg_ctl.exists():
        raise NoPostgres(
            f"no PostgreSQL server binaries (looked at $OAFIN_TEST_PG_CTL, {DEBIAN_BIN_GLOB} and the PATH; "
            f"found {pg_ctl}). Install them: `apt-get install postgresql` (`make test` does it when run as root)."
        )
    base = Path(tempfile.mkdtemp(prefix="oafin-pg-"))
    private = Path(tempfile.mkdtemp(prefix="oafin-pg-ctl-"))  # stays root-only: holds the wrapper
    executable = pg_ctl
    if os.geteuid() == 0:
        account = _unprivileged_account()
        os.chown(base, account.pw_uid, account.pw_gid)
        executable = _as_user_wrapper(pg_ctl, account, private)
    port = port_for.select_random()
    executor = PostgreSQLExecutor(
        executable=str(executable),
        host="127.0.0.1",
        port=port,
        datadir=str(base / "data"),
        unixsocketdir=str(base),
        logfile=str(base / "postgresql.log"),
        startparams="-w",
        dbname=dbname,
        user="postgres",
        timeout=START_TIMEOUT_S,
        postgres_options="-c fsync=off -c synchronous_commit=off -c full_page_writes=off",  # throwaway data
    )
    try:
        try:
            executor.start()  # returns once the port is open, which is before the server accepts logins
            with _first_connection(port) as conn:
                conn.execute(f'create database "{dbname}"')
        except NoPostgres:
            raise
        except Exception as exc:
            raise NoPostgres(
                f"the throwaway PostgreSQL ({pg_ctl}, port {port}) did not start: {type(exc).__name__}: {exc}\n"
                f"server log:\n{_log_tail(base / 'postgresql.log')}"
            ) from exc
        yield Served(
            f"postgresql+psycopg://postgres@127.0.0.1:{port}/{dbname}",
            True,
            time.perf_counter() - began,
            base,
        )
    finally:
        try:
            if executor.running():
                executor.stop()
        finally:
            shutil.rmtree(base, ignore_errors=True)
            shutil.rmtree(private, ignore_errors=True)


@contextmanager
def postgres_for_tests(url: str | None = None) -> Iterator[Served]:
    """The server at ``url`` (default ``$OAFIN_TEST_PG_URL``) if it answers, else a throwaway one.

    Raises ``NoPostgres`` with both reasons when neither works.
    """
    url = url or configured_url()
    why = probe(url)
    if why is None:
        yield Served(url, started=False)
        return
    stack = ExitStack()
    try:
        served = stack.enter_context(throwaway_postgres())
    except NoPostgres as exc:
        raise NoPostgres(
            f"PostgreSQL is required: nothing answers at {url} ({why}), and {exc}\n"
            "Start a server and point OAFIN_TEST_PG_URL at it, or install PostgreSQL's binaries."
        ) from exc
    with stack:
        yield served
