"""The systems the conformance suite runs against: ONE list, ``SYSTEMS_UNDER_TEST``.

Every test in ``tests/conformance/test_conformance.py`` takes ``sut`` and so runs once per entry,
against that system's twin served over real HTTP. A new system gets the whole suite by adding its
``SystemUnderTest`` (``tests/conformance/systems.py``) here. (At merge this list can come from the
``oafin.systems`` entry-point registry: one adapter per registered system.)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator

import pytest

from oafin.sandbox.dataset import Dataset
from oafin.sandbox_server import running_sandbox
from tests.conformance.broken_twin import BROKEN_DINGTALK, BROKEN_ENV
from tests.conformance.systems import DINGTALK, KINGDEE, KINGDEE_SIGNATURE, Running, SystemUnderTest
from tests.conformance.systems_dingtalk_v1 import DINGTALK_V1
from tests.conformance.systems_feishu import FEISHU
from tests.conformance.systems_hesine import HESINE
from tests.conformance.systems_seeyon import SEEYON
from tests.conformance.systems_weaver import WEAVER
from tests.conformance.systems_wecom import WECOM, WECOM_LEGACY_CURSOR
from tests.conformance.systems_yonyou import YONYOU

SYSTEMS_UNDER_TEST: list[SystemUnderTest] = [
    DINGTALK,
    KINGDEE,
    KINGDEE_SIGNATURE,
    DINGTALK_V1,
    FEISHU,
    SEEYON,
    WEAVER,
    WECOM,
    WECOM_LEGACY_CURSOR,
    YONYOU,
    HESINE,
]

# Test seam, for tests/conformance/test_broken_twin.py only: run the whole suite against the
# deliberately broken DingTalk twin instead, to prove the suite fails against it.
if os.environ.get(BROKEN_ENV) == "1":
    SYSTEMS_UNDER_TEST = [dataclasses.replace(DINGTALK, twin=BROKEN_DINGTALK)]


# Per-system case lists a test may take besides ``sut``: each test runs once per (system, case).
CASES = {
    "kind": lambda s: s.kinds,
    "envelope": lambda s: s.expiry_envelopes,
    "rate_limit": lambda s: s.rate_limits,
    "error_shape": lambda s: s.error_shapes,
    "hostile": lambda s: s.hostile,
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "sut" not in metafunc.fixturenames:
        return
    extra = [name for name in CASES if name in metafunc.fixturenames]
    values, ids = [], []
    for system in SYSTEMS_UNDER_TEST:
        combos: list[tuple] = [()]
        for name in extra:
            combos = [(*c, option) for c in combos for option in CASES[name](system)]
        for combo in combos:
            values.append((system, *combo))
            ids.append("-".join([str(system), *(getattr(o, "name", str(o)) for o in combo)]))
    metafunc.parametrize(["running_sut", *extra], values, ids=ids, indirect=["running_sut"], scope="session")


@pytest.fixture(scope="session")
def running_sut(request: pytest.FixtureRequest, sandbox_dataset: Dataset) -> Iterator[Running]:
    sut: SystemUnderTest = request.param
    with running_sandbox(sandbox_dataset, twins=[sut.twin]) as handle:
        yield Running(sut, handle, sandbox_dataset)


@pytest.fixture
def sut(running_sut: Running) -> Iterator[Running]:
    """The system under test with no faults armed, no calls logged and default token lifetimes."""
    running_sut.handle.reset()
    yield running_sut
    running_sut.handle.reset()
