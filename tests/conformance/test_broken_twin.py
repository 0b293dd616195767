"""The conformance suite must be able to fail: against a broken twin, it does."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from oafin.sandbox.dataset import Dataset
from oafin.sandbox_server import running_sandbox
from tests.conformance import checks
from tests.conformance.broken_twin import BROKEN_DINGTALK, BROKEN_ENV
from tests.conformance.systems import DINGTALK, Running


@pytest.fixture(scope="module")
def broken(sandbox_dataset: Dataset) -> Iterator[Running]:
    sut = dataclasses.replace(DINGTALK, twin=BROKEN_DINGTALK)
    with running_sandbox(sandbox_dataset, twins=[BROKEN_DINGTALK]) as handle:
        yield Running(sut, handle, sandbox_dataset)


def test_the_suite_fails_against_a_twin_that_drops_the_exactly_full_last_page(broken: Running) -> None:
    kind = broken.sut.kinds[0]
    with pytest.raises(AssertionError, match="not read"):
        checks.check_paging_to_the_end(broken, kind, extra=0)


def test_the_same_check_passes_where_the_broken_twin_is_right(broken: Running) -> None:
    """A short last page is served correctly: the failure above is the bug, not the set-up."""
    checks.check_paging_to_the_end(broken, broken.sut.kinds[0], extra=1)
    checks.check_token_fetch(broken)


def test_the_parametrised_suite_itself_fails_against_the_broken_twin(tmp_path: Path) -> None:
    """The real test module, run by pytest with the broken twin as its only system under test."""
    root = Path(__file__).resolve().parents[2]
    report = tmp_path / "report.txt"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rf",
            "tests/conformance/test_conformance.py",
            "-k",
            "paging",
        ],
        cwd=root,
        env={**os.environ, BROKEN_ENV: "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    report.write_text(done.stdout + done.stderr, encoding="utf-8")
    assert done.returncode == 1, done.stdout[-2000:]
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
    assert failed and all("last-page-exactly-full" in line for line in failed), failed
    assert "passed" in done.stdout  # the short-last-page cases still pass
