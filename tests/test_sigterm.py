"""Issue #10 item 14: the first SIGTERM stops a hung run, cleanly.

A real ``oafin run`` subprocess against a sandbox whose every answer hangs (a ``slow`` fault far
beyond the client's timeout): once the run is waiting inside a call, one SIGTERM must end it
with a clear message and a non-zero exit, as an operator's ``kill`` or a container stop would.
(The bound below is how long the test waits for the process to be gone, not a speed check.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oafin.sandbox_server import running_sandbox
from tests.test_orchestration_support import write_config

REPO = Path(__file__).resolve().parents[1]
GONE_WITHIN = 90.0
HANGS = 10_000


def _hung(sandbox) -> bool:  # noqa: ANN001 - a SandboxHandle
    """Whether a call is waiting on a slow answer (a slow fault was taken; answered calls are logged
    only once answered)."""
    return sum(f.times for f in sandbox.faults.pending()) < 2 * HANGS


@pytest.mark.e2e
def test_the_first_sigterm_stops_a_hung_run(prefect_harness, sandbox_dataset, tmp_path) -> None:
    from prefect.settings import PREFECT_API_URL

    with running_sandbox(sandbox_dataset) as sandbox:
        sandbox.faults.slow_seconds = 3600
        sandbox.faults.inject("dingtalk", "slow", times=HANGS)
        sandbox.faults.inject("kingdee", "slow", times=HANGS)
        config = write_config(tmp_path, sandbox, f"sqlite:///{tmp_path / 'w.db'}", timeout_seconds=3000)
        env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "oafin.cli",
                "run",
                "--config",
                str(config),
                "--period",
                sandbox_dataset.period,
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 240
            while not _hung(sandbox) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            assert proc.poll() is None and _hung(sandbox), "the run never reached the sandbox"
            time.sleep(1.0)  # well inside the hung call
            proc.send_signal(signal.SIGTERM)
            try:
                out, err = proc.communicate(timeout=GONE_WITHIN)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                pytest.fail(f"one SIGTERM did not stop the hung run; stderr:\n{err[-3000:]}")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode != 0
    assert "stopped by SIGTERM" in err, err[-3000:]
