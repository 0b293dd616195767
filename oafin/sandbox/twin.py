"""What a system's sandbox twin is, as the sandbox server sees it (issue #9).

Each system folder exposes one ``Twin`` (``oafin/systems/<name>/twin.py: TWIN``): it renders the
neutral month (``Dataset``) into the system's API shapes when its app is created, and serves them
over HTTP. The server (``oafin.sandbox_server``) mounts a list of twins; nothing here names one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.types import ASGIApp

from oafin.sandbox.dataset import Dataset
from oafin.sandbox.faults import CallLog, FaultPlan
from oafin.sandbox.tokens import TokenStore


class TwinState(Protocol):
    """What the server and tests reach inside a running twin."""

    tokens: TokenStore  # the access tokens or sessions it issues
    writes: list[dict[str, Any]]  # write-back calls received, in order


@dataclass(frozen=True)
class Twin:
    """One system's twin.

    ``create_app(dataset, calls, faults)`` returns the ASGI app and its state; ``url_path`` is
    appended to ``http://host:port`` to make the base URL a client is given (Kingdee's ServerUrl
    ends in ``/k3cloud/``); ``credentials``: the sandbox's public fake credentials the twin
    accepts (never secrets); ``files(dataset)``: the rendering as file name -> JSON, for
    ``oafin sandbox generate --out``.
    """

    name: str
    role: str  # oa | expense | erp
    create_app: Callable[[Dataset, CallLog, FaultPlan], tuple[ASGIApp, TwinState]]
    default_port: int
    credentials: Mapping[str, str | int]
    files: Callable[[Dataset], dict[str, Any]]
    url_path: str = ""
