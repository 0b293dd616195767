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


@pytest.fixture(scope="session", autouse=True)
def sandbox_credentials_env():
    """The sandbox's public fake credentials under the demo config's variable names
    (OAFIN_SOURCE_OA_*, OAFIN_SOURCE_FINANCE_*), as `oafin demo` sets them: production code
    reads credentials only from the environment. In os.environ, so subprocesses see them too."""
    from oafin.demo import sandbox_environment

    env = sandbox_environment([("oa", "dingtalk"), ("finance", "kingdee")])
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


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


# The longest modules first (their tests took 20-160 s each in `pytest -n 2 --durations` of the whole
# suite, issue #16), longest first. xdist hands the queue out in this order, so each worker starts
# on long tests and ends on short ones: one started last would leave the other worker idle while it
# ran. Whole modules move, so module-scoped fixtures are still built once.
SLOW_FIRST = (
    "tests/test_flow_daily.py",
    "tests/test_bad_input.py",
    "tests/test_corrections_flow.py",
    "tests/test_corrections_oa_flow.py",
    "tests/test_accuracy.py",
    "tests/test_sigterm.py",
    "tests/test_crash.py",
    "tests/test_prefect_runtime.py",
    "tests/test_xdist_isolation.py",
    "tests/test_systems_end_to_end.py",
    "tests/test_orchestration.py",
    "tests/conformance/test_broken_twin.py",
    "tests/test_connectors_feishu.py",
    "tests/test_operators.py",
    "tests/test_pg_server.py",
    "tests/test_systems_chain.py",
    "tests/test_warehouse.py",
    "tests/test_kingdee_vouchers.py",
    "tests/test_report_e2e.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(SLOW_FIRST)}
    first = {i: rank.get(item.nodeid.split("::", 1)[0], len(SLOW_FIRST)) for i, item in enumerate(items)}
    items[:] = [items[i] for i in sorted(range(len(items)), key=lambda i: (first[i], i))]
