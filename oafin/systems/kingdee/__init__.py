"""Kingdee K/3 Cloud (金蝶云星空): the ERP's bills and payments. Exports ``SYSTEM`` (oafin.systems entry point)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from oafin.connectors.errors import AuthError, RateLimitedError, SourceError
from oafin.connectors.limits import KINGDEE_REQUESTS_PER_SECOND
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
from oafin.systems.kingdee.actions import CreateBill, FlagRecall

if TYPE_CHECKING:
    from oafin.connectors.limits import Acquire, RetryPolicy
    from oafin.sandbox.twin import Twin
    from oafin.systems.kingdee.client import KingdeeClient

NAME = "kingdee"


class KingdeeSettings(SourceSettings):
    """A Kingdee source; its forms (FormIds) and field keys come from the mapping file."""

    lcid: int = 2052  # zh-CN (source-systems.md §7.2)
    # How oafin authenticates (issue #18): "session" logs in with AuthService.LoginByAppSecret and
    # sends the kdservice-sessionid cookie; "signature" never logs in and signs every request with
    # the official SDK's X-Api-*/X-Kd-* HMAC headers (real-clients.md §1.8), for systems where only
    # signature access is granted. Same four credentials either way.
    auth: Literal["session", "signature"] = "session"


# A form's entry (分录) and the entry fields queried for it: ExecuteBillQuery answers one row per
# entry line with the header repeated (source-systems.md §7.3); GL_VOUCHER's entry is FEntity (§7.5).
ENTRY_FIELDS: dict[str, tuple[str, ...]] = {
    "FEntity": ("FEntity_FEntryID", "FEXPLANATION", "FACCOUNTID.FNUMBER", "FDC", "FDEBIT", "FCREDIT"),
}


class KingdeeReader(ClientReader):
    """Rows of one FormId dated in the window (ExecuteBillQuery, StartRow/Limit paging, §7.3).

    A form whose mapping reads an entry (``items: FEntity``, a voucher's lines) is landed as one
    record per bill: its header, and its entry lines as a list under the entry key, in line order.
    """

    client: KingdeeClient

    def read(self, kind: RecordKind, start: datetime, end: datetime) -> Iterator[RawRecord]:
        entries = [key for key in kind.fields if key in ENTRY_FIELDS]
        id_field = kind.id_field or "FID"
        if not entries:
            yield from self.client.iter_bills(
                kind.name, list(kind.fields), kind.windowed_on, start, end, id_field=id_field
            )
            return
        header = [key for key in kind.fields if key not in ENTRY_FIELDS]
        lines = [f for key in entries for f in ENTRY_FIELDS[key]]
        order = f"{id_field} ASC, {lines[0]} ASC"
        rows = self.client.iter_bills(
            kind.name, header + lines, kind.windowed_on, start, end, id_field=id_field, order_string=order
        )
        # Grouped by id over the whole read: a page that repeats a line (a row repeated across
        # pages, §7.3) adds nothing, and a bill's lines stay one record wherever they come.
        records: dict[str, RawRecord] = {}
        for row in rows:
            record = records.get(row.source_id)
            if record is None:
                payload: dict[str, Any] = {key: row.payload.get(key) for key in header}
                payload.update({key: [] for key in entries})
                record = RawRecord(system=row.system, kind=row.kind, source_id=row.source_id, payload=payload)
                records[row.source_id] = record
            line = {f: row.payload.get(f) for f in lines}
            for key in entries:
                if line not in record.payload[key]:
                    record.payload[key].append(line)
        yield from records.values()


class Kingdee:
    name = NAME
    role: Role = "erp"
    settings_model = KingdeeSettings
    # AuthService.LoginByAppSecret: [acctID, userName, appId, appSecret, lcid] (source-systems.md §7.2)
    secret_fields = ("acct_id", "username", "app_id", "app_secret")
    default_rate_per_second = KINGDEE_REQUESTS_PER_SECOND
    rate_source = "source-systems.md §7.5: Kingdee documents no rate limit; 10/s stays gentle with an ERP"
    write_actions: Mapping[str, WriteAction] = {
        "finance_create_bill": CreateBill(),
        "finance_flag_recall": FlagRecall(),
    }

    @property
    def twin(self) -> Twin:
        """The sandbox twin (imported on use: reading the registry needs no web framework)."""
        from oafin.systems.kingdee.twin import TWIN

        return TWIN

    def record_kinds(self, settings: SourceSettings, mapping: Any) -> list[RecordKind]:
        kinds = []
        for form_id in mapping.kinds:
            form = mapping.form(form_id)
            kinds.append(
                RecordKind(
                    form_id,
                    mapping.entity,
                    windowed_on=form.date_field,
                    paging="offset_limit",
                    fields=tuple(mapping.field_keys(form_id)),
                    id_field=form.id_field or "FID",
                )
            )
        return kinds

    def check_mapping(self, settings: SourceSettings, mapping: Any) -> list[str]:
        problems = []
        for form_id in mapping.kinds:
            if not mapping.form(form_id).date_field:
                problems.append(
                    f"source {settings.name!r}: form {form_id!r} has no date_field to window the extraction on"
                )
        return problems

    def open(
        self,
        settings: SourceSettings,
        credentials: Mapping[str, str],
        *,
        limiter: Acquire | None = None,
        retry: RetryPolicy | None = None,
    ) -> KingdeeReader:
        from oafin.systems.kingdee.client import KingdeeClient

        assert isinstance(settings, KingdeeSettings)
        client = KingdeeClient(
            settings.base_url,
            credentials["acct_id"],
            credentials["username"],
            credentials["app_id"],
            credentials["app_secret"],
            lcid=settings.lcid,
            auth_mode=settings.auth,
            **client_options(settings, limiter, retry),
        )
        return KingdeeReader(client)

    def hint(self, exc: BaseException, settings: SourceSettings) -> str | None:
        if isinstance(exc, AuthError):
            return auth_hint(settings, self.secret_fields)
        if isinstance(exc, RateLimitedError):
            return "Kingdee refused for load; retry later or lower rate_limit_per_second"
        if isinstance(exc, SourceError):
            return (
                f"Kingdee refused the request: check the FormIds and field keys of source "
                f"{settings.name!r}'s mapping file against the system, then retry the run"
            )
        return None


SYSTEM = Kingdee()
