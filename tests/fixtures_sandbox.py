"""Pytest fixtures: one generated month and one running sandbox per test session.

``sandbox_dataset`` is small (300 claims, seed 7) so the session starts fast;
``sandbox_dataset_full`` is the default size (3000 claims), for tests that need volume.
``sandbox`` serves it over real HTTP on free localhost ports. Tests that arm faults,
count calls or shorten token lifetimes take ``sandbox_fresh``, which resets the handle
before and after the test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from oafin.sandbox.dataset import Dataset
from oafin.sandbox.generator import generate
from oafin.sandbox_server import SandboxHandle, running_sandbox

SANDBOX_SEED = 7
SANDBOX_CLAIMS = 300
FULL_CLAIMS = 3000


@pytest.fixture(scope="session")
def sandbox_dataset() -> Dataset:
    return generate(seed=SANDBOX_SEED, n_claims=SANDBOX_CLAIMS)


@pytest.fixture(scope="session")
def sandbox_dataset_full() -> Dataset:
    return generate(seed=SANDBOX_SEED, n_claims=FULL_CLAIMS)


@pytest.fixture(scope="session")
def sandbox(sandbox_dataset: Dataset) -> Iterator[SandboxHandle]:
    with running_sandbox(sandbox_dataset) as handle:
        yield handle


@pytest.fixture
def sandbox_fresh(sandbox: SandboxHandle) -> Iterator[SandboxHandle]:
    """The session's sandbox with no armed faults, an empty call log and default lifetimes."""
    sandbox.reset()
    yield sandbox
    sandbox.reset()
