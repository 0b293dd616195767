"""Run the systems' twins over real HTTP on localhost (uvicorn in background threads).

This sits above the systems floor: it mounts a list of twins (``sandbox_twins()``), each the
``TWIN`` of a system folder (``oafin.sandbox.twin.Twin``); ``oafin.sandbox`` itself names none.

>>> from oafin.sandbox.generator import generate
>>> with running_sandbox(generate(n_claims=300)) as sb:  # doctest: +SKIP
...     httpx.get(sb.url("dingtalk") + "/gettoken", params={...})
...     sb.faults.inject("kingdee", "http_503", path_contains="ExecuteBillQuery")
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import uvicorn
from starlette.types import ASGIApp

from oafin.sandbox.dataset import Dataset
from oafin.sandbox.faults import CallLog, FaultPlan
from oafin.sandbox.generator import generate
from oafin.sandbox.twin import Twin, TwinState


def sandbox_twins() -> list[Twin]:
    """The twins the sandbox serves: every registered system's (``oafin.systems`` entry points) that
    has one, in the registry's (name) order."""
    from oafin.systems.base import twin_of
    from oafin.systems.registry import systems

    return [twin for system in systems().values() if (twin := twin_of(system)) is not None]


DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_DINGTALK_PORT: Final = 18701  # = the twins' default_port, kept for the CLI and the demo
DEFAULT_KINGDEE_PORT: Final = 18702
STARTUP_TIMEOUT: Final = 10.0
STOP_GRACE: Final = 2  # s a stopping server waits for answers in flight


@dataclass
class SandboxHandle:
    """A running sandbox: where each twin listens, what it was asked, and the faults to arm."""

    dataset: Dataset
    urls: dict[str, str]  # twin name -> base URL, e.g. http://127.0.0.1:18702/k3cloud/
    states: dict[str, TwinState]
    calls: CallLog
    faults: FaultPlan

    def url(self, system: str) -> str:
        """The base URL a client of ``system`` is given."""
        try:
            return self.urls[system]
        except KeyError:
            raise KeyError(f"no twin named {system!r} is running (running: {sorted(self.urls)})") from None

    def state(self, system: str) -> TwinState:
        return self.states[system]

    @property
    def dingtalk_url(self) -> str:  # e.g. http://127.0.0.1:18701 (the oapi.dingtalk.com stand-in)
        return self.url("dingtalk")

    @property
    def kingdee_url(self) -> str:  # e.g. http://127.0.0.1:18702/k3cloud/ (the ServerUrl)
        return self.url("kingdee")

    @property
    def dingtalk(self) -> Any:
        return self.states["dingtalk"]

    @property
    def kingdee(self) -> Any:
        return self.states["kingdee"]

    def _chosen(self, system: str | None) -> list[TwinState]:
        return [s for name, s in self.states.items() if system in (None, name)]

    def set_token_lifetime(self, seconds: float, system: str | None = None) -> None:
        """Tokens (DingTalk) and sessions (Kingdee) issued from now on live ``seconds``."""
        for state in self._chosen(system):
            state.tokens.lifetime = seconds

    def set_token_uses(self, calls: int | None, system: str | None = None) -> None:
        """Tokens and sessions die after ``calls`` authenticated calls each (None: no limit)."""
        for state in self._chosen(system):
            state.tokens.max_uses = calls

    def received_writes(self, system: str | None = None) -> list[dict]:
        """The write calls the twins received (comments, Save/Submit/Audit), in order per system."""
        return [
            {"system": name, **w}
            for name, state in self.states.items()
            if system in (None, name)
            for w in state.writes
        ]

    def reset(self) -> None:
        """Forget calls and armed faults; restore the default token lifetimes and use limits."""
        self.calls.clear()
        self.faults.clear()
        for state in self.states.values():
            state.tokens.reset()


class _Uvicorn:
    """One app served by uvicorn in a daemon thread, on a socket bound before it starts."""

    def __init__(self, app: ASGIApp, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # proto must be IPPROTO_TCP: asyncio sets TCP_NODELAY only on such sockets, and without
        # it every answer waits ~40 ms for a delayed ACK.
        self.sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.port = self.sock.getsockname()[1]
        # A stop waits at most STOP_GRACE for answers in flight, then cancels them: a `slow` fault
        # sleeping for a client that is gone (killed, timed out) no longer holds the stop for
        # the whole join timeout of each server (20 s for two, in tests/test_sigterm.py).
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=STOP_GRACE
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name=f"sandbox-{self.port}", daemon=True
        )

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sandbox server on port {self.port} did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(STARTUP_TIMEOUT)
        self.sock.close()


def _stop_all(servers: list[_Uvicorn]) -> None:
    """Ask every server to exit first, then wait: they wind down in parallel."""
    for server in servers:
        server.server.should_exit = True
    for server in servers:
        server.stop()


@contextmanager
def running_sandbox(
    dataset: Dataset,
    host: str = DEFAULT_HOST,
    dingtalk_port: int = 0,
    kingdee_port: int = 0,
    *,
    twins: Sequence[Twin] | None = None,
    ports: Mapping[str, int] | None = None,
) -> Iterator[SandboxHandle]:
    """Serve ``dataset`` through ``twins`` (default ``sandbox_twins()``) on ``host``.

    ``ports``: twin name -> port (``dingtalk_port``/``kingdee_port`` say the same for those two);
    port 0, the default, picks a free port.
    """
    twins = sandbox_twins() if twins is None else list(twins)
    chosen = {"dingtalk": dingtalk_port, "kingdee": kingdee_port, **(ports or {})}
    calls, faults = CallLog(), FaultPlan()
    url_host = f"[{host}]" if ":" in host else host
    servers: list[_Uvicorn] = []
    urls: dict[str, str] = {}
    states: dict[str, TwinState] = {}
    try:
        for twin in twins:
            app, states[twin.name] = twin.create_app(dataset, calls, faults)
            servers.append(_Uvicorn(app, host, chosen.get(twin.name, 0)))
            servers[-1].start()
            urls[twin.name] = f"http://{url_host}:{servers[-1].port}{twin.url_path}"
        yield SandboxHandle(dataset=dataset, urls=urls, states=states, calls=calls, faults=faults)
    finally:
        _stop_all(servers)


def write_dataset(dataset: Dataset, out_dir: Path, twins: Sequence[Twin] | None = None) -> Path:
    """The neutral month (``Dataset.write``) plus each twin's rendering of it (its ``files``)."""
    out_dir = dataset.write(out_dir)
    for twin in sandbox_twins() if twins is None else twins:
        for name, content in twin.files(dataset).items():
            (out_dir / name).write_text(json.dumps(content, ensure_ascii=False) + "\n", encoding="utf-8")
    return out_dir


def serve(
    dataset: Dataset,
    host: str = DEFAULT_HOST,
    dingtalk_port: int = DEFAULT_DINGTALK_PORT,
    kingdee_port: int = DEFAULT_KINGDEE_PORT,
    announce: Callable[[str], None] = print,
    fault_rate: float = 0.0,
    ports: Mapping[str, int] | None = None,
) -> None:
    """Serve until Ctrl-C (``oafin sandbox serve``); ``fault_rate``: random faults (oafin.sandbox.faults).

    ``ports``: twin name -> port, for twins other than the two with their own parameters."""
    # every other twin on its own default port (feishu 18705, ...), unless ``ports`` says otherwise
    defaults = {t.name: t.default_port for t in sandbox_twins() if t.name not in ("dingtalk", "kingdee")}
    ports = {**defaults, **(ports or {})}
    with running_sandbox(dataset, host, dingtalk_port, kingdee_port, ports=ports) as sandbox:
        if fault_rate:
            sandbox.faults.set_rate(fault_rate, seed=dataset.seed)
            announce(f"random faults on {fault_rate:.0%} of read calls (seed {dataset.seed})")
        twins = {twin.name: twin for twin in sandbox_twins()}
        for name, url in sandbox.urls.items():
            creds = " ".join(f"{k}={v}" for k, v in twins[name].credentials.items())
            announce(f"{name:<9} {url}  {creds}")
        announce(
            f"period {dataset.period}, seed {dataset.seed}: {len(dataset.claims)} claims, "
            f"{len(dataset.truth)} expected exceptions. Ctrl-C stops."
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


def main(argv: list[str] | None = None) -> None:
    """``python -m oafin.sandbox_server [--seed 7] [--period 2026-10] [--n-claims 3000] [--out DIR]``."""
    parser = argparse.ArgumentParser(description="Serve a generated month as fake DingTalk and Kingdee.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--period", default="2026-10")
    parser.add_argument("--n-claims", type=int, default=3000)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--dingtalk-port", type=int, default=DEFAULT_DINGTALK_PORT)
    parser.add_argument("--kingdee-port", type=int, default=DEFAULT_KINGDEE_PORT)
    parser.add_argument("--out", type=Path, help="also write the dataset (with truth.csv) here")
    args = parser.parse_args(argv)
    dataset = generate(seed=args.seed, period=args.period, n_claims=args.n_claims)
    if args.out:
        write_dataset(dataset, args.out)
    serve(dataset, args.host, args.dingtalk_port, args.kingdee_port)


if __name__ == "__main__":
    main()
