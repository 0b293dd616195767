"""Under pytest-xdist every worker is a session of its own: its own PREFECT_HOME, its own PostgreSQL
schemas. A real ``pytest -n 2`` run over two tiny test files with this suite's set-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.postgres
REPO = Path(__file__).resolve().parent.parent

PROBE = """
import os
from pathlib import Path

import pytest


def test_where_am_i_{n}(pg_url):
    worker = os.environ["PYTEST_XDIST_WORKER"]
    Path(r"{out}", worker).write_text(os.environ["PREFECT_HOME"] + "\\n" + pg_url, encoding="utf-8")
"""


def test_two_xdist_workers_get_their_own_prefect_home_and_schemas(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    suite = tmp_path / "suite"
    suite.mkdir()
    for n in range(2):
        (suite / f"test_probe_{n}.py").write_text(PROBE.format(n=n, out=out), encoding="utf-8")
    controller_home = tmp_path / "controller-home"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_HOME": str(controller_home)}
    env.pop("PYTEST_XDIST_WORKER", None)  # when this suite itself runs under xdist
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest"]
        + ["-n", "2", "--dist", "loadfile", str(suite)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    seen = {p.name: p.read_text(encoding="utf-8").splitlines() for p in out.iterdir()}
    assert set(seen) == {"gw0", "gw1"}, seen
    homes = {worker: home for worker, (home, _) in seen.items()}
    assert len(set(homes.values())) == 2 and str(controller_home) not in homes.values()
    assert all(f"oafin-prefect-{worker}-" in home for worker, home in homes.items())
    assert len({url for _, url in seen.values()}) == 2  # a schema each
