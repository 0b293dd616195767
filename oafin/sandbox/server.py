"""Run the fake DingTalk and Kingdee over real HTTP on localhost (uvicorn in background threads).

>>> from sandbox.generator import generate
>>> with running_sandbox(generate(n_claims=300)) as sb:  # doctest: +SKIP
...     httpx.get(sb.dingtalk_url + "/gettoken", params={...})
...     sb.faults.inject("kingdee", "http_503", path_contains="ExecuteBillQuery")
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import uvicorn
from starlette.types import ASGIApp

from oafin.sandbox import credentials
from oafin.sandbox.dataset import Dataset
from oafin.sandbox.faults import CallLog, FaultPlan, System
from oafin.sandbox.generator import generate
from oafin.systems.dingtalk.twin import DingTalkState, create_dingtalk_app
from oafin.systems.kingdee.twin import KingdeeState, create_kingdee_app

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_DINGTALK_PORT: Final = 18701
DEFAULT_KINGDEE_PORT: Final = 18702
STARTUP_TIMEOUT: Final = 10.0


@dataclass
class SandboxHandle:
    """A running sandbox: where it listens, what it was asked, and the faults to arm."""

    dataset: Dataset
    dingtalk_url: str  # e.g. http://127.0.0.1:18701 (the oapi.dingtalk.com stand-in)
    kingdee_url: str  # e.g. http://127.0.0.1:18702/k3cloud/ (the ServerUrl)
    calls: CallLog
    faults: FaultPlan
    dingtalk: DingTalkState
    kingdee: KingdeeState

    def set_token_lifetime(self, seconds: float, system: System | None = None) -> None:
        """Tokens (DingTalk) and sessions (Kingdee) issued from now on live ``seconds``."""
        if system in (None, "dingtalk"):
            self.dingtalk.tokens.lifetime = seconds
        if system in (None, "kingdee"):
            self.kingdee.sessions.lifetime = seconds

    def received_writes(self, system: System | None = None) -> list[dict]:
        """The write calls the fake systems received (comments, Save/Submit/Audit), in order per system."""
        out: list[dict] = []
        if system in (None, "dingtalk"):
            out += [{"system": "dingtalk", **w} for w in self.dingtalk.writes]
        if system in (None, "kingdee"):
            out += [{"system": "kingdee", **w} for w in self.kingdee.writes]
        return out

    def reset(self) -> None:
        """Forget calls and armed faults; restore the default token and session lifetimes."""
        self.calls.clear()
        self.faults.clear()
        self.dingtalk.tokens.lifetime = self.dingtalk.tokens.default_lifetime
        self.kingdee.sessions.lifetime = self.kingdee.sessions.default_lifetime


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
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
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
    dataset: Dataset, host: str = DEFAULT_HOST, dingtalk_port: int = 0, kingdee_port: int = 0
) -> Iterator[SandboxHandle]:
    """Serve ``dataset`` as DingTalk and Kingdee on ``host``; port 0 picks a free port."""
    calls, faults = CallLog(), FaultPlan()
    dingtalk_app = create_dingtalk_app(dataset, faults, calls)
    kingdee_app = create_kingdee_app(dataset, faults, calls)
    url_host = f"[{host}]" if ":" in host else host
    servers: list[_Uvicorn] = []
    try:
        for app, port in ((dingtalk_app, dingtalk_port), (kingdee_app, kingdee_port)):
            servers.append(_Uvicorn(app, host, port))
            servers[-1].start()
        yield SandboxHandle(
            dataset=dataset,
            dingtalk_url=f"http://{url_host}:{servers[0].port}",
            kingdee_url=f"http://{url_host}:{servers[1].port}/k3cloud/",
            calls=calls,
            faults=faults,
            dingtalk=dingtalk_app.state.dingtalk,
            kingdee=kingdee_app.state.kingdee,
        )
    finally:
        _stop_all(servers)


def serve(
    dataset: Dataset,
    host: str = DEFAULT_HOST,
    dingtalk_port: int = DEFAULT_DINGTALK_PORT,
    kingdee_port: int = DEFAULT_KINGDEE_PORT,
    announce: Callable[[str], None] = print,
    fault_rate: float = 0.0,
) -> None:
    """Serve until Ctrl-C (``oafin sandbox serve``); ``fault_rate``: random faults (oafin.sandbox.faults)."""
    with running_sandbox(dataset, host, dingtalk_port, kingdee_port) as sandbox:
        if fault_rate:
            sandbox.faults.set_rate(fault_rate, seed=dataset.seed)
            announce(f"random faults on {fault_rate:.0%} of read calls (seed {dataset.seed})")
        announce(
            f"DingTalk  {sandbox.dingtalk_url}  appkey={credentials.DINGTALK_APP_KEY} "
            f"appsecret={credentials.DINGTALK_APP_SECRET}\n"
            f"Kingdee   {sandbox.kingdee_url}  acct={credentials.KINGDEE_ACCT_ID} "
            f"user={credentials.KINGDEE_USERNAME} app_id={credentials.KINGDEE_APP_ID} "
            f"app_secret={credentials.KINGDEE_APP_SECRET}\n"
            f"period {dataset.period}, seed {dataset.seed}: {len(dataset.dingtalk_instances)} instances, "
            f"{len(dataset.truth)} expected exceptions. Ctrl-C stops."
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


def main(argv: list[str] | None = None) -> None:
    """``python -m oafin.sandbox.server [--seed 7] [--period 2026-10] [--n-claims 3000] [--out DIR]``."""
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
        dataset.write(args.out)
    serve(dataset, args.host, args.dingtalk_port, args.kingdee_port)


if __name__ == "__main__":
    main()
