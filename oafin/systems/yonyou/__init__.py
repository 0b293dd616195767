"""Yonyou YonBIP (用友 YonBIP / YonSuite): the ERP's vouchers. Exports ``SYSTEM`` (oafin.systems entry point).

YonBIP's OpenAPI documents vouchers (``queryVouchers``, ``addVoucher``; source-systems.md §8.1) but
no reimbursement or payment document, so oafin reads the general ledger: reimbursement accruals and
payments are vouchers, told apart by their entry lines (``mappings/yonyou.yaml``, kind ``vouchers``).

In a chain after an expense platform (README, "Chains of three systems"), the ERP books the
platform's payments as vouchers of their own; the mapping's second kind ``platform_vouchers`` reads
those (the chain names it in the source's ``kinds``) and maps each to ``doc_type: voucher``.
"""

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
from oafin.systems.yonyou.actions import CreateVoucher

if TYPE_CHECKING:
    from oafin.connectors.limits import Acquire, RetryPolicy
    from oafin.sandbox.twin import Twin
    from oafin.systems.yonyou.client import YonyouClient

NAME = "yonyou"
# The record kind of the vouchers booking an expense platform's payments (a chain's third link): read
# with its own filter (``platform_subject_codes``, ``platform_voucher_types``); every other kind is
# the general ledger's reimbursement and payment vouchers (``accsubject_codes``).
PLATFORM_VOUCHERS = "platform_vouchers"
# YonBIP documents no rate limit (source-systems.md §0); 10/s stays gentle with an ERP, as for Kingdee.
YONYOU_REQUESTS_PER_SECOND = 10.0


class YonyouSettings(SourceSettings):
    """A Yonyou source. ``base_url`` is the tenant's gateway (``https://c2.yonyoucloud.com/iuap-api-gateway``)."""

    # The token host, ``…/iuap-api-auth``; None: the gateway's own domain (a token minted on another
    # domain is refused with 310036, source-systems.md §8.1).
    token_url: str | None = None
    # Which token path the tenant serves: the SDK's ``selfAppAuth/getAccessToken`` or
    # ``selfAppAuth/base/v1/getAccessToken`` (real-clients.md §1.9, §2.6).
    token_path: Literal["selfAppAuth", "base/v1"] = "selfAppAuth"
    # The 账簿 queryVouchers reads (its only really required field, §8.1); None: company_code.
    accbook_code: str | None = None
    # Only vouchers with an entry on one of these subjects (accsubjectCodeList, §8.1): the staff
    # payable that reimbursement accruals credit and their payments debit. Empty: every voucher.
    accsubject_codes: list[str] = Field(default_factory=lambda: ["2241"])
    # Kind platform_vouchers (a chain after an expense platform): the vouchers booking the platform's
    # payments. The platform holds the bill, so the ERP books the expense straight against the bank:
    # a 付款凭证 (voucherTypeCodeList, real-clients.md §2.6; the codes are the tenant's) with a line
    # on one of these subjects. Neither list may be empty (they keep the ledger's own vouchers out).
    platform_subject_codes: list[str] = Field(default_factory=lambda: ["6602"], min_length=1)
    platform_voucher_types: list[str] = Field(default_factory=lambda: ["2"], min_length=1)
    # A voucher changed in the window may belong to an earlier period: how far back periodStart goes.
    period_lookback_months: int = Field(12, ge=0, le=120)
    # Some tenants also want &tenantId= on every call (source-systems.md §8.1 [U]).
    tenant_id: str | None = None


class YonyouReader(ClientReader):
    """Vouchers last changed in the window (``tsStart``/``tsEnd``), ``pageIndex`` paging (§8.1, §2.6)."""

    client: YonyouClient

    def __init__(self, client: Any, settings: YonyouSettings) -> None:
        super().__init__(client)
        self.accsubject_codes = list(settings.accsubject_codes)
        self.platform_subject_codes = list(settings.platform_subject_codes)
        self.platform_voucher_types = list(settings.platform_voucher_types)

    def read(self, kind: RecordKind, start: datetime, end: datetime) -> Iterator[RawRecord]:
        if kind.name == PLATFORM_VOUCHERS:
            yield from self.client.iter_vouchers(
                start,
                end,
                kind=kind.name,
                accsubject_codes=self.platform_subject_codes,
                voucher_type_codes=self.platform_voucher_types,
            )
            return
        yield from self.client.iter_vouchers(
            start, end, kind=kind.name, accsubject_codes=self.accsubject_codes
        )


class Yonyou:
    name = NAME
    role: Role = "erp"
    settings_model = YonyouSettings
    # self-built app: appKey + appSecret (source-systems.md §8.1)
    secret_fields = ("app_key", "app_secret")
    default_rate_per_second = YONYOU_REQUESTS_PER_SECOND
    rate_source = "source-systems.md §0: YonBIP documents no rate limit; 10/s stays gentle with an ERP"
    write_actions: Mapping[str, WriteAction] = {"finance_create_bill": CreateVoucher()}

    @property
    def twin(self) -> Twin:
        """The sandbox twin (imported on use: reading the registry needs no web framework)."""
        from oafin.systems.yonyou.twin import TWIN

        return TWIN

    def record_kinds(self, settings: SourceSettings, mapping: Any) -> list[RecordKind]:
        return [
            RecordKind(
                kind,
                mapping.entity,
                windowed_on=mapping.form(kind).date_field or "header.ts",
                paging="page_index",
                id_field=mapping.form(kind).id_field or "header.id",
            )
            for kind in mapping.kinds
        ]

    def check_mapping(self, settings: SourceSettings, mapping: Any) -> list[str]:
        problems = []
        ledger = [k for k in mapping.kinds if k != PLATFORM_VOUCHERS]
        if len(ledger) > 1 or not mapping.kinds:
            problems.append(
                f"source {settings.name!r}: the yonyou mapping maps one kind of ledger vouchers (every "
                f"voucher comes from queryVouchers) and optionally {PLATFORM_VOUCHERS!r}, not "
                f"{', '.join(mapping.kinds) or 'none'}"
            )
        assert isinstance(settings, YonyouSettings)
        if not (settings.accbook_code or settings.company_code):
            problems.append(f"source {settings.name!r}: set accbook_code (queryVouchers needs the 账簿)")
        return problems

    def open(
        self,
        settings: SourceSettings,
        credentials: Mapping[str, str],
        *,
        limiter: Acquire | None = None,
        retry: RetryPolicy | None = None,
    ) -> YonyouReader:
        from oafin.systems.yonyou.client import YonyouClient

        assert isinstance(settings, YonyouSettings)
        client = YonyouClient(
            settings.base_url,
            credentials["app_key"],
            credentials["app_secret"],
            accbook_code=settings.accbook_code or settings.company_code,
            token_url=settings.token_url,
            token_path=settings.token_path,
            tenant_id=settings.tenant_id,
            period_lookback_months=settings.period_lookback_months,
            **client_options(settings, limiter, retry),
        )
        return YonyouReader(client, settings)

    def hint(self, exc: BaseException, settings: SourceSettings) -> str | None:
        if isinstance(exc, AuthError):
            return auth_hint(settings, self.secret_fields) + (
                "; a token from another gateway domain is refused (310036): set token_url to the "
                "tenant's own …/iuap-api-auth"
            )
        if isinstance(exc, RateLimitedError):
            return "Yonyou refused for load; retry later or lower rate_limit_per_second"
        if isinstance(exc, SourceError):
            return (
                f"Yonyou refused the request: check source {settings.name!r}'s accbook_code (账簿编码) "
                "and accsubject_codes against the system, then retry the run"
            )
        return None


SYSTEM = Yonyou()
