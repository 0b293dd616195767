"""Extract a source for a window and land its records in the warehouse, incrementally and resumably.

One extraction is one (source, kind, company): a record kind of the source's system
(oafin.systems.base.RecordKind, e.g. an approval form or an ERP form).
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
from sqlalchemy import exc as sa_exc

from oafin.config import ConfigError, Settings, SourceConfig
from oafin.connectors.errors import ConnectorError, TokenExpiredError, unreadable_payload
from oafin.connectors.limits import Acquire, RetryPolicy
from oafin.pipeline.sources import mapping_path, open_reader, record_kinds
from oafin.records import RawRecord
from oafin.warehouse.store import PayloadTooDeepError, canonical_json, land_raw
from oafin.warehouse.watermarks import advance, other_companies, plan_window, read_watermark

log = logging.getLogger(__name__)
BATCH = 500
_SURROGATE = re.compile("[\ud800-\udfff]")
# Re-read this much before the watermark on an incremental run: an approval finished or a bill
# audited a day or two after it was created still lands (flow parameter ``overlap_hours``).
DEFAULT_OVERLAP = timedelta(hours=72)


@dataclass(frozen=True)
class ExtractPlan:
    """One kind's extraction. Plain, hashable values: Prefect's cache key is built on them.

    ``watermark_to`` is the watermark the plan was made from and ``mapping_hash`` the mapping
    file's content hash, so a changed mapping or a moved watermark is a different extraction.
    """

    source: str  # the source's name in the config
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
    # What the reader says an operator should know about the read (e.g. a per-user list that
    # yielded fewer records than it counts); logged as warnings and kept in the run's summary.
    notes: list[str] = field(default_factory=list)

    def add(self, other: ExtractSummary) -> None:
        self.landed += other.landed
        self.notes.extend(other.notes)
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
    # a bug (TypeError, KeyError, ...) fails the same way every time: not retried
    return isinstance(exc, HEALABLE) and not isinstance(exc, NEVER_HEALS)


# Errors outside the connectors that may clear on a new attempt: the network or the OS (OSError,
# timeouts included), and the warehouse being busy or unreachable (a locked SQLite, a dropped
# PostgreSQL connection, an exhausted pool). Programming errors are not among them.
HEALABLE: tuple[type[BaseException], ...] = (OSError, sa_exc.OperationalError, sa_exc.TimeoutError)
NEVER_HEALS: tuple[type[BaseException], ...] = (FileNotFoundError, PermissionError, IsADirectoryError)


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
    except PayloadTooDeepError as exc:  # a bad record: landed as such, quarantined by standardize
        log.warning("%s %s %s: %s, landed as unreadable", record.system, record.kind, record.source_id, exc)
        payload = unreadable_payload(f"{record.system} {record.kind} {record.source_id}: {exc}")
        return RawRecord(record.system, record.kind, record.source_id, payload)
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
    """The names of the kinds a source is extracted by (its system says which, from its mapping)."""
    return [kind.name for kind in record_kinds(settings, source)]


def _refuse_a_shared_schema(conn: Any, source: SourceConfig) -> None:
    """One schema holds one company's records of a system (issue #16). Records are landed and stored
    by ``<system>:<source id>`` and a source's run makes the schema hold exactly its system's rows:
    a second company there would overwrite and delete the first's, silently. Refused before
    anything is read, with what to do."""
    others = other_companies(conn, source.system, source.company_code)
    if others:
        raise ConfigError(
            f"source {source.name!r} ({source.system}, company {source.company_code}): this warehouse schema "
            f"already holds {source.system} records of company {', '.join(others)}. One schema holds one "
            "company's records of a system: give each company its own schema (PostgreSQL "
            "url ...?options=-csearch_path%3D<company>) or SQLite file (README: A group close over many "
            "companies)"
        )


def plan_extraction(
    engine: Engine,
    settings: Settings,
    start: datetime,
    end: datetime,
    *,
    overlap: timedelta = DEFAULT_OVERLAP,
    full: bool = False,
    sources: Iterable[str] | None = None,
) -> list[ExtractPlan]:
    """Per (source, kind): the part of ``[start, end)`` still to read, from the stored watermarks.

    ``sources``: the names of the sources to plan (default: every source in the chain).
    """
    plans = []
    names = list(settings.chain if sources is None else sources)
    with engine.connect() as conn:
        for name in names:
            source: SourceConfig = settings.source(name)
            _refuse_a_shared_schema(conn, source)
            mapping_hash = file_hash(mapping_path(settings, source))
            for kind in source_kinds(settings, source):
                mark = read_watermark(conn, source.system, kind, source.company_code)
                window = plan_window(start, end, mark, overlap, full=full)
                plans.append(
                    ExtractPlan(
                        source=source.name,
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
    settings: Settings,
    plan: ExtractPlan,
    limiter: Acquire | None = None,
    retry: RetryPolicy | None = None,
    notes: list[str] | None = None,
) -> Iterator[RawRecord]:
    """Every record of one kind in the plan's window, straight from the source's API.

    ``notes`` receives, once the read is done, what the reader noted for the operator (a reader's
    optional ``notes`` attribute)."""
    source: SourceConfig = settings.source(plan.source)
    start, end = plan.window
    if end <= start:
        return
    kind = next(k for k in record_kinds(settings, source) if k.name == plan.kind)
    with open_reader(source, limiter=limiter, retry=retry) as reader:
        yield from reader.read(kind, start, end)
        if notes is not None:
            notes.extend(str(n) for n in getattr(reader, "notes", None) or ())


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
    for batch in _batches(kind_records(settings, plan, limiter, retry, summary.notes), BATCH):
        batch = _unique(batch)
        with engine.begin() as conn:
            land_raw(conn, batch)
        summary.landed += len(batch)
        summary.by_kind[plan.kind] += len(batch)
        log.info("%s %s: landed %d records so far", plan.system, plan.kind, summary.landed)
    for note in summary.notes:
        log.warning("%s %s: %s", plan.system, plan.kind, note)
    start, end = plan.window
    if start < end:
        with engine.begin() as conn:
            advance(conn, plan.system, plan.kind, plan.company_code, start, end, now)
    return summary


def extract_source(
    engine: Engine,
    settings: Settings,
    name: str,
    start: datetime,
    end: datetime,
    *,
    overlap: timedelta = DEFAULT_OVERLAP,
    full: bool = False,
    limiter: Acquire | None = None,
) -> ExtractSummary:
    """Every kind of the source ``name``, one after the other (the flow runs them as parallel tasks)."""
    source: SourceConfig = settings.source(name)
    summary = ExtractSummary(system=source.system)
    for plan in plan_extraction(engine, settings, start, end, overlap=overlap, full=full, sources=[name]):
        summary.add(extract_kind(engine, settings, plan, limiter=limiter))
    return summary
