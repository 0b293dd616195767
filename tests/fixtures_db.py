"""Warehouse fixtures: every warehouse test runs on SQLite and on the real PostgreSQL.

PostgreSQL is at 127.0.0.1:5432 (user postgres, trust auth, database test). Each test gets its
own schema, dropped afterwards. With CI=true a missing server fails the run; elsewhere the
PostgreSQL half is reported as an error with the reason, never silently skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

from oafin.warehouse.store import connect

PG_ADMIN_URL = os.environ.get("OAFIN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pg_schema_url(schema: str) -> str:
    sep = "&" if "?" in PG_ADMIN_URL else "?"
    return f"{PG_ADMIN_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine]:
    engine = create_engine(PG_ADMIN_URL)
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:  # the test needing it errors, loudly
        pytest.fail(f"PostgreSQL is required at {PG_ADMIN_URL} (CI={os.environ.get('CI')}): {exc}")
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url(pg_admin: Engine) -> Iterator[str]:
    schema = f"oafin_t_{uuid.uuid4().hex[:10]}"
    with pg_admin.begin() as conn:
        conn.execute(text(f'create schema "{schema}"'))
    yield pg_schema_url(schema)
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
