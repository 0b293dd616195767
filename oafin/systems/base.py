"""The interface every source system implements (issue #9; DESIGN, "A source system is one implementation").

A system lives in one folder, ``oafin/systems/<name>/``, exports ``SYSTEM`` from its ``__init__``
and is registered under the ``oafin.systems`` entry-point group (``pyproject.toml``), so a company
can ship its in-house OA as its own package. Floors: this module sits just above the shared
connector toolkit (``oafin.connectors``) and the ground (``oafin.standard``, ``oafin.records``,
``oafin.periods``); it imports nothing higher (a mapping is passed in, duck-typed).

The parts (names are the contract between the pipeline, the sandbox and the conformance suite):

- ``SourceSystem``: name, role, settings model, the environment variables its secrets come from,
  default rate, the record kinds it extracts, ``open()`` returning a ``RecordReader``, operator
  hints, write-back actions.
- ``SourceSettings``: the keys every source has in the config (``[[sources]]``); a system's
  settings model subclasses it with its own keys. No secrets: those are read from the
  environment, ``OAFIN_SOURCE_<NAME>_<FIELD>`` (``env_name``).
- ``RecordKind``: one extractable kind (a DingTalk process code, a Kingdee FormId): how it is
  windowed and paged, and what the reader needs to read it.
- ``RecordReader``: reads raw records of one kind in a window; a context manager that owns its
  HTTP client (``client`` is what write actions call).
- ``WriteAction``: a correction the system can receive: how to build it from the warehouse's
  facts, how to see whether it already landed, and how to send it.
- ``Approvals`` (optional ``approvals`` attribute, issue #17): an OA that can hold a correction
  batch as an approval instance: create it (``ApprovalRequest``: form, originator, one
  ``ApprovalRow`` per action, report link), find it again after a lost answer, and read it
  (``ApprovalState``: status and the human decisions on record, ``ApprovalRecord``).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from oafin.records import RawRecord

if TYPE_CHECKING:
    from oafin.connectors.limits import Acquire, RetryPolicy

Role = Literal["oa", "expense", "erp"]
ROLES: tuple[Role, ...] = ("oa", "expense", "erp")
# The standard entity a source of each role maps to by default (its mapping file says for sure).
ROLE_ENTITIES: dict[str, str] = {"oa": "expense_claim", "expense": "expense_claim", "erp": "finance_doc"}
ENV_PREFIX = "OAFIN_SOURCE_"


class SourceSettings(BaseModel):
    """The keys every ``[[sources]]`` entry has; a system's settings model adds its own.

    ``name`` is the source's name in the config (and in its environment variables); ``system``
    the registered system; ``role`` defaults to the system's. Unknown keys are refused
    (``check_keys`` names the nearest valid one).
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")
    system: str
    role: Role
    company_code: str = "C01"
    base_url: str
    mapping: Path | None = None  # None: the packaged default mapping for the system
    # Requests per second to this source; None: the system's default from its documented limits.
    rate_limit_per_second: float | None = Field(None, gt=0)
    page_size: int | None = Field(None, ge=1)
    timeout_seconds: float = Field(30.0, gt=0)
    # The record kinds to read (forms, document types); None: every kind the mapping maps. An ERP
    # after an expense platform in a chain reads only its vouchers (e.g. ["GL_VOUCHER"]).
    kinds: list[str] | None = None


def check_keys(model: type[BaseModel], data: Mapping[str, Any], where: str) -> list[str]:
    """Messages for the keys of ``data`` that ``model`` does not have, each with the nearest valid one."""
    valid = list(model.model_fields)
    problems = []
    for key in data:
        if key in valid:
            continue
        near = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.5)
        hint = f"; did you mean {near[0]!r}?" if near else f"; valid keys: {', '.join(valid)}"
        problems.append(f"{where}: unknown key {key!r}{hint}")
    return problems


def env_name(source_name: str, field_name: str) -> str:
    """``OAFIN_SOURCE_OA_APP_SECRET``: where a source's credential ``field_name`` is read from."""
    norm = re.sub(r"[^A-Za-z0-9]", "_", source_name).upper()
    return f"{ENV_PREFIX}{norm}_{field_name.upper()}"


def credentials_from_env(
    source_name: str, fields: tuple[str, ...], environ: Mapping[str, str] | None = None
) -> tuple[dict[str, str], list[str]]:
    """The credential ``fields`` of a source from ``environ`` (default: the process environment).

    Returns (found, the variable names that are missing or empty).
    """
    environ = os.environ if environ is None else environ
    found: dict[str, str] = {}
    missing: list[str] = []
    for f in fields:
        value = environ.get(env_name(source_name, f), "")
        if value:
            found[f] = value
        else:
            missing.append(env_name(source_name, f))
    return found, missing


@dataclass(frozen=True)
class RecordKind:
    """One kind of record a system extracts, e.g. a DingTalk process code or a Kingdee FormId.

    ``entity`` is the standard entity it maps to (``expense_claim``, ``finance_doc``);
    ``windowed_on`` names the source timestamp the extraction window filters on; ``paging`` names
    the pager strategy (``cursor``, ``page_token``, ``offset_limit``, ``page_index``);
    ``fields`` and ``id_field`` are what a query API needs to be asked (empty for a detail API).
    """

    name: str
    entity: str
    windowed_on: str
    paging: str
    fields: tuple[str, ...] = ()
    id_field: str | None = None


@runtime_checkable
class RecordReader(Protocol):
    """Reads one system's raw records over its real API. Owns its HTTP client."""

    client: Any  # the system's API client, for its write actions

    def read(self, kind: RecordKind, start: datetime, end: datetime) -> Iterator[RawRecord]:
        """Every record of ``kind`` whose windowed timestamp lies in ``[start, end)``."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> RecordReader: ...

    def __exit__(self, *exc: object) -> None: ...


class CannotPropose(Exception):
    """The warehouse's facts cannot make a complete action; the message is the reason shown."""


@dataclass(frozen=True)
class ActionInput:
    """What the pipeline knows when it proposes a write: the claim, the document concerned, the
    text to post, and the applicant's id in the target system (from person identities)."""

    claim: Mapping[str, Any]
    doc: Mapping[str, Any] | None = None
    text: str | None = None
    applicant_external_id: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ActionPlan:
    """An action's content (the intent: stable, hashed into the idempotency key), target and preview."""

    content: dict[str, Any]
    target: str
    preview: str


@runtime_checkable
class WriteAction(Protocol):
    """A correction this system can receive (e.g. Kingdee Save+Submit of a bill, a DingTalk comment).

    ``send`` makes the write calls once (write clients do not retry) and returns what the system
    answered; ``landed`` reads the system only, to settle a doubtful earlier call.
    """

    name: str
    description: str

    def plan(self, data: ActionInput) -> ActionPlan:
        """The action's content from warehouse facts; raises ``CannotPropose`` with the reason."""
        ...

    def landed(
        self, client: Any, content: Mapping[str, Any], marker: str, options: Mapping[str, Any]
    ) -> dict[str, Any] | None: ...

    def send(
        self, client: Any, content: Mapping[str, Any], marker: str, options: Mapping[str, Any]
    ) -> dict[str, Any]: ...


@runtime_checkable
class SourceSystem(Protocol):
    """One source system. Implementations are plain objects registered as ``oafin.systems`` entry points.

    Optionally a ``twin`` attribute: the system's sandbox twin (``oafin.sandbox.twin.Twin``), which
    ``oafin sandbox serve`` and the demo mount and the conformance suite runs against
    (``twin_of``). A system without one (a company's in-house OA) still plugs in.
    """

    name: str  # the config's ``system = "..."``
    role: Role
    settings_model: type[SourceSettings]  # the system's own config keys; extra keys refused
    secret_fields: tuple[str, ...]  # credential fields, read from env_name(source, field)
    default_rate_per_second: float  # from the system's documented limits
    rate_source: str  # where that rate is documented (the fact sheet and section)
    write_actions: Mapping[str, WriteAction]

    def record_kinds(self, settings: SourceSettings, mapping: Any) -> list[RecordKind]:
        """The kinds this source extracts, from its settings and its mapping file."""
        ...

    def check_mapping(self, settings: SourceSettings, mapping: Any) -> list[str]:
        """Problems between the settings and the mapping (e.g. a form the mapping does not map)."""
        ...

    def open(
        self,
        settings: SourceSettings,
        credentials: Mapping[str, str],
        *,
        limiter: Acquire | None = None,
        retry: RetryPolicy | None = None,
    ) -> RecordReader:
        """A reader with ``credentials`` (from the environment, never from the config file)."""
        ...

    def hint(self, exc: BaseException, settings: SourceSettings) -> str | None:
        """What an operator should do about ``exc`` (which variables to set, which setting to check)."""
        ...


# --- approvals in the OA (issue #17) ---------------------------------------------------------
# An OA system may offer ``approvals``: a correction batch is sent as an approval instance in the
# OA, and its state, with the OA's own record of who decided, is read back. Names and shapes here
# are neutral; each system maps them onto its API (oafin/systems/<name>/approvals.py).

ApprovalStatus = Literal["pending", "approved", "rejected", "withdrawn"]
DECISIONS = ("agree", "refuse", "withdraw")


def yuan(fen: int | None) -> str:
    """Fen as an approval form shows money: ``¥1,234.50``, ``-¥0.05``; ``""`` when unknown."""
    if fen is None:
        return ""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


@dataclass(frozen=True)
class ApprovalRow:
    """One action of a batch, as a row of the approval form's detail table."""

    marker: str  # the action's short id (``[oafin:...]``), how a row is named in decisions
    action: str
    claim_no: str | None
    exception_type: str
    amount_fen: int | None
    target_system: str
    target: str
    preview: str  # what will be sent

    def cells(self) -> tuple[str, str, str, str, str, str]:
        """The row as every OA's detail table shows it: 编号, 报销单号, 异常类型, 金额, 目标系统,
        发送内容 (each system names the columns its own way)."""
        return (
            self.marker,
            self.claim_no or "",
            self.exception_type,
            yuan(self.amount_fen),
            f"{self.target_system}: {self.target}",
            self.preview,
        )


@dataclass(frozen=True)
class ApprovalRequest:
    """A batch to approve: which form, submitted by whom, with which rows and report link.

    ``batch_id`` is written into the form, so a batch whose create call's answer was lost can be
    found again (``Approvals.find``): the OAs' create calls carry no idempotency key.
    """

    batch_id: str
    process_code: str  # the approval form (DingTalk process code, WeCom template id, ...)
    originator_id: str  # the OA user id the instance is submitted as
    title: str
    rows: tuple[ApprovalRow, ...]
    report_link: str
    approver_ids: tuple[str, ...] = ()  # OA user ids; empty: the form's own approval flow decides
    dept_id: str | None = None

    @property
    def total_fen(self) -> int:
        return sum(r.amount_fen or 0 for r in self.rows)

    def summary(self) -> str:
        """The batch's summary text on every OA's form: how many, how much, what approving does."""
        return (
            f"共 {len(self.rows)} 项更正，涉及金额合计 {yuan(self.total_fen)}。同意即批准全部明细写回对应系统；"
            "申请人不得审批涉及本人报销单的更正。"
        )


@dataclass(frozen=True)
class ApprovalRecord:
    """One decision in the OA's record of an instance. ``human``: a person's recorded act (an
    operation record); False where only a task shows it, as an automatic pass also does
    (real-clients.md §4.4): such a user still counts for segregation of duties, never as the
    human approval an instance needs."""

    user_id: str  # the OA's user id
    decision: str  # agree | refuse | withdraw
    at: datetime | None = None
    remark: str = ""
    human: bool = True


@dataclass(frozen=True)
class ApprovalState:
    """An instance as the OA records it. ``row_decisions``: marker → approved, only where the OA
    lets approvers decide rows; None means the instance decides the whole batch."""

    instance_id: str
    status: ApprovalStatus
    records: tuple[ApprovalRecord, ...] = ()
    raw_status: str = ""
    row_decisions: Mapping[str, bool] | None = None

    @property
    def approvers(self) -> list[str]:
        """Every user who agreed, in the order the OA recorded them, each once."""
        out: list[str] = []
        for r in self.records:
            if r.decision == "agree" and r.user_id not in out:
                out.append(r.user_id)
        return out

    @property
    def human_approvers(self) -> list[str]:
        """Those of ``approvers`` whose agreement is a person's recorded act."""
        return [
            u
            for u in self.approvers
            if any(r.user_id == u and r.decision == "agree" and r.human for r in self.records)
        ]

    def deciders(self, decision: str) -> list[str]:
        return list(dict.fromkeys(r.user_id for r in self.records if r.decision == decision))


@runtime_checkable
class Approvals(Protocol):
    """A system's approval instances (optional ``approvals`` attribute of a ``SourceSystem``).

    ``create`` makes one call and returns the instance id (a write: sent once, never retried);
    ``find`` reads only: the instance of ``request.batch_id`` created since ``since``, if any;
    ``read`` returns the instance's state with the human decisions on record. An optional
    ``identity_system`` attribute names the system whose ids in ``identities.csv`` the user ids
    are (an API version sharing its people with another; default: the system itself)."""

    row_level: bool  # whether approvers can decide single rows (else the instance decides all)

    def create(self, client: Any, request: ApprovalRequest) -> str: ...

    def find(self, client: Any, request: ApprovalRequest, since: datetime) -> str | None: ...

    def read(self, client: Any, instance_id: str) -> ApprovalState: ...


def approvals_of(system: Any) -> Approvals | None:
    """The system's approval instances, or None where it offers none."""
    return getattr(system, "approvals", None)


class ClientReader:
    """A ``RecordReader`` over one client: owns it and closes it. A system subclasses it and writes
    ``read`` for its own API (its client, paging and windowing)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def read(self, kind: RecordKind, start: datetime, end: datetime) -> Iterator[RawRecord]:
        raise NotImplementedError

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> ClientReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def twin_of(system: SourceSystem) -> Any:
    """The system's sandbox twin (``oafin.sandbox.twin.Twin``), or None where it has none."""
    return getattr(system, "twin", None)


def client_options(
    settings: SourceSettings, limiter: Acquire | None = None, retry: RetryPolicy | None = None
) -> dict[str, Any]:
    """The shared connector options of a source: timeouts, page size, limiter, retry policy.

    Without ``limiter``, an in-process token bucket at ``rate_limit_per_second`` applies when set
    (else the client's own documented default).
    """
    from oafin.connectors.http import Timeouts
    from oafin.connectors.limits import RateLimiter

    options: dict[str, Any] = {"timeouts": Timeouts(read=settings.timeout_seconds)}
    if retry is not None:
        options["retry"] = retry
    if settings.page_size:
        options["page_size"] = settings.page_size
    if limiter is not None:
        options["limiter"] = limiter
    elif settings.rate_limit_per_second:
        rate = settings.rate_limit_per_second
        options["limiter"] = RateLimiter(rate, burst=max(1, int(rate // 10))).acquire
    return options


def auth_hint(settings: SourceSettings, fields: tuple[str, ...]) -> str:
    """The operator hint for refused credentials, naming the source's own variables."""
    names = ", ".join(env_name(settings.name, f) for f in fields)
    return (
        f"credentials or permissions were refused: check {names} and the app's API permissions; "
        "credentials are read from the environment of the process running the flow, so set them "
        "there and restart the worker (`prefect worker start`) before you retry the run"
    )
