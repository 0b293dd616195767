"""Warehouse fixtures: every warehouse test runs on SQLite and on a real PostgreSQL.

The server is the one at ``OAFIN_TEST_PG_URL`` (default 127.0.0.1:5432, user postgres, trust auth,
database test) when it answers; otherwise the session starts a throwaway PostgreSQL of its own
(``tests/pg_server.py``) and stops it at the end. Each test gets its own schema, dropped afterwards.
When neither works the PostgreSQL half fails with the reason (with CI=true too), never skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from oafin.warehouse.store import connect
from tests.pg_server import NoPostgres, Served, configured_url, postgres_for_tests

_STARTED = pytest.StashKey[Served]()

# The configured URL only. The server the session really uses (maybe a throwaway one) is the
# ``pg_server_url`` fixture: use that in new code.
PG_ADMIN_URL = configured_url()


def pg_schema_url(schema: str, base_url: str = PG_ADMIN_URL) -> str:
    sep = "&" if "?" in base_url else "?"
    return f"{base_url}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def pg_server_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The session's PostgreSQL: the configured one if it answers, else a throwaway one (then stopped)."""
    try:
        with postgres_for_tests() as served:
            if served.started:
                request.config.stash[_STARTED] = served
            yield served.url
    except NoPostgres as exc:  # every test needing it errors, loudly
        pytest.fail(f"{exc}\n(CI={os.environ.get('CI')})", pytrace=False)


@pytest.fixture(scope="session")
def pg_admin(pg_server_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_server_url)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url(pg_admin: Engine, pg_server_url: str) -> Iterator[str]:
    schema = f"oafin_t_{uuid.uuid4().hex[:10]}"
    with pg_admin.begin() as conn:
        conn.execute(text(f'create schema "{schema}"'))
    yield pg_schema_url(schema, pg_server_url)
    with pg_admin.begin() as conn:
        conn.execute(text(f'drop schema "{schema}" cascade'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def warehouse_url(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'oafin.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def warehouse_engine(warehouse_url: str) -> Iterator[Engine]:
    engine = connect(warehouse_url)
    yield engine
    engine.dispose()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    served = config.stash.get(_STARTED, None)
    if served is not None:
        terminalreporter.write_line(
            f"oafin: no PostgreSQL answered; started a throwaway one at {served.url} in {served.start_s:.1f} s"
        )
