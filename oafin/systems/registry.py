"""The registered source systems: the ``oafin.systems`` entry-point group.

Each entry point names an object implementing ``oafin.systems.base.SourceSystem``:

    [project.entry-points."oafin.systems"]
    dingtalk = "oafin.systems.dingtalk:SYSTEM"

A company adds its in-house OA as its own pip-installable package declaring one such entry point;
oafin needs no change. ``systems()`` reads the group once per process (``refresh()`` re-reads it).
"""

from __future__ import annotations

import threading
from importlib.metadata import entry_points

from oafin.systems.base import SourceSystem

GROUP = "oafin.systems"
_lock = threading.Lock()
_loaded: dict[str, SourceSystem] | None = None


class UnknownSystemError(LookupError):
    """A system name no installed package registers; the message lists the registered ones."""


def _load() -> dict[str, SourceSystem]:
    found: dict[str, SourceSystem] = {}
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        if ep.name in found:  # the same distribution seen twice on sys.path (editable + wheel)
            continue
        system = ep.load()
        if not isinstance(system, SourceSystem):
            raise TypeError(f"entry point {GROUP}:{ep.name} ({ep.value}) is not a SourceSystem")
        if system.name != ep.name:
            raise TypeError(f"entry point {GROUP}:{ep.name} loads a system named {system.name!r}")
        found[ep.name] = system
    return found


def systems() -> dict[str, SourceSystem]:
    """Name → system, for every registered system."""
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = _load()
        return dict(_loaded)


def refresh() -> dict[str, SourceSystem]:
    """Read the entry points again (after installing a package into the running process)."""
    global _loaded
    with _lock:
        _loaded = None
    return systems()


def get_system(name: str) -> SourceSystem:
    registered = systems()
    if name not in registered:
        raise UnknownSystemError(
            f"unknown system {name!r}; registered systems: {', '.join(sorted(registered)) or 'none'}"
            f" (entry-point group {GROUP})"
        )
    return registered[name]
