"""WeCom (企业微信): OA approvals over getapprovalinfo/getapprovaldetail. Exports ``SYSTEM`` (oafin.systems entry point).

No write-back: the approval API in the reference has no comment call (source-systems.md §2;
real-clients.md §4.2 lists only ``oa/applyevent``, which creates a new approval), so a
correction cannot be posted on an existing WeCom approval and ``write_actions`` is empty.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from oafin.connectors.errors import AuthError, RateLimitedError, SourceError
from oafin.connectors.limits import WECOM_REQUESTS_PER_SECOND
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
from oafin.systems.wecom.approvals import WeComApprovals

if TYPE_CHECKING:
    from oafin.connectors.limits import Acquire, RetryPolicy
    from oafin.sandbox.twin import Twin
    from oafin.systems.wecom.client import WeComClient

NAME = "wecom"
# The sandbox's expense template; a company sets its own (the template_id of its expense form).
DEFAULT_TEMPLATE_ID = "3WLJ7oafinSandboxExpenseTemplate0001"


class WeComSettings(SourceSettings):
    """A WeCom source: the approval template to extract, and which cursor to page with.

    ``cursor``: ``new_cursor`` (the string cursor, default) or ``cursor`` (the legacy int one), both
    documented for getapprovalinfo (source-systems.md §2.2).
    """

    template_id: str = DEFAULT_TEMPLATE_ID
    cursor: Literal["new_cursor", "cursor"] = "new_cursor"


class WeComReader(ClientReader):
    """Approvals of one template, listed by apply time (getapprovalinfo), each read in detail."""

    client: WeComClient

    def read(self, kind: RecordKind, start: datetime, end: datetime) -> Iterator[RawRecord]:
        yield from self.client.iter_approvals(kind.name, start, end)


class WeCom:
    name = NAME
    role: Role = "oa"
    settings_model = WeComSettings
    # source-systems.md §2.1: GET gettoken?corpid=&corpsecret= (each app has its own secret)
    secret_fields = ("corp_id", "corp_secret")
    default_rate_per_second = WECOM_REQUESTS_PER_SECOND
    rate_source = (
        "real-clients.md §2.1: getapprovalinfo and getapprovaldetail each 600 calls a minute "
        "(errcode 45009 above it); 10/s keeps both calls together under it"
    )
    write_actions: Mapping[str, WriteAction] = {}
    # issue #17: correction batches approved as WeCom approval forms (approvals.py)
    approvals = WeComApprovals()

    @property
    def twin(self) -> Twin:
        """The sandbox twin (imported on use: reading the registry needs no web framework)."""
        from oafin.systems.wecom.twin import TWIN

        return TWIN

    def record_kinds(self, settings: SourceSettings, mapping: Any) -> list[RecordKind]:
        assert isinstance(settings, WeComSettings)
        entity = getattr(mapping, "entity", "expense_claim")
        return [RecordKind(settings.template_id, entity, windowed_on="apply_time", paging="cursor")]

    def check_mapping(self, settings: SourceSettings, mapping: Any) -> list[str]:
        assert isinstance(settings, WeComSettings)
        kinds = list(getattr(mapping, "kinds", []) or [])
        if settings.template_id not in kinds:
            return [
                f"source {settings.name!r}: template_id {settings.template_id!r} is not mapped by "
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
    ) -> WeComReader:
        from oafin.systems.wecom.client import WeComClient

        assert isinstance(settings, WeComSettings)
        client = WeComClient(
            settings.base_url,
            credentials["corp_id"],
            credentials["corp_secret"],
            cursor_style=settings.cursor,
            **client_options(settings, limiter, retry),
        )
        return WeComReader(client)

    def hint(self, exc: BaseException, settings: SourceSettings) -> str | None:
        if isinstance(exc, AuthError):
            return auth_hint(settings, self.secret_fields) + (
                "; errcode 301055 means the applicant is outside the app's visible range: widen the "
                "approval app's visibility in the WeCom admin console"
            )
        if isinstance(exc, RateLimitedError):
            return (
                "WeCom's limit of 600 calls a minute per approval API was hit (errcode 45009); lower "
                f"source {settings.name!r}'s rate_limit_per_second (at most 10) and retry after a minute"
            )
        if isinstance(exc, SourceError):
            return (
                f"WeCom refused the request: check source {settings.name!r}'s template_id and the "
                "mapping file's forms against the approval template, then retry the run"
            )
        return None


SYSTEM = WeCom()
