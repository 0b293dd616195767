"""Shared test set-up: an isolated Prefect home, one Prefect harness per session, databases.

Prefect settings must be in the environment before prefect is imported anywhere.

Under pytest-xdist (``-n 2``) every worker is a session of its own: its own PREFECT_HOME (a worker
inherits the controller's environment, so the controller's must not be taken over), its own Prefect
harness on a free port, its own sandbox ports, its own PostgreSQL schemas (and its own throwaway
server when one is needed).
"""

from __future__ import annotations

import os
import tempfile

_WORKER = os.environ.get("PYTEST_XDIST_WORKER")  # "gw0", "gw1", ... in an xdist worker; set before this runs
if _WORKER or "PREFECT_HOME" not in os.environ:
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix=f"oafin-prefect-{_WORKER or 'main'}-")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

pytest_plugins = ["tests.fixtures_sandbox", "tests.fixtures_db"]


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test server per session (about 10 s to start when idle; minutes under load), heartbeats off."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=240),
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield
