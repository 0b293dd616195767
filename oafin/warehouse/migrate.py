"""Warehouse schema versions: Alembic, configured in code (no alembic.ini at run time).

- ``ensure_current(engine)`` is the check every run makes when it opens the warehouse
  (``oafin.warehouse.store.connect``): a brand-new empty warehouse is created at the newest
  revision (``create_all`` and a stamp: as fast as before); one at the newest revision passes; one
  behind the code is refused with the exact command to run; one ahead of the code (upgraded by a
  newer oafin) is refused too.
- ``upgrade(engine)`` is ``oafin db upgrade``: it runs the missing revisions in one transaction.
- A warehouse made by a release before migrations (``create_all``, no ``alembic_version`` table)
  is recognised as revision 0001 when its tables and columns are those of that release
  (``migrations/baseline.py``), and stamped so.

On PostgreSQL, creating and upgrading hold an advisory lock on the schema, so the parallel
children of a group close cannot both create the tables; on SQLite, ``BEGIN IMMEDIATE`` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final, Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, create_engine, event, inspect, text

from oafin.warehouse.errors import WarehouseSchemaError
from oafin.warehouse.migrations.baseline import release_1
from oafin.warehouse.schema import metadata

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE: Final = "alembic_version"
BASELINE_REVISION: Final = "0001"
UPGRADE_COMMAND: Final = "oafin db upgrade --config {config}"

__all__ = [
    "SchemaState",
    "WarehouseSchemaError",
    "ensure_current",
    "head",
    "schema_state",
    "upgrade",
]

StateKind = Literal["empty", "current", "behind", "ahead", "unknown"]


@dataclass(frozen=True)
class SchemaState:
    """Where a warehouse stands. ``revision`` is what ``alembic_version`` holds, or the revision
    its tables were recognised as (``stamped`` False), or ``None`` (empty or unrecognised)."""

    kind: StateKind
    revision: str | None
    head: str
    stamped: bool
    detail: str = ""


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, in code: the packaged scripts, and the connection to use."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """The newest revision: the schema this code needs."""
    found = scripts().get_current_head()
    assert found is not None, "no revisions in oafin/warehouse/migrations/versions"
    return found


@lru_cache(maxsize=1)
def _baseline() -> MetaData:
    """The release-1 tables, built once (read only here; revision 0001 builds its own)."""
    return release_1()


def _known(revision: str) -> bool:
    try:
        return scripts().get_revision(revision) is not None
    except Exception:  # alembic raises its own errors for an unknown or malformed id
        return False


def _schema_diff(conn: Connection, md: MetaData, tables: set[str]) -> list[str]:
    """How the warehouse's tables differ from ``md`` (missing tables, other column names)."""
    problems = []
    inspector = inspect(conn)
    for name, table in md.tables.items():
        if name not in tables:
            problems.append(f"table {name} is missing")
            continue
        have = [c["name"] for c in inspector.get_columns(name)]
        want = [c.name for c in table.columns]
        if set(have) != set(want):
            extra, lacking = sorted(set(have) - set(want)), sorted(set(want) - set(have))
            problems.append(
                f"table {name}: "
                + "; ".join(
                    part
                    for part in (
                        f"unexpected column(s) {', '.join(extra)}" if extra else "",
                        f"missing column(s) {', '.join(lacking)}" if lacking else "",
                    )
                    if part
                )
            )
    return problems


def schema_state(conn: Connection) -> SchemaState:
    """Where the warehouse on ``conn`` stands against this code (see the module docstring)."""
    newest = head()
    tables = set(inspect(conn).get_table_names())  # one catalog query: a run opens the warehouse often
    if VERSION_TABLE in tables:
        revisions = [r for (r,) in conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))]
        if len(revisions) == 1:
            (revision,) = revisions
            if revision == newest:
                return SchemaState("current", revision, newest, True)
            if _known(revision):
                return SchemaState("behind", revision, newest, True)
            return SchemaState("ahead", revision, newest, True)
        if not revisions:
            return SchemaState("unknown", None, newest, True, f"{VERSION_TABLE} is empty")
        return SchemaState("unknown", None, newest, True, f"{VERSION_TABLE} holds {', '.join(revisions)}")
    ours = set(metadata.tables) | set(_baseline().tables)
    if not tables & ours:
        return SchemaState("empty", None, newest, False)
    baseline = _schema_diff(conn, _baseline(), tables)
    if not baseline:
        kind: StateKind = "current" if newest == BASELINE_REVISION else "behind"
        return SchemaState(kind, BASELINE_REVISION, newest, False)
    if not _schema_diff(conn, metadata, tables):
        return SchemaState("current", newest, newest, False)
    return SchemaState("unknown", None, newest, False, "; ".join(baseline))


def _where(engine: Engine | Connection) -> str:
    url = engine.engine.url if isinstance(engine, Connection) else engine.url
    return url.render_as_string(hide_password=True)


def describe_problem(state: SchemaState, where: str, config: str | None = None) -> str | None:
    """What is wrong and what to run, or ``None`` when a run may use the warehouse."""
    run = "`" + UPGRADE_COMMAND.format(config=config or "<your config file>") + "`"
    if state.kind in ("current", "empty"):
        return None
    if state.kind == "behind":
        how = "" if state.stamped else " (made by a release before migrations)"
        return (
            f"the warehouse {where} is at schema revision {state.revision}{how}; this oafin needs "
            f"revision {state.head}. Back it up, then run {run}"
        )
    if state.kind == "ahead":
        return (
            f"the warehouse {where} is at schema revision {state.revision}, which this oafin does "
            f"not know (it needs {state.head}): a newer oafin upgraded it. Run that version of oafin."
        )
    return (
        f"the warehouse {where} has oafin tables of no known schema revision ({state.detail}); "
        "it cannot be used or upgraded automatically"
    )


def _sqlite_in_memory(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")


@contextmanager
def _ddl_connection(engine: Engine) -> Iterator[Connection]:
    """One transaction for schema changes, held against concurrent creators of the same schema.

    pysqlite runs DDL outside transactions; a separate engine with ``BEGIN IMMEDIATE`` makes
    SQLite DDL transactional and takes the write lock first (busy_timeout waits for it).
    """
    if engine.dialect.name != "sqlite" or _sqlite_in_memory(engine):
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext('oafin.warehouse:' || current_schema()))")
                )
            yield conn
        return
    ddl = create_engine(engine.url)

    @event.listens_for(ddl, "connect")
    def _manual(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # the driver's own BEGIN handling off
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(ddl, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    try:
        with ddl.begin() as conn:
            yield conn
    finally:
        ddl.dispose()


def _create_at_head(conn: Connection) -> None:
    """Only for a warehouse found empty under the lock: no per-table existence checks needed."""
    metadata.create_all(conn, checkfirst=False)
    MigrationContext.configure(conn).stamp(scripts(), "head")


def ensure_current(engine: Engine, config: str | None = None) -> SchemaState:
    """The run-start check: create an empty warehouse at the newest revision, refuse one that is
    not at it (``WarehouseSchemaError`` with the command to run, naming ``config`` if given)."""
    with engine.connect() as conn:
        state = schema_state(conn)
    if state.kind == "empty" or (state.kind == "current" and not state.stamped):
        with _ddl_connection(engine) as conn:
            state = schema_state(conn)  # another process may have created it meanwhile
            if state.kind == "empty":
                _create_at_head(conn)
                return SchemaState("current", state.head, state.head, True)
            if state.kind == "current" and not state.stamped:  # the newest tables, made unversioned
                MigrationContext.configure(conn).stamp(scripts(), "head")
                return SchemaState("current", state.head, state.head, True)
    problem = describe_problem(state, _where(engine), config)
    if problem is not None:
        raise WarehouseSchemaError(problem)
    return state


def upgrade(engine: Engine) -> tuple[SchemaState, SchemaState]:
    """``oafin db upgrade``: bring the warehouse to the newest revision; (before, after).

    Empty: created at the newest revision. Made before migrations with the release-1 tables:
    stamped 0001, then upgraded. Ahead of the code or of no known revision: refused.
    """
    with _ddl_connection(engine) as conn:
        before = schema_state(conn)
        if before.kind == "empty":
            _create_at_head(conn)
        elif before.kind in ("ahead", "unknown"):
            raise WarehouseSchemaError(describe_problem(before, _where(engine)) or before.kind)
        elif before.kind in ("behind", "current"):
            if not before.stamped:
                assert before.revision is not None
                MigrationContext.configure(conn).stamp(scripts(), before.revision)
            if before.kind == "behind" or not before.stamped:
                command.upgrade(alembic_config(conn), "head")
        after = schema_state(conn)
    return before, after
