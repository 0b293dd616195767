"""A registered system with a sandbox twin is held to the conformance suite: registering one
without adding its adapter to ``SYSTEMS_UNDER_TEST`` fails here, naming it."""

from __future__ import annotations

from oafin.sandbox_server import sandbox_twins
from oafin.systems.base import twin_of
from oafin.systems.registry import systems
from tests.conformance.conftest import SYSTEMS_UNDER_TEST


def test_every_registered_system_with_a_twin_runs_the_conformance_suite() -> None:
    registered = {name for name, system in systems().items() if twin_of(system) is not None}
    covered = {sut.twin.name for sut in SYSTEMS_UNDER_TEST}
    assert registered, "no registered system has a twin"
    assert registered - covered == set(), "registered systems with a twin but no conformance adapter"


def test_the_sandbox_serves_every_registered_twin() -> None:
    assert [t.name for t in sandbox_twins()] == sorted(
        name for name, system in systems().items() if twin_of(system) is not None
    )
