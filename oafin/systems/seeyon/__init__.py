"""Seeyon A8/V5 (致远): CAP4 expense forms over REST. Exports ``SYSTEM`` (oafin.systems entry point).

Seeyon's API varies by build and its field names by deployment (source-systems.md §5), so
everything uncertain is a config key with the documented default (``SeeyonSettings``) and every
form field is named in the mapping file (``field0003`` style), checked against the form's own
definition before any record is read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

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
    from oafin.systems.seeyon.client import SeeyonClient

NAME = "seeyon"
SEEYON_REQUESTS_PER_SECOND = 10.0  # = client.SEEYON_REQUESTS_PER_SECOND (no httpx import here)
DEFAULT_ID_PATH = "masterData.id.value"
DEFAULT_DATE_PATH = "masterData.start_date.value"
_FIELD_REF = re.compile(r"\bfield\d+\b")


class SeeyonSettings(SourceSettings):
    """A Seeyon source. Defaults are the documented ones (source-systems.md §5, real-clients.md §2.4);
    a build that differs changes the key, not the code."""

    # the CAP4 form's template code (模板编号); the mapping file maps it under forms:
    template_code: str = "BX001"
    # the export's rightId, "<view id>.<auth id>" of the form (real-clients.md §2.4)
    right_id: str = "-1.-2"
    # where the REST API lives under base_url (§5: {oa}/seeyon/rest/...)
    rest_path: str = "/seeyon/rest"
    # an OA login bound to the token (POST /token "loginName", optional, §5); not a secret
    login_name: str | None = None
    # the token travels as header "token:" or query "?token=" (§5, both [C])
    token_in: Literal["header", "query"] = "header"
    # the export's beginDateTime/endDateTime format: yyyy-MM-dd (§2.4)
    date_format: str = "%Y-%m-%d"
    # whether endDateTime includes its day (undocumented [U]); False asks one day more
    end_date_inclusive: bool = True
    # how the record's timestamp (the mapping's date_field) is written, China time
    record_time_format: str = "%Y-%m-%d %H:%M:%S"
    # the record key holding the flow id for GET /flow/state/{flowId} (undocumented [U])
    flow_id_key: str = "summaryId"
    # read each record's flow state (GET /flow/state/{flowId}, §5); false for a build without it,
    # with a mapping that takes status and approvers from the form record instead
    read_flow_state: bool = True


def wanted_fields(mapping: Any, kind: str) -> tuple[str, ...]:
    """The form fields a mapping names for ``kind``: master ``field0003``, sub-table ``formson_0232``
    and its cells ``formson_0232.field0010`` (what the definition check compares)."""
    wanted: list[str] = []
    form = mapping.form(kind)
    for spec in mapping.fields_for(kind).values():
        texts = [*spec.source_keys(), spec.path if isinstance(spec.path, str) else ""]
        for text in texts:
            wanted += _FIELD_REF.findall(text or "")
        if spec.form is not None:
            wanted.append(spec.form)
    for child in form.children.values():
        wanted.append(child.form)
        wanted += [f"{child.form}.{spec.label}" for spec in child.fields.values() if spec.label is not None]
    return tuple(dict.fromkeys(wanted))


class SeeyonReader(ClientReader):
    """CAP4 records of one template code in the window, with their flow state."""

    client: SeeyonClient

    def read(self, kind: RecordKind, start: datetime, end: datetime) -> Iterator[RawRecord]:
        yield from self.client.iter_form_records(
            kind.name,
            start,
            end,
            wanted=kind.fields,
            id_path=kind.id_field or DEFAULT_ID_PATH,
            date_path=kind.windowed_on,
        )


class Seeyon:
    name = NAME
    role: Role = "oa"
    settings_model = SeeyonSettings
    # POST /seeyon/rest/token {"userName", "password"} (source-systems.md §5)
    secret_fields = ("user_name", "password")
    default_rate_per_second = SEEYON_REQUESTS_PER_SECOND
    rate_source = (
        "source-systems.md §5: Seeyon documents no rate limit; 10/s stays gentle with an on-premises OA"
    )
    write_actions: Mapping[str, WriteAction] = {}

    @property
    def twin(self) -> Twin:
        """The sandbox twin (imported on use: reading the registry needs no web framework)."""
        from oafin.systems.seeyon.twin import TWIN

        return TWIN

    def record_kinds(self, settings: SourceSettings, mapping: Any) -> list[RecordKind]:
        assert isinstance(settings, SeeyonSettings)
        entity = getattr(mapping, "entity", "expense_claim")
        form = mapping.form(settings.template_code)
        return [
            RecordKind(
                settings.template_code,
                entity,
                windowed_on=form.date_field or DEFAULT_DATE_PATH,
                paging="page_index",
                fields=wanted_fields(mapping, settings.template_code),
                id_field=form.id_field or DEFAULT_ID_PATH,
            )
        ]

    def check_mapping(self, settings: SourceSettings, mapping: Any) -> list[str]:
        """What can be checked without the server; the fields themselves are checked against the
        form's definition by the first export call, before any record is read."""
        assert isinstance(settings, SeeyonSettings)
        kinds = list(getattr(mapping, "kinds", []) or [])
        if settings.template_code not in kinds:
            return [
                f"source {settings.name!r}: template_code {settings.template_code!r} is not mapped by "
                f"its mapping file (it maps {', '.join(kinds) or 'nothing'})"
            ]
        if not wanted_fields(mapping, settings.template_code):
            return [
                f"source {settings.name!r}: the mapping of {settings.template_code!r} names no form field "
                "(masterData.fieldNNNN...): Seeyon's field codes differ per deployment, so name them"
            ]
        return []

    def open(
        self,
        settings: SourceSettings,
        credentials: Mapping[str, str],
        *,
        limiter: Acquire | None = None,
        retry: RetryPolicy | None = None,
    ) -> SeeyonReader:
        from oafin.systems.seeyon.client import SeeyonClient

        assert isinstance(settings, SeeyonSettings)
        client = SeeyonClient(
            settings.base_url,
            credentials["user_name"],
            credentials["password"],
            rest_path=settings.rest_path,
            login_name=settings.login_name,
            right_id=settings.right_id,
            token_in=settings.token_in,
            date_format=settings.date_format,
            end_date_inclusive=settings.end_date_inclusive,
            record_time_format=settings.record_time_format,
            flow_id_key=settings.flow_id_key,
            read_flow_state=settings.read_flow_state,
            **client_options(settings, limiter, retry),
        )
        return SeeyonReader(client)

    def hint(self, exc: BaseException, settings: SourceSettings) -> str | None:
        from oafin.systems.seeyon.client import MappingFieldsMissingError, WhitelistClosedError

        if isinstance(exc, WhitelistClosedError):
            return (
                "ask the Seeyon administrator to add this server's IP address to the REST whitelist "
                "and to confirm the REST user is enabled; no credential change will help until then"
            )
        if isinstance(exc, MappingFieldsMissingError):
            return (
                f"edit the mapping file of source {settings.name!r} so it names fields this form has "
                "(the error lists them with their display names), then retry the run"
            )
        if isinstance(exc, AuthError):
            return auth_hint(settings, self.secret_fields)
        if isinstance(exc, RateLimitedError):
            return "the Seeyon server asks to slow down: lower rate_limit_per_second and retry"
        if isinstance(exc, SourceError):
            return (
                f"Seeyon refused the request: check source {settings.name!r}'s template_code and right_id "
                "against the CAP4 form, then retry the run"
            )
        return None


SYSTEM = Seeyon()
