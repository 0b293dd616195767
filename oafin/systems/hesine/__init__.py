"""Hesine/Ekuaibao (合思/易快报): the expense platform's documents. Exports ``SYSTEM`` (oafin.systems entry point).

In a chain OA → Hesine → ERP (DESIGN, "Chains of systems") Hesine holds what finance pays: its
expense documents (报销单) carry the OA number, its payment documents (付款单) the expense
documents they pay and the ERP voucher number written back (``voucherNo``). They map onto the
standard's ``finance_doc`` (reimbursement, payment), so Hesine is the right side of the OA pair
and the left side of the ERP pair.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import Field

from oafin.connectors.errors import AuthError, RateLimitedError, SourceError
from oafin.connectors.limits import HESINE_REQUESTS_PER_SECOND
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
from oafin.systems.hesine.actions import Comment, WriteVoucherNo

if TYPE_CHECKING:
    from oafin.connectors.limits import Acquire, RetryPolicy
    from oafin.sandbox.twin import Twin
    from oafin.systems.hesine.client import HesineClient

NAME = "hesine"
DOC_TYPES = ("expense", "loan", "payment", "requisition", "custom", "receipt", "permit")  # §6.2


class HesineSettings(SourceSettings):
    """A Hesine source; the document types it reads (getApplyList ``type``) come from the mapping."""

    # How far before the window startDate is asked (updateTime overlap, seconds).
    overlap_seconds: int = Field(300, ge=0)


class HesineReader(ClientReader):
    """Documents of one type updated in the window, live then deleted (§6.2)."""

    client: HesineClient

    def read(self, kind: RecordKind, start: datetime, end: datetime) -> Iterator[RawRecord]:
        yield from self.client.iter_documents(kind.name, start, end)


class Hesine:
    name = NAME
    role: Role = "expense"
    settings_model = HesineSettings
    # getAccessToken {appKey, appSecurity} (source-systems.md §6.1)
    secret_fields = ("app_key", "app_security")
    default_rate_per_second = HESINE_REQUESTS_PER_SECOND
    rate_source = (
        "source-systems.md §6 / real-clients.md §2.5: no documented getApplyList limit; real clients "
        "sleep ~200 ms between pages"
    )
    write_actions: Mapping[str, WriteAction] = {
        "expense_write_voucher_no": WriteVoucherNo(),
        "expense_comment": Comment(),
    }

    @property
    def twin(self) -> Twin:
        from oafin.systems.hesine.twin import TWIN

        return TWIN

    def record_kinds(self, settings: SourceSettings, mapping: Any) -> list[RecordKind]:
        return [
            RecordKind(kind, mapping.entity, windowed_on="updateTime", paging="offset_limit")
            for kind in mapping.kinds
        ]

    def check_mapping(self, settings: SourceSettings, mapping: Any) -> list[str]:
        return [
            f"source {settings.name!r}: {kind!r} is not a Hesine document type ({', '.join(DOC_TYPES)})"
            for kind in mapping.kinds
            if kind not in DOC_TYPES
        ]

    def open(
        self,
        settings: SourceSettings,
        credentials: Mapping[str, str],
        *,
        limiter: Acquire | None = None,
        retry: RetryPolicy | None = None,
    ) -> HesineReader:
        from oafin.systems.hesine.client import HesineClient

        assert isinstance(settings, HesineSettings)
        client = HesineClient(
            settings.base_url,
            credentials["app_key"],
            credentials["app_security"],
            overlap=timedelta(seconds=settings.overlap_seconds),
            **client_options(settings, limiter, retry),
        )
        return HesineReader(client)

    def hint(self, exc: BaseException, settings: SourceSettings) -> str | None:
        if isinstance(exc, AuthError):
            return auth_hint(settings, self.secret_fields) + (
                "; the base_url must be the platform's host (app.ekuaibao.com, dd2.hosecloud.com, ...: "
                "GET /api/openapi/v2/location?corpId= names it)"
            )
        if isinstance(exc, RateLimitedError):
            return "Hesine refused for load; retry later or lower rate_limit_per_second"
        if isinstance(exc, SourceError):
            return (
                f"Hesine refused the request: check the document types of source {settings.name!r}'s "
                "mapping file and page_size (at most 100), then retry the run"
            )
        return None


SYSTEM = Hesine()
