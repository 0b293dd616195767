"""Feishu (飞书) approval v4: OA approvals. Exports ``SYSTEM`` (oafin.systems entry point)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

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
from oafin.systems.feishu.actions import StatusComment
from oafin.systems.feishu.approvals import FeishuApprovals

if TYPE_CHECKING:
    from oafin.connectors.limits import Acquire, RetryPolicy
    from oafin.sandbox.twin import Twin
    from oafin.systems.feishu.client import FeishuClient

NAME = "feishu"
# The sandbox's approval definition (oafin.systems.feishu.twin_render.APPROVAL_CODE); a company
# sets its own: Feishu admin console → approval → the definition's approval_code.
DEFAULT_APPROVAL_CODE = "7C468A54-8745-2245-9675-08B7C63E7A85"
# Instance get allows 1000 calls a minute (source-systems.md §3.3); see client.FEISHU_REQUESTS_PER_SECOND.
REQUESTS_PER_SECOND = 16.0


class FeishuSettings(SourceSettings):
    """A Feishu source: the approval definition (approval code) to extract."""

    approval_code: str = DEFAULT_APPROVAL_CODE


class FeishuReader(ClientReader):
    """Instances of one approval code, listed by creation time (``page_token`` paging)."""

    client: FeishuClient

    def read(self, kind: RecordKind, start: datetime, end: datetime) -> Iterator[RawRecord]:
        yield from self.client.iter_instances(kind.name, start, end)


class Feishu:
    name = NAME
    role: Role = "oa"
    settings_model = FeishuSettings
    # source-systems.md §3.1: POST /open-apis/auth/v3/tenant_access_token/internal {app_id, app_secret}
    secret_fields = ("app_id", "app_secret")
    default_rate_per_second = REQUESTS_PER_SECOND
    rate_source = "source-systems.md §3.3: instance get 1000/min and 50/s per app"
    write_actions: Mapping[str, WriteAction] = {"oa_status_comment": StatusComment()}
    # issue #17: correction batches approved as approval v4 instances (approvals.py)
    approvals = FeishuApprovals()

    @property
    def twin(self) -> Twin:
        """The sandbox twin (imported on use: reading the registry needs no web framework)."""
        from oafin.systems.feishu.twin import TWIN

        return TWIN

    def record_kinds(self, settings: SourceSettings, mapping: Any) -> list[RecordKind]:
        assert isinstance(settings, FeishuSettings)
        entity = getattr(mapping, "entity", "expense_claim")
        return [RecordKind(settings.approval_code, entity, windowed_on="start_time", paging="page_token")]

    def check_mapping(self, settings: SourceSettings, mapping: Any) -> list[str]:
        assert isinstance(settings, FeishuSettings)
        kinds = list(getattr(mapping, "kinds", []) or [])
        if settings.approval_code not in kinds:
            return [
                f"source {settings.name!r}: approval_code {settings.approval_code!r} is not mapped by "
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
    ) -> FeishuReader:
        from oafin.systems.feishu.client import FeishuClient

        client = FeishuClient(
            settings.base_url,
            credentials["app_id"],
            credentials["app_secret"],
            **client_options(settings, limiter, retry),
        )
        return FeishuReader(client)

    def hint(self, exc: BaseException, settings: SourceSettings) -> str | None:
        if isinstance(exc, AuthError):
            return auth_hint(settings, self.secret_fields)
        if isinstance(exc, RateLimitedError):
            return (
                "Feishu's rate limit (99991400 / HTTP 429) persisted; lower rate_limit_per_second and retry"
            )
        if isinstance(exc, SourceError):
            return (
                f"Feishu refused the request: check source {settings.name!r}'s approval_code and "
                "the mapping file's forms against the approval definition, then retry the run"
            )
        return None


SYSTEM = Feishu()
