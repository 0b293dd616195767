"""DingTalk (钉钉): OA approvals over the old topapi API. Exports ``SYSTEM`` (oafin.systems entry point)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from oafin.connectors.errors import AuthError, RateLimitedError, SourceError
from oafin.connectors.limits import DINGTALK_REQUESTS_PER_SECOND
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
from oafin.systems.dingtalk.actions import StatusComment
from oafin.systems.dingtalk.approvals import DingTalkApprovals

if TYPE_CHECKING:
    from oafin.connectors.limits import Acquire, RetryPolicy
    from oafin.sandbox.twin import Twin
    from oafin.systems.dingtalk.client import DingTalkClient

NAME = "dingtalk"


class DingTalkSettings(SourceSettings):
    """A DingTalk source: the approval form (process code) to extract."""

    process_code: str = "PROC-OAFIN-EXPENSE"


class DingTalkReader(ClientReader):
    """Approval instances of one process code, listed by create time (``listids`` cursor paging)."""

    client: DingTalkClient

    def read(self, kind: RecordKind, start: datetime, end: datetime) -> Iterator[RawRecord]:
        yield from self.client.iter_instances(kind.name, start, end)


class DingTalk:
    name = NAME
    role: Role = "oa"
    settings_model = DingTalkSettings
    # source-systems.md §1.1: GET /gettoken?appkey=&appsecret=
    secret_fields = ("app_key", "app_secret")
    default_rate_per_second = DINGTALK_REQUESTS_PER_SECOND
    rate_source = "source-systems.md §1.6: errcode 90018 above 40 calls/s per app key and API"
    write_actions: Mapping[str, WriteAction] = {"oa_status_comment": StatusComment()}
    # issue #17: correction batches approved as topapi approval instances (approvals.py)
    approvals = DingTalkApprovals()

    @property
    def twin(self) -> Twin:
        """The sandbox twin (imported on use: reading the registry needs no web framework)."""
        from oafin.systems.dingtalk.twin import TWIN

        return TWIN

    def record_kinds(self, settings: SourceSettings, mapping: Any) -> list[RecordKind]:
        assert isinstance(settings, DingTalkSettings)
        entity = getattr(mapping, "entity", "expense_claim")
        return [RecordKind(settings.process_code, entity, windowed_on="create_time", paging="cursor")]

    def check_mapping(self, settings: SourceSettings, mapping: Any) -> list[str]:
        assert isinstance(settings, DingTalkSettings)
        kinds = list(getattr(mapping, "kinds", []) or [])
        if settings.process_code not in kinds:
            return [
                f"source {settings.name!r}: process_code {settings.process_code!r} is not mapped by "
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
    ) -> DingTalkReader:
        from oafin.systems.dingtalk.client import DingTalkClient

        client = DingTalkClient(
            settings.base_url,
            credentials["app_key"],
            credentials["app_secret"],
            **client_options(settings, limiter, retry),
        )
        return DingTalkReader(client)

    def hint(self, exc: BaseException, settings: SourceSettings) -> str | None:
        if isinstance(exc, AuthError):
            return auth_hint(settings, self.secret_fields)
        if isinstance(exc, RateLimitedError):
            return "DingTalk's call quota is spent; retry when it resets or ask DingTalk for more"
        if isinstance(exc, SourceError):
            return (
                f"DingTalk refused the request: check source {settings.name!r}'s process_code and "
                "the mapping file's forms against the approval form, then retry the run"
            )
        return None


SYSTEM = DingTalk()
