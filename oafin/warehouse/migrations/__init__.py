"""Alembic migrations of the warehouse (``oafin db upgrade``); run through ``oafin.warehouse.migrate``.

``baseline.py`` is the frozen schema of the last release before migrations; ``versions/`` holds
one file per revision. Alembic is configured in code (no alembic.ini): see ``migrate.alembic_config``.
A new revision: ``python -m oafin.warehouse.migrate revision -m "what changes"``, then write its
``upgrade()``/``downgrade()`` by hand and check it with tests/test_migrations.py.
"""
