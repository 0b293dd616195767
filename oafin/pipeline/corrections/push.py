"""Push approved actions exactly once: the ledger protocol.

For each approved action:

1. ``done`` in the ledger → skipped, no call.
2. ``approved`` → the ledger row becomes ``pending`` and is committed *before* any call.
3. ``pending`` (an earlier attempt died or failed after step 2) → the target system is read
   first (the system's write action's ``landed``); if the change is there, the row becomes ``done`` with what was
   found and nothing is sent again.
4. The call; then, in one transaction, ``done`` with the system's response and its audit row.

A crash between 4's call and its ledger write leaves ``pending``, which step 3 settles on the
next run. ``OAFIN_TEST_CRASH_AFTER_PUSH`` exists only so a test can produce exactly that crash:
unset (always, outside tests) it does nothing.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from oafin.config import Settings
from oafin.connectors.errors import ConnectorError
from oafin.pipeline.corrections.model import marker_for
from oafin.systems.registry import get_system
from oafin.warehouse import ledger

logger = logging.getLogger(__name__)

CRASH_ENV = (
    "OAFIN_TEST_CRASH_AFTER_PUSH"  # test-only: SIGKILL this process after the call, before the ledger write
)
PUSHABLE = ("approved", "pending")


@dataclass
class PushResult:
    key: str
    action: str
    outcome: str  # pushed | recovered | skipped_done | not_approved | error
    detail: Any = None
    retryable: bool = False


@dataclass
class Clients:
    """One API client per system, opened on first use from the chain's first source of that system."""

    settings: Settings
    opened: dict[str, Any] = field(default_factory=dict)

    def get(self, system: str) -> Any:
        if system not in self.opened:
            from oafin.pipeline.sources import open_reader

            source = next((s for s in self.settings.chain_sources if s.system == system), None)
            if source is None:
                raise LookupError(f"no source in the config's chain is a {system} system")
            self.opened[system] = open_reader(source)
        return self.opened[system].client

    def close(self) -> None:
        for reader in self.opened.values():
            reader.close()
        self.opened.clear()


@contextmanager
def clients_for(settings: Settings) -> Iterator[Clients]:
    clients = Clients(settings)
    try:
        yield clients
    finally:
        clients.close()


def _crash_hook(key: str) -> None:
    target = os.environ.get(CRASH_ENV)
    if target and (target == "1" or key.startswith(target)):
        logger.error(
            "%s is set: killing this process between the push of %s and its ledger write", CRASH_ENV, key
        )
        os.kill(os.getpid(), signal.SIGKILL)


def push_one(
    engine: Engine,
    key: str,
    get_client: Callable[[str], Any],
    *,
    allow_audit: bool = False,
    options: dict[str, Any] | None = None,
) -> PushResult:
    """Push one ledger entry by its system's write action (``options``: the corrections settings)."""
    options = {**(options or {}), "allow_audit": allow_audit}
    with engine.connect() as conn:
        row = ledger.get(conn, key)
    if row is None:
        raise KeyError(f"no correction {key} in the ledger")
    action = row["action"]
    if row["status"] == "done":
        return PushResult(key, action, "skipped_done", json.loads(row["response"] or "null"))
    if row["status"] not in PUSHABLE:
        return PushResult(key, action, "not_approved")
    actor = row["approved_by"] or "oafin"
    content = json.loads(row["content"])
    marker = marker_for(key)
    try:
        writer = get_system(row["system"]).write_actions.get(action)
        if writer is None:
            raise LookupError(f"system {row['system']} has no write action {action}")
        client = get_client(row["system"])
        if row["status"] == "pending":
            found = writer.landed(client, content, marker, options)
            if found is not None:
                with engine.begin() as conn:
                    ledger.transition(
                        conn,
                        key,
                        "done",
                        event="response",
                        actor=actor,
                        detail={"recovered": found},
                        response=found,
                    )
                return PushResult(key, action, "recovered", found)
        with engine.begin() as conn:
            ledger.transition(
                conn,
                key,
                "pending",
                event="push",
                actor=actor,
                detail={"system": row["system"], "target": row["target"], "attempt": row["attempts"] + 1},
                attempts=row["attempts"] + 1,
            )
        response = writer.send(client, content, marker, options)
    except (ConnectorError, LookupError) as exc:
        retryable = bool(getattr(exc, "retryable", False))
        with engine.begin() as conn:
            ledger.note(conn, key, "error", actor, {"error": str(exc), "retryable": retryable})
        logger.warning("correction %s (%s) failed: %s", key[:16], action, exc)
        return PushResult(key, action, "error", str(exc), retryable)
    _crash_hook(key)
    with engine.begin() as conn:
        ledger.transition(
            conn, key, "done", event="response", actor=actor, detail={"response": response}, response=response
        )
    return PushResult(key, action, "pushed", response)


def push_approved(
    engine: Engine, settings: Settings, keys: Sequence[str] | None = None, clients: Clients | None = None
) -> list[PushResult]:
    """Push the actions of ``keys`` (default: every ``approved`` or ``pending`` one) in ledger order;
    done ones are skipped and unapproved ones reported, without a call."""
    with engine.connect() as conn:
        rows = ledger.rows(conn, list(keys) if keys is not None else None)
    if keys is None:
        rows = [r for r in rows if r["status"] in PUSHABLE]
    allow_audit = settings.corrections.allow_audit
    options = settings.corrections.model_dump()
    with clients_for(settings) if clients is None else _borrowed(clients) as opened:
        return [
            push_one(engine, r["idempotency_key"], opened.get, allow_audit=allow_audit, options=options)
            for r in rows
        ]


@contextmanager
def _borrowed(clients: Clients) -> Iterator[Clients]:
    yield clients
