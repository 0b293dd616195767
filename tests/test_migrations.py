"""Warehouse migrations: a warehouse of the last release upgrades without losing a row; the run-start
check creates new warehouses at the newest revision and refuses old or unknown ones; on SQLite and
PostgreSQL (tests/fixtures_db.py)."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData, Table, select, text

from oafin.cli import main
from oafin.warehouse.migrate import (
    WarehouseSchemaError,
    alembic_config,
    ensure_current,
    head,
    schema_state,
    scripts,
    upgrade,
)
from oafin.warehouse.migrations.baseline import release_1
from oafin.warehouse.schema import metadata
from oafin.warehouse.store import connect, open_engine
from tests.test_corrections_helpers import write_config

AT = datetime(2026, 10, 31, 15, 30, tzinfo=UTC)

# Values for a column by its name; every other column gets text or a number by its type.
SPECIAL: dict[str, Any] = {"issue_date": date(2026, 10, 5)}


def _value(table: Table, column: Any, i: int) -> Any:
    if column.name in SPECIAL:
        return SPECIAL[column.name]
    kind = type(column.type).__name__
    if kind == "UTCDateTime":
        return AT.replace(minute=i)
    if kind in ("BigInteger", "Integer"):
        return 123_456_789_012 + i if kind == "BigInteger" else 600 + i
    length = getattr(column.type, "length", None) or 200
    return f"{table.name[:4]}-{column.name[:6]}-{i}-全角１"[:length]


def _fill(engine: Engine, md: MetaData, n: int = 3) -> dict[str, list[dict[str, Any]]]:
    """``n`` rows in every table, every column set (person: some without one of the old ids)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    with engine.begin() as conn:
        for name, table in md.tables.items():
            rows[name] = [{c.name: _value(table, c, i) for c in table.columns} for i in range(n)]
            if name == "person":
                rows[name][1]["kingdee_staff_number"] = None  # no Kingdee account
                rows[name][2]["dingtalk_userid"] = ""  # a blank cell of an old people.csv
            conn.execute(table.insert(), rows[name])
    return rows


def _read(engine: Engine, md: MetaData, name: str) -> list[dict[str, Any]]:
    table = md.tables[name]
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns)).mappings()]


def _version(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [r for (r,) in conn.execute(text("SELECT version_num FROM alembic_version"))]


def _schema_matches_the_code(engine: Engine) -> None:
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_a_release_1_warehouse_upgrades_without_losing_a_row(warehouse_url: str) -> None:
    engine = open_engine(warehouse_url)
    old = release_1()
    old.create_all(engine)  # what the last release's create_all made: no alembic_version table
    before = _fill(engine, old)

    with pytest.raises(
        WarehouseSchemaError, match=r"revision 0001 .*release before migrations.*oafin db upgrade"
    ):
        connect(warehouse_url)
    first, after = upgrade(engine)
    assert (first.kind, first.revision, first.stamped) == ("behind", "0001", False)
    assert (after.kind, after.revision, after.stamped) == ("current", head(), True)
    assert _version(engine) == [head()]
    _schema_matches_the_code(engine)

    for name in old.tables:
        if name == "person":
            continue
        rows = _read(engine, metadata, name)
        # columns a later revision added (0005: exception.left_system, finance_doc.voucher_no, ...)
        # are empty on the old rows; every old column keeps its value
        added = set(metadata.tables[name].columns.keys()) - set(old.tables[name].columns.keys())
        assert all(r[c] is None for r in rows for c in added), name
        assert [{k: r[k] for k in r if k not in added} for r in rows] == before[name], name
    people = before["person"]
    assert _read(engine, metadata, "person") == [
        {k: p[k] for k in ("person_id", "name", "department", "role")} for p in people
    ]
    identities = {
        (r["system"], r["external_id"]): r["person_id"] for r in _read(engine, metadata, "person_identity")
    }
    expected = {
        (system, p[column]): p["person_id"]
        for p in people
        for column, system in (("dingtalk_userid", "dingtalk"), ("kingdee_staff_number", "kingdee"))
        if p[column]
    }
    assert identities == expected and len(expected) == 4

    connect(warehouse_url).dispose()  # the run-start check passes now
    again, _ = upgrade(engine)  # and a second upgrade does nothing
    assert (again.kind, again.stamped) == ("current", True)
    assert {(r["system"], r["external_id"]) for r in _read(engine, metadata, "person_identity")} == set(
        expected
    )
    engine.dispose()


def test_the_revisions_from_nothing_make_what_the_code_makes(warehouse_url: str) -> None:
    """Revision 0001 is the release's schema; 0001 → head gives exactly the code's tables."""
    engine = open_engine(warehouse_url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), release_1()) == []
        state = schema_state(conn)
    assert (state.kind, state.revision, state.stamped) == ("behind", "0001", True)
    with pytest.raises(WarehouseSchemaError, match=r"revision 0001; this oafin needs"):
        ensure_current(engine)
    upgrade(engine)
    _schema_matches_the_code(engine)
    with engine.begin() as conn:  # and back down
        command.downgrade(alembic_config(conn), "0001")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), release_1()) == []
    engine.dispose()


def test_a_new_warehouse_is_created_at_the_newest_revision(warehouse_url: str) -> None:
    engine = connect(warehouse_url)
    assert _version(engine) == [head()] == [scripts().get_current_head()]
    _schema_matches_the_code(engine)
    connect(warehouse_url).dispose()  # opening it again passes the check
    engine.dispose()


def test_the_refusal_names_the_config_file_and_the_command(warehouse_url: str) -> None:
    engine = open_engine(warehouse_url)
    release_1().create_all(engine)
    with pytest.raises(WarehouseSchemaError) as refused:
        connect(warehouse_url, config="/etc/oafin/acme.toml")
    assert "run `oafin db upgrade --config /etc/oafin/acme.toml`" in str(refused.value)
    engine.dispose()


def test_a_warehouse_of_a_newer_oafin_is_refused(warehouse_url: str) -> None:
    engine = connect(warehouse_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(WarehouseSchemaError, match="revision 9999, which this oafin does not know"):
        connect(warehouse_url)
    with pytest.raises(WarehouseSchemaError, match="newer oafin"):
        upgrade(engine)
    engine.dispose()


def test_tables_of_no_known_schema_are_refused_not_guessed(warehouse_url: str) -> None:
    engine = open_engine(warehouse_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE person (person_id VARCHAR(20) PRIMARY KEY, nickname TEXT)"))
    for attempt in (lambda: connect(warehouse_url), lambda: upgrade(engine)):
        with pytest.raises(
            WarehouseSchemaError,
            match=r"no known schema revision.*table person: unexpected column\(s\) nickname",
        ):
            attempt()
    with engine.connect() as conn:
        assert schema_state(conn).kind == "unknown"  # nothing was created or stamped
        assert not conn.dialect.has_table(conn, "alembic_version")
    engine.dispose()


def test_oafin_db_upgrade_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = open_engine(url)
    old = release_1()
    old.create_all(engine)
    before = _fill(engine, old)
    config = write_config(tmp_path / "oafin.toml", ("http://127.0.0.1:9", "http://127.0.0.1:9"), url)

    assert main(["db", "upgrade", "--config", str(config)]) == 0
    assert f"from schema revision 0001 (recognised: made by a release before migrations) to {head()}" in (
        capsys.readouterr().out
    )
    kept = set(old.tables["exception"].columns.keys())
    assert [
        {k: v for k, v in r.items() if k in kept} for r in _read(engine, metadata, "exception")
    ] == before["exception"]
    assert main(["db", "upgrade", "--config", str(config)]) == 0
    assert f"already at schema revision {head()}: nothing to do" in capsys.readouterr().out
    engine.dispose()


def test_runs_opening_a_new_warehouse_at_once_create_it_once(warehouse_url: str) -> None:
    """The children of a group close start together on one new warehouse: one creates it, the
    others wait for the lock and find it made."""
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            barrier.wait()
            connect(warehouse_url).dispose()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    engine = open_engine(warehouse_url)
    assert _version(engine) == [head()]
    _schema_matches_the_code(engine)
    engine.dispose()


def test_the_newest_tables_made_without_a_version_are_stamped(warehouse_url: str) -> None:
    engine = open_engine(warehouse_url)
    metadata.create_all(engine)  # e.g. by a build of this code before it had migrations
    ensure_current(engine)
    assert _version(engine) == [head()]
    engine.dispose()
