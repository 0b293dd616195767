"""Shared test set-up: an isolated Prefect home, one Prefect harness per session, databases.

Prefect settings must be in the environment before prefect is imported anywhere.
"""

from __future__ import annotations

import os
import tempfile

_PREFECT_HOME = tempfile.mkdtemp(prefix="oafin-prefect-")
os.environ.setdefault("PREFECT_HOME", _PREFECT_HOME)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

pytest_plugins = ["tests.fixtures_sandbox", "tests.fixtures_db"]
