"""Records passed between steps: what a connector lands and what a mapping yields."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

IssueCode = Literal["UNMAPPED_CODE", "CONTRACT_VIOLATION"]


@dataclass(frozen=True)
class RawRecord:
    """One source record exactly as the source API returned it.

    ``kind`` names what it is within the system: a DingTalk process code or a
    Kingdee FormId. ``source_id`` is the system's own id (a process instance id,
    a bill's FID).
    """

    system: str
    kind: str
    source_id: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Issue:
    """Why a record cannot enter the reconciliation as it is."""

    code: IssueCode
    field: str
    value: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "field": self.field, "value": self.value, "message": self.message}


@dataclass
class MappedRecord:
    """A source record mapped onto a standard entity.

    ``values`` holds the standard columns (``oafin.standard.ENTITIES[entity]``)
    already parsed: money as int fen, timestamps aware UTC, text NFKC-normalised.
    A field that could not be read is ``None`` and has an ``Issue``.
    ``children`` holds child entities by name (``claim_invoice`` rows of a claim).
    """

    entity: str
    system: str
    kind: str
    source_id: str
    values: dict[str, Any]
    raw: dict[str, Any]
    issues: list[Issue] = field(default_factory=list)
    children: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
