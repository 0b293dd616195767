"""DingTalk (钉钉) over the v1.0 API (``api.dingtalk.com``). Exports ``SYSTEM`` (oafin.systems entry point).

The same company's DingTalk as the ``dingtalk`` (topapi) system, read over the new API: the same
approval form and the same people (its mapping reads the ``dingtalk`` identities), other shapes.
"""

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
from oafin.systems.dingtalk_v1.actions import StatusCommentV1
from oafin.systems.dingtalk_v1.approvals import DingTalkV1Approvals

if TYPE_CHECKING:
    from oafin.connectors.limits import Acquire, RetryPolicy
    from oafin.sandbox.twin import Twin
    from oafin.systems.dingtalk_v1.client import DingTalkV1Client

NAME = "dingtalk-v1"


class DingTalkV1Settings(SourceSettings):
    """A DingTalk v1.0 source: the approval form (process code) to extract."""

    process_code: str = "PROC-OAFIN-EXPENSE"


class DingTalkV1Reader(ClientReader):
    """Approval instances of one process code, listed by create time (``nextToken`` paging)."""

    client: DingTalkV1Client

    def read(self, kind: RecordKind, start: datetime, end: datetime) -> Iterator[RawRecord]:
        yield from self.client.iter_instances(kind.name, start, end)


class DingTalkV1:
    name = NAME
    role: Role = "oa"
    settings_model = DingTalkV1Settings
    # source-systems.md §1.1: POST /v1.0/oauth2/accessToken {appKey, appSecret}
    secret_fields = ("app_key", "app_secret")
    default_rate_per_second = DINGTALK_REQUESTS_PER_SECOND
    rate_source = (
        "source-systems.md §1.6 (40 calls/s per app key and API, the same platform limits as topapi); "
        "real-clients.md §2.7 (v1.0 answers HTTP 403 when throttled)"
    )
    write_actions: Mapping[str, WriteAction] = {"oa_status_comment": StatusCommentV1()}
    # issue #17: correction batches approved as v1.0 approval instances (approvals.py)
    approvals = DingTalkV1Approvals()

    @property
    def twin(self) -> Twin:
        """The sandbox twin (imported on use: reading the registry needs no web framework)."""
        from oafin.systems.dingtalk_v1.twin import TWIN

        return TWIN

    def record_kinds(self, settings: SourceSettings, mapping: Any) -> list[RecordKind]:
        assert isinstance(settings, DingTalkV1Settings)
        entity = getattr(mapping, "entity", "expense_claim")
        return [RecordKind(settings.process_code, entity, windowed_on="createTime", paging="page_token")]

    def check_mapping(self, settings: SourceSettings, mapping: Any) -> list[str]:
        assert isinstance(settings, DingTalkV1Settings)
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
    ) -> DingTalkV1Reader:
        from oafin.systems.dingtalk_v1.client import DingTalkV1Client

        client = DingTalkV1Client(
            settings.base_url,
            credentials["app_key"],
            credentials["app_secret"],
            **client_options(settings, limiter, retry),
        )
        return DingTalkV1Reader(client)

    def hint(self, exc: BaseException, settings: SourceSettings) -> str | None:
        if isinstance(exc, AuthError):
            return auth_hint(settings, self.secret_fields)
        if isinstance(exc, RateLimitedError):
            return "DingTalk's call quota is spent (HTTP 403 throttling); retry when it resets or ask DingTalk for more"
        if isinstance(exc, SourceError):
            return (
                f"DingTalk refused the request: check source {settings.name!r}'s process_code and "
                "the mapping file's forms against the approval form, then retry the run"
            )
        return None


SYSTEM = DingTalkV1()
