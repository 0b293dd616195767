"""Alembic migrations of the warehouse (``oafin db upgrade``); run through ``oafin.warehouse.migrate``.

``baseline.py`` is the frozen schema of the last release before migrations; ``versions/`` holds
one file per revision. Alembic is configured in code (no alembic.ini): see ``migrate.alembic_config``.
A schema change is a new revision: ``versions/NNNN_what.py`` (``script.py.mako`` is the template)
with ``down_revision`` the previous one and hand-written ``upgrade()``/``downgrade()``;
tests/test_migrations.py fails until the revisions make exactly what the code's tables are.
"""
