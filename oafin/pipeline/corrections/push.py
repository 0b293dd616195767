"""Push approved actions exactly once: the ledger protocol.

For each approved action, holding its in-flight lock (``oafin.warehouse.inflight``; another
process holding it means that one is pushing it right now: ``busy``, no call):

0. the row must replay from the audit chain (``ledger.trail_problems``; the whole chain is
   verified once per run first): a row edited behind oafin's back is ``unverified``, no call.
1. ``done`` in the ledger → skipped, no call.
2. ``approved`` → the ledger row becomes ``pending`` by compare-and-set (only if it is still the
   ``approved`` row read) and is committed *before* any call; a lost race is ``busy``.
3. ``pending`` (an earlier attempt died or failed after step 2) → the target system is read
   first (the system's write action's ``landed``); if the change is there, the row becomes ``done`` with what was
   found and nothing is sent again.
4. The call; then, in one transaction, ``done`` with the system's response and its audit row.

A crash between 4's call and its ledger write leaves ``pending``, which step 3 settles on the
next run. ``after_send`` is a test seam (tests install it to crash there); production never sets it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from oafin.config import Settings
from oafin.connectors.errors import ConnectorError
from oafin.pipeline.corrections.model import marker_for
from oafin.systems.registry import get_system
from oafin.warehouse import audit, inflight, ledger

logger = logging.getLogger(__name__)

PUSHABLE = ("approved", "pending")
# Test seam: called with the key after the call and before its ledger write. Tests set it (in
# their own process, or a child they start through tests/run_with_crash.py) to crash right there.
after_send: Callable[[str], None] | None = None


@dataclass
class PushResult:
    key: str
    action: str
    outcome: str  # pushed | recovered | skipped_done | not_approved | busy | unverified | error
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


def push_one(
    engine: Engine,
    key: str,
    get_client: Callable[[str], Any],
    *,
    allow_audit: bool = False,
    options: dict[str, Any] | None = None,
) -> PushResult:
    """Push ``key`` by its system's write action if this process can claim it (see the module
    docstring); ``options``: the corrections settings the write actions read."""
    options = {**(options or {}), "allow_audit": allow_audit}
    with inflight.hold(engine, key) as mine:
        if not mine:
            with engine.connect() as conn:
                row = ledger.get(conn, key)
            action = row["action"] if row else "?"
            return PushResult(key, action, "busy", "another process is pushing this action now")
        result = _push_claimed(engine, key, get_client, options=options)
    if result.outcome in ("pushed", "recovered", "skipped_done"):
        inflight.forget(engine, key)
    return result


def _push_claimed(
    engine: Engine, key: str, get_client: Callable[[str], Any], *, options: dict[str, Any]
) -> PushResult:
    with engine.connect() as conn:
        row = ledger.get(conn, key)
        if row is None:
            raise KeyError(f"no correction {key} in the ledger")
        problems = ledger.trail_problems(row, ledger.trails(conn, [key]).get(key, []))
    action = row["action"]
    if problems:
        logger.error(
            "correction %s refused: its ledger row is not what the audit log recorded: %s", key[:16], problems
        )
        return PushResult(key, action, "unverified", problems)
    if row["status"] == "done":
        return PushResult(key, action, "skipped_done", json.loads(row["response"] or "null"))
    if row["status"] not in PUSHABLE:
        return PushResult(key, action, "not_approved")
    actor = row["approved_by"] or "oafin"
    content = json.loads(row["content"])
    marker = marker_for(key)
    expect = (row["status"], row["audit_seq"])
    try:
        writer = get_system(row["system"]).write_actions.get(action)
        if writer is None:
            raise LookupError(f"system {row['system']} has no write action {action}")
        client = get_client(row["system"])
        if row["status"] == "pending":
            found = writer.landed(client, content, marker, options)
            if found is not None:
                with ledger.writing(engine) as conn:
                    ledger.transition(
                        conn,
                        key,
                        "done",
                        event="response",
                        actor=actor,
                        detail={"recovered": found},
                        expect=expect,
                        response=found,
                    )
                return PushResult(key, action, "recovered", found)
        with ledger.writing(engine) as conn:
            claimed = ledger.transition(
                conn,
                key,
                "pending",
                event="push",
                actor=actor,
                detail={"system": row["system"], "target": row["target"], "attempt": row["attempts"] + 1},
                expect=expect,
                attempts=row["attempts"] + 1,
            )
        response = writer.send(client, content, marker, options)
    except ledger.StaleRow as exc:
        return PushResult(key, action, "busy", str(exc))
    except (ConnectorError, LookupError) as exc:
        retryable = bool(getattr(exc, "retryable", False))
        with ledger.writing(engine) as conn:
            ledger.note(conn, key, "error", actor, {"error": str(exc), "retryable": retryable})
        logger.warning("correction %s (%s) failed: %s", key[:16], action, exc)
        return PushResult(key, action, "error", str(exc), retryable)
    if after_send is not None:
        after_send(key)
    with ledger.writing(engine) as conn:
        ledger.transition(
            conn,
            key,
            "done",
            event="response",
            actor=actor,
            detail={"response": response},
            expect=("pending", claimed["audit_seq"]),
            response=response,
        )
    return PushResult(key, action, "pushed", response)


def push_approved(
    engine: Engine, settings: Settings, keys: Sequence[str] | None = None, clients: Clients | None = None
) -> list[PushResult]:
    """Push the actions of ``keys`` (default: every ``approved`` or ``pending`` one) in ledger order;
    done ones are skipped and unapproved ones reported, without a call. Nothing is pushed while the
    audit chain does not verify (``oafin audit verify`` names the problems)."""
    with engine.connect() as conn:
        rows = ledger.rows(conn, list(keys) if keys is not None else None)
        chain = audit.verify(conn) if rows else None
    if keys is None:
        rows = [r for r in rows if r["status"] in PUSHABLE]
    if chain is not None and not chain.ok:
        logger.error("the audit log does not verify; nothing is pushed: %s", chain.problems[:5])
        return [PushResult(r["idempotency_key"], r["action"], "unverified", chain.problems[:5]) for r in rows]
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
