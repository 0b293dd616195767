"""The interface every source system implements (issue #9; DESIGN, "A source system is one implementation").

A system lives in one folder, ``oafin/systems/<name>/``, and is registered under the ``oafin.systems``
entry-point group (``pyproject.toml``), so a company can ship its in-house OA as its own package.
Floors: this module sits just above the shared connector toolkit (``oafin.connectors``) and the
ground (``oafin.standard``, ``oafin.records``, ``oafin.periods``); it imports nothing higher.

Sketch of the parts (implementations fill them in; names are the contract between the pipeline,
the sandbox and the conformance suite):

- ``SourceSystem``: what the pipeline knows of a system: name, role, settings model, default rate,
  the record kinds it extracts, ``open()`` returning a ``RecordReader``, operator hints, optional
  write-back actions, and its sandbox twin.
- ``RecordKind``: one extractable kind (a DingTalk process code, a Kingdee FormId): how it is
  windowed (the timestamp it filters on) and paged.
- ``RecordReader``: reads raw records of one kind in a window; a context manager that owns its
  HTTP client.
- ``Twin``: renders the system-neutral sandbox company-month in the system's API shapes and serves
  them as an ASGI app (the sandbox server mounts every registered system's twin).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel

from oafin.records import RawRecord

if TYPE_CHECKING:
    from oafin.connectors.limits import Acquire, RetryPolicy

Role = Literal["oa", "expense", "erp"]
ROLES: tuple[Role, ...] = ("oa", "expense", "erp")


@dataclass(frozen=True)
class RecordKind:
    """One kind of record a system extracts, e.g. a DingTalk process code or a Kingdee FormId.

    ``entity`` is the standard entity it maps to (``expense_claim``, ``finance_doc``);
    ``windowed_on`` names the source timestamp the extraction window filters on; ``paging`` names
    the pager strategy (``cursor``, ``page_token``, ``offset_limit``, ``page_index``).
    """

    name: str
    entity: str
    windowed_on: str
    paging: str


@runtime_checkable
class RecordReader(Protocol):
    """Reads one system's raw records over its real API. Owns its HTTP client."""

    def read(self, kind: RecordKind, start: datetime, end: datetime) -> Iterator[RawRecord]:
        """Every record of ``kind`` whose windowed timestamp lies in ``[start, end)``."""
        ...

    def __enter__(self) -> RecordReader: ...

    def __exit__(self, *exc: object) -> None: ...


@dataclass(frozen=True)
class WriteAction:
    """A correction this system can receive (e.g. Kingdee Save+Submit of a bill, a DingTalk comment)."""

    name: str
    description: str


@runtime_checkable
class SourceSystem(Protocol):
    """One source system. Implementations are plain objects registered as ``oafin.systems`` entry points."""

    name: str  # the config's ``system = "..."``
    role: Role
    settings_model: type[BaseModel]  # the system's own config keys; extra keys refused
    secret_env: Mapping[str, str]  # credential field -> the environment variable suffix it is read from
    default_rate_per_second: float  # from the system's documented limits (cite the fact sheet)
    write_actions: Mapping[str, WriteAction]

    def record_kinds(self, settings: BaseModel, mapping: Any) -> list[RecordKind]:
        """The kinds this source extracts, from its settings and its mapping file."""
        ...

    def open(
        self,
        settings: BaseModel,
        credentials: Mapping[str, str],
        *,
        limiter: Acquire | None = None,
        retry: RetryPolicy | None = None,
    ) -> RecordReader:
        """A reader with credentials from the environment (never from the config file)."""
        ...

    def hint(self, exc: BaseException) -> str | None:
        """What an operator should do about ``exc`` (which variables to set, which setting to check)."""
        ...
