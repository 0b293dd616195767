"""The session's PostgreSQL: a server that answers is used; else a throwaway one is started and stopped;
when neither works the run fails (CI=true included) with a message that says why. Real processes only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import port_for
import pytest
from sqlalchemy import create_engine, text

from tests.pg_server import NoPostgres, postgres_for_tests, probe

pytestmark = pytest.mark.postgres
REPO = Path(__file__).resolve().parent.parent


def _dead_url() -> str:
    """A URL where nothing listens (a free port picked just now)."""
    return f"postgresql+psycopg://postgres@127.0.0.1:{port_for.select_random()}/test"


def test_a_server_that_answers_is_used_and_none_is_started(pg_server_url: str) -> None:
    with postgres_for_tests(pg_server_url) as served:
        assert served.url == pg_server_url
        assert not served.started and served.folder is None


def test_when_nothing_answers_a_throwaway_server_is_started_and_then_stopped() -> None:
    dead = _dead_url()
    assert probe(dead) is not None
    with postgres_for_tests(dead) as served:
        assert served.started and served.url != dead and served.start_s > 0
        assert served.folder is not None and (served.folder / "data" / "PG_VERSION").exists()
        engine = create_engine(served.url)
        with engine.begin() as conn:
            conn.execute(text("create table t (fen bigint)"))
            conn.execute(text("insert into t values (12345)"))
            assert conn.execute(text("select current_database(), sum(fen) from t")).one() == ("test", 12345)
        engine.dispose()
    assert probe(served.url) is not None, "the throwaway server is still answering after the session"
    assert not served.folder.exists(), "the throwaway server's directory was left behind"


def test_no_server_and_no_binaries_raise_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OAFIN_TEST_PG_CTL", str(tmp_path / "no-such" / "pg_ctl"))
    dead = _dead_url()
    with pytest.raises(NoPostgres) as caught, postgres_for_tests(dead):
        pass
    message = str(caught.value)
    assert f"nothing answers at {dead}" in message
    assert "no PostgreSQL server binaries" in message and "apt-get install postgresql" in message


def test_with_ci_true_a_start_that_fails_fails_the_run_rather_than_skipping(tmp_path: Path) -> None:
    """A pytest run of its own: nothing at the URL, and a pg_ctl that cannot start anything."""
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.fixtures_db"]\n', encoding="utf-8")
    (tmp_path / "test_needs_pg.py").write_text(
        "def test_it(pg_url):\n    assert pg_url\n\ndef test_sqlite_half_still_runs():\n    assert True\n",
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "CI": "true",
        "OAFIN_TEST_PG_URL": _dead_url(),
        "OAFIN_TEST_PG_CTL": "/bin/false",  # exists, starts nothing
        "PYTHONPATH": str(REPO),
    }
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "1 passed, 1 error" in out and "skipped" not in out, out
    assert "PostgreSQL is required: nothing answers at" in out, out
    assert "the throwaway PostgreSQL (/bin/false" in out and "did not start" in out, out
    assert "(CI=true)" in out, out
