"""Alembic's environment: the connection comes from ``oafin.warehouse.migrate`` (config attributes)."""

from __future__ import annotations

from alembic import context

from oafin.warehouse.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "oafin's migrations run on a connection given by oafin.warehouse.migrate: use `oafin db upgrade`"
    )
# render_as_batch: SQLite alters a table by copying it (autogenerate writes batch operations)
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
