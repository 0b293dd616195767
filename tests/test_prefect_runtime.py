"""Prefect's temporary server on a busy machine (issue #10 item 4): a generous wait, a word while it
starts, and advice when it still does not come up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from oafin.config import OaFinDefaults
from oafin.prefect_runtime import (
    DEFAULT_STARTUP_TIMEOUT_SECONDS,
    TIMEOUT_ENV,
    ephemeral_server,
    startup_timeout,
)
from oafin.sandbox_server import SandboxHandle


def _run_cli(
    tmp_path: Path, extra_env: dict[str, str], sandbox: SandboxHandle
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "oafin.toml"
    # the sources answer (the run checks that before Prefect starts); the run must then fail at
    # Prefect's start, before any extraction
    config.write_text(OaFinDefaults.demo_toml(sandbox.dingtalk_url, sandbox.kingdee_url), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), **extra_env)
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from oafin.cli import main; sys.exit(main())",
            "run",
            "--config",
            str(config),
            "--period",
            "2026-10",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_a_temporary_server_that_does_not_start_says_what_to_do(
    tmp_path: Path, sandbox: SandboxHandle
) -> None:
    # 0 s: Prefect gives up at once, exactly as it does after 20 s on a loaded machine
    before = len(sandbox.calls.snapshot())
    done = _run_cli(tmp_path, {TIMEOUT_ENV: "0"}, sandbox)
    reads = [
        c for c in sandbox.calls.snapshot()[before:] if "listids" in c.path or "ExecuteBillQuery" in c.path
    ]
    assert reads == []  # nothing was extracted
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "starting a temporary local Prefect server" in output
    assert "prefect server start" in output and "PREFECT_API_URL" in output
    assert f"export {TIMEOUT_ENV}=" in output
    assert "Traceback" not in output


def test_the_wait_is_generous_unless_the_operator_set_one(monkeypatch) -> None:
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )

    assert DEFAULT_STARTUP_TIMEOUT_SECONDS >= 120  # Prefect's 20 s is what timed out
    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    assert startup_timeout() == DEFAULT_STARTUP_TIMEOUT_SECONDS
    assert startup_timeout({TIMEOUT_ENV: "900"}) == 900
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        with ephemeral_server(out=sys.stdout):
            assert PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value() == DEFAULT_STARTUP_TIMEOUT_SECONDS
        monkeypatch.setenv(TIMEOUT_ENV, "45")
        with ephemeral_server(out=sys.stdout):
            assert PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value() == 45
    # against a running server (PREFECT_API_URL set) nothing changes
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:4200/api"}), ephemeral_server(out=sys.stdout):
        assert PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value() != DEFAULT_STARTUP_TIMEOUT_SECONDS
