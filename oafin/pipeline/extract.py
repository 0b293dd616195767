"""Extract a source for a window and land its records in the warehouse, incrementally and resumably.

One extraction is one (system, kind, company): a DingTalk process code or a Kingdee FormId.
``plan_extraction`` reads the watermarks and says, per kind, which part of the requested window
must be read (``oafin.warehouse.watermarks.plan_window``: past the watermark, minus an overlap that
re-reads the tail for late edits). ``extract_kind`` reads that part, lands it in committed
batches, and only then advances the watermark. A crash anywhere loses at most the uncommitted
batch and leaves the old watermark, so the next run reads the window again; landing is an upsert
keyed by (system, kind, source_id), so nothing doubles, and every distinct payload stays in
``raw_record_version`` (a claim that moved from pending to approved keeps its history).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from sqlalchemy import Engine

from oafin.config import ConfigError, Settings, SourceConfig
from oafin.connectors.errors import ConnectorError, TokenExpiredError
from oafin.connectors.limits import Acquire, RetryPolicy
from oafin.pipeline.sources import mapping_path, open_client, source_mapping
from oafin.records import RawRecord
from oafin.warehouse.store import canonical_json, land_raw
from oafin.warehouse.watermarks import advance, plan_window, read_watermark

log = logging.getLogger(__name__)
BATCH = 500
_SURROGATE = re.compile("[\ud800-\udfff]")
# Re-read this much before the watermark on an incremental run: an approval finished or a bill
# audited a day or two after it was created still lands (flow parameter ``overlap_hours``).
DEFAULT_OVERLAP = timedelta(hours=72)
ROLES = ("oa", "finance")


@dataclass(frozen=True)
class ExtractPlan:
    """One kind's extraction. Plain, hashable values: Prefect's cache key is built on them.

    ``watermark_to`` is the watermark the plan was made from and ``mapping_hash`` the mapping
    file's content hash, so a changed mapping or a moved watermark is a different extraction.
    """

    role: str
    system: str
    kind: str
    company_code: str
    read_from: str  # ISO UTC
    read_to: str  # ISO UTC
    mode: str
    watermark_to: str | None
    mapping_hash: str

    @property
    def window(self) -> tuple[datetime, datetime]:
        return datetime.fromisoformat(self.read_from), datetime.fromisoformat(self.read_to)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ExtractSummary:
    system: str
    landed: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    def add(self, other: ExtractSummary) -> None:
        self.landed += other.landed
        for kind, n in other.by_kind.items():
            self.by_kind[kind] = self.by_kind.get(kind, 0) + n


def worth_retrying(exc: BaseException, attempt: int) -> bool:
    """Whether an extraction that failed with ``exc`` on its ``attempt``-th try may heal.

    The connectors have already retried inside the call what can heal (``.retryable``); past
    that budget a retryable error may still clear after a pause. A credential refused right
    after a refresh is, once, taken for a race with a concurrent refresh (many threads share a
    token); a second time it is the credentials. Bad credentials, a refused request and a bad
    config never heal.
    """
    if isinstance(exc, TokenExpiredError):
        return attempt <= 1
    if isinstance(exc, ConnectorError):
        return exc.retryable
    if isinstance(exc, ConfigError):
        return False
    return isinstance(exc, Exception)


def _batches(records: Iterable[RawRecord], size: int) -> Iterator[list[RawRecord]]:
    it = iter(records)
    while batch := list(islice(it, size)):
        yield batch


def _unique(batch: list[RawRecord]) -> list[RawRecord]:
    """One record per key, the last one read: a record served on two pages lands once."""
    by_key = {(r.system, r.kind, r.source_id): _writable(r) for r in batch}
    return list(by_key.values())


def _no_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_no_surrogates(k): _no_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_surrogates(v) for v in value]
    return value


def _writable(record: RawRecord) -> RawRecord:
    """The record, landable as UTF-8 text.

    Valid JSON can carry a lone surrogate (``"\\ud800"``), which no UTF-8 text can hold; such a
    string is landed with the surrogate replaced (every other payload lands exactly as read), and
    the mapped record is quarantined for it (oafin.pipeline.standardize.plausibility_issues).
    """
    try:
        canonical_json(record.payload).encode("utf-8")
    except UnicodeEncodeError:
        log.warning(
            "%s %s %s: text not valid Unicode, landed with U+FFFD",
            record.system,
            record.kind,
            record.source_id,
        )
        return RawRecord(record.system, record.kind, record.source_id, _no_surrogates(record.payload))
    return record


def file_hash(path: Any) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()[:16]


def source_kinds(settings: Settings, source: SourceConfig) -> list[str]:
    """The kinds a source is extracted by: its process code (DingTalk) or its mapped FormIds."""
    if source.system == "dingtalk":
        return [source.process_code]
    return list(source_mapping(settings, source).kinds)


def plan_extraction(
    engine: Engine,
    settings: Settings,
    start: datetime,
    end: datetime,
    *,
    overlap: timedelta = DEFAULT_OVERLAP,
    full: bool = False,
    roles: Iterable[str] = ROLES,
) -> list[ExtractPlan]:
    """Per (role, kind): the part of ``[start, end)`` still to read, from the stored watermarks."""
    plans = []
    with engine.connect() as conn:
        for role in roles:
            source: SourceConfig = getattr(settings, role)
            mapping_hash = file_hash(mapping_path(settings, source))
            for kind in source_kinds(settings, source):
                mark = read_watermark(conn, source.system, kind, source.company_code)
                window = plan_window(start, end, mark, overlap, full=full)
                plans.append(
                    ExtractPlan(
                        role=role,
                        system=source.system,
                        kind=kind,
                        company_code=source.company_code,
                        read_from=window.read_from.astimezone(UTC).isoformat(),
                        read_to=window.read_to.astimezone(UTC).isoformat(),
                        mode=window.mode,
                        watermark_to=mark.covered_to.isoformat() if mark else None,
                        mapping_hash=mapping_hash,
                    )
                )
    return plans


def kind_records(
    settings: Settings, plan: ExtractPlan, limiter: Acquire | None = None, retry: RetryPolicy | None = None
) -> Iterator[RawRecord]:
    """Every record of one kind in the plan's window, straight from the source's API."""
    source: SourceConfig = getattr(settings, plan.role)
    start, end = plan.window
    if end <= start:
        return
    client = open_client(source, plan.role, limiter=limiter, retry=retry)
    with client:
        if source.system == "dingtalk":
            yield from client.iter_instances(plan.kind, start, end)  # type: ignore[union-attr]  # the system decides the client (replaced by the SourceSystem reader on the plugins branch)
        else:
            mapping = source_mapping(settings, source)
            form = mapping.form(plan.kind)
            keys = mapping.field_keys(plan.kind)
            yield from client.iter_bills(  # type: ignore[union-attr]  # as above
                plan.kind, keys, form.date_field, start, end, id_field=form.id_field or "FID"
            )


def extract_kind(
    engine: Engine,
    settings: Settings,
    plan: ExtractPlan,
    *,
    limiter: Acquire | None = None,
    now: datetime | None = None,
    retry: RetryPolicy | None = None,
) -> ExtractSummary:
    """Land one kind's records for the plan's window, then advance its watermark.

    Each batch commits on its own; the watermark moves only after the last one, so a crash
    loses at most one batch and never marks unread data as landed.
    """
    now = now or datetime.now(UTC)
    summary = ExtractSummary(system=plan.system, by_kind={plan.kind: 0})
    for batch in _batches(kind_records(settings, plan, limiter, retry), BATCH):
        batch = _unique(batch)
        with engine.begin() as conn:
            land_raw(conn, batch)
        summary.landed += len(batch)
        summary.by_kind[plan.kind] += len(batch)
        log.info("%s %s: landed %d records so far", plan.system, plan.kind, summary.landed)
    start, end = plan.window
    if start < end:
        with engine.begin() as conn:
            advance(conn, plan.system, plan.kind, plan.company_code, start, end, now)
    return summary


def extract_source(
    engine: Engine,
    settings: Settings,
    role: str,
    start: datetime,
    end: datetime,
    *,
    overlap: timedelta = DEFAULT_OVERLAP,
    full: bool = False,
    limiter: Acquire | None = None,
) -> ExtractSummary:
    """Every kind of ``role``'s source, one after the other (the flow runs them as parallel tasks)."""
    source: SourceConfig = getattr(settings, role)
    summary = ExtractSummary(system=source.system)
    for plan in plan_extraction(engine, settings, start, end, overlap=overlap, full=full, roles=[role]):
        summary.add(extract_kind(engine, settings, plan, limiter=limiter))
    return summary
