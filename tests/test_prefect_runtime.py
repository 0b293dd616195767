"""Prefect's temporary server on a busy machine (issue #10 item 4): a generous wait, a word while it
starts, and advice when it still does not come up."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oafin.config import OaFinDefaults
from oafin.prefect_runtime import (
    DEFAULT_STARTUP_TIMEOUT_SECONDS,
    TIMEOUT_ENV,
    EarlyServer,
    PrefectServerStartError,
    early_server,
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


# --- the demo's early start (EarlyServer): no server is ever left behind ---------------------------


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie has ended


def _spawned(server) -> int:
    deadline = time.monotonic() + 120
    while server.process is None:
        assert time.monotonic() < deadline, "the server process was never spawned"
        time.sleep(0.01)
    return int(server.process.pid)


@pytest.fixture
def no_temporary_server(monkeypatch):
    """This process's temporary-server slot empty (a session's harness may hold it), as in a command."""
    from prefect.server.api.server import SubprocessASGIServer

    monkeypatch.delitem(SubprocessASGIServer._instances, None, raising=False)


@pytest.mark.parametrize("error", [RuntimeError("the sandbox failed"), KeyboardInterrupt()])
def test_an_early_server_is_stopped_when_the_command_ends_before_the_flow(error, no_temporary_server) -> None:
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        temporary_settings(restore_defaults={PREFECT_API_URL}),
        pytest.raises(type(error)),
        early_server(out=sys.stdout) as server,
    ):
        assert server is not None
        pid = _spawned(server)  # still starting (migrating its database) when the command fails
        assert _alive(pid)
        raise error
    assert not _alive(pid)
    assert server.process is None and not server.handed_over
    assert None not in SubprocessASGIServer._instances  # a later flow call would start a new one


def test_an_early_server_that_does_not_answer_in_time_says_what_to_do_and_is_stopped(
    no_temporary_server,
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        # Prefect gives up after 1 s, as after its 20 s on a loaded machine (the server's own
        # imports take longer than that; 0 would not do: Prefect reads 0 as "its default")
        server = EarlyServer(timeout=1)
        pid = _spawned(server)
        with pytest.raises(PrefectServerStartError, match="PREFECT_API_URL"):
            server.wait()
        server.close()  # not handed over: stopped
    assert not _alive(pid)


def test_a_temporary_server_already_running_in_the_process_is_used_and_left_running(monkeypatch) -> None:
    from prefect.server.api.server import SubprocessASGIServer

    class Running:  # stands in for one another caller started (a test harness)
        running = True
        server_process = object()
        stopped = False

        def start(self, timeout: int | None = None) -> None:
            pass

        def stop(self) -> None:
            self.stopped = True

    running = Running()
    monkeypatch.setitem(SubprocessASGIServer._instances, None, running)
    server = EarlyServer()
    assert server.server is running and server.handed_over
    server.wait()
    server.close()
    server.stop()
    assert not running.stopped


def test_against_a_running_server_nothing_is_started_early() -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        temporary_settings({PREFECT_API_URL: "http://127.0.0.1:4200/api"}),
        early_server(out=sys.stdout) as server,
    ):
        assert server is None


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(FileNotFoundError):
            out.update(int(c) for c in (task / "children").read_text().split())
    return out


def test_sigterm_while_the_demo_prepares_stops_the_early_server(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")  # a new one: its start migrates for a while
    demo = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from oafin.cli import main; sys.exit(main())",
            "demo",
            "--workdir",
            str(tmp_path / "demo"),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        servers: set[int] = set()
        while not servers:
            assert demo.poll() is None and time.monotonic() < deadline, "no server was started"
            servers = {
                c for c in _children(demo.pid) if b"prefect.server" in Path(f"/proc/{c}/cmdline").read_bytes()
            }
            time.sleep(0.05)
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=120) == 128 + signal.SIGTERM
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert not any(_alive(pid) for pid in servers)
