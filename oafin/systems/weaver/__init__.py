"""Weaver e-cology 9 (泛微): OA approvals over the paService REST API. Exports ``SYSTEM``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from oafin.connectors.errors import AuthError, RateLimitedError, SourceError
from oafin.records import RawRecord
from oafin.systems.base import (
    ClientReader,
    RecordKind,
    Role,
    SourceSettings,
    WriteAction,
    auth_hint,
    client_options,
)

if TYPE_CHECKING:
    from oafin.connectors.limits import Acquire, RetryPolicy
    from oafin.sandbox.twin import Twin
    from oafin.systems.weaver.client import WeaverClient

NAME = "weaver"
ListName = Literal["todo", "handled", "my", "all"]


def _default_lists() -> list[ListName]:
    return ["todo", "handled", "my"]


class WeaverSettings(SourceSettings):
    """A Weaver source. Builds differ, so each uncertain point is a key with the documented default.

    ``workflow_id``: the expense workflow's id (the mapping's form key; ``conditions.workflowIds``).
    ``userid``: the OA user (HrmResource id) oafin impersonates; every list is that user's own
    (source-systems.md §4.2), so pick one who sees every expense request: the sysadmin (1) or a
    finance archivist. ``lists``: which paService lists to read (to-do, handled, my requests, and
    ``all`` = getAllWorkflowRequestList where the build has it, real-clients.md §2.3 [U]).
    ``token_seconds``: the ``time`` asked of applytoken. ``read_log``: also read getRequestLog
    (who approved); without it approver checks have nothing to go on.
    """

    workflow_id: str = "52021"
    userid: str = "1"
    lists: list[ListName] = Field(default_factory=lambda: _default_lists(), min_length=1)
    token_seconds: int = Field(1800, ge=60)
    read_log: bool = True
    # Server-side date conditions merged into ``conditions``, for a build whose lists take them
    # (none is documented, §4.2 [U]): key -> template with {start_date}, {end_date} (yyyy-MM-dd)
    # or {start_time}, {end_time} (yyyy-MM-dd HH:mm:ss), Beijing time, both ends inclusive.
    # None: every page of each list is read and createTime filters.
    date_conditions: dict[str, str] | None = None


class WeaverReader(ClientReader):
    """Requests of one workflow created in the window, from the configured lists of one user."""

    client: WeaverClient

    @property
    def notes(self) -> list[str]:
        """What the operator should know about this read (a list shorter than its count)."""
        return list(self.client.notes)

    def read(self, kind: RecordKind, start: datetime, end: datetime) -> Iterator[RawRecord]:
        yield from self.client.iter_requests(kind.name, start, end, check_fields=kind.fields)


def mapped_field_names(mapping: Any, kind: str) -> tuple[str, ...]:
    """The main-table ``fieldName``s the mapping reads for ``kind`` (its ``form:`` fields)."""
    try:
        specs = mapping.fields_for(kind)
    except (AttributeError, KeyError):
        return ()
    names = [spec.form for spec in specs.values() if getattr(spec, "form", None)]
    return tuple(dict.fromkeys(names))


class Weaver:
    name = NAME
    role: Role = "oa"
    settings_model = WeaverSettings
    # source-systems.md §4.1: the app id registered in ECOLOGY_BIZ_EC; the secret and spk come from
    # regist at run time, the client's RSA key pair is made per run.
    secret_fields = ("app_id",)
    default_rate_per_second = 10.0
    rate_source = "source-systems.md §4.2: no rate limit documented; 10/s stays gentle with an on-premises OA"
    write_actions: Mapping[str, WriteAction] = {}

    @property
    def twin(self) -> Twin:
        """The sandbox twin (imported on use: reading the registry needs no web framework)."""
        from oafin.systems.weaver.twin import TWIN

        return TWIN

    def record_kinds(self, settings: SourceSettings, mapping: Any) -> list[RecordKind]:
        assert isinstance(settings, WeaverSettings)
        entity = getattr(mapping, "entity", "expense_claim")
        fields = mapped_field_names(mapping, settings.workflow_id)
        return [
            RecordKind(
                settings.workflow_id, entity, windowed_on="createTime", paging="page_index", fields=fields
            )
        ]

    def check_mapping(self, settings: SourceSettings, mapping: Any) -> list[str]:
        assert isinstance(settings, WeaverSettings)
        kinds = list(getattr(mapping, "kinds", []) or [])
        if settings.workflow_id not in kinds:
            return [
                f"source {settings.name!r}: workflow_id {settings.workflow_id!r} is not mapped by "
                f"its mapping file (it maps {', '.join(kinds) or 'nothing'})"
            ]
        return []

    def open(
        self,
        settings: SourceSettings,
        credentials: Mapping[str, str],
        *,
        limiter: Acquire | None = None,
        retry: RetryPolicy | None = None,
    ) -> WeaverReader:
        from oafin.systems.weaver.client import WeaverClient

        assert isinstance(settings, WeaverSettings)
        client = WeaverClient(
            settings.base_url,
            credentials["app_id"],
            userid=settings.userid,
            lists=settings.lists,
            token_seconds=settings.token_seconds,
            read_log=settings.read_log,
            date_conditions=settings.date_conditions or {},
            **client_options(settings, limiter, retry),
        )
        return WeaverReader(client)

    def hint(self, exc: BaseException, settings: SourceSettings) -> str | None:
        if isinstance(exc, AuthError):
            return auth_hint(settings, self.secret_fields) + (
                "; the app id must be registered in the OA (ECOLOGY_BIZ_EC) and regist/applytoken "
                "must be on the session whitelist (source-systems.md §4.1)"
            )
        if isinstance(exc, RateLimitedError):
            return "the OA or its gateway asks to slow down: lower rate_limit_per_second and retry"
        if isinstance(exc, SourceError):
            return (
                f"Weaver refused the request: check source {settings.name!r}'s workflow_id, userid "
                "and lists, and the mapping's field names against the form, then retry the run"
            )
        return None


SYSTEM = Weaver()
