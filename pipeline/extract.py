"""Extract one source for a window and land its records in the warehouse, in committed batches."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice

from sqlalchemy import Engine

from oafin.config import Settings, SourceConfig
from oafin.records import RawRecord
from pipeline.sources import open_client, source_mapping
from warehouse.store import land_raw

log = logging.getLogger(__name__)
BATCH = 500


@dataclass
class ExtractSummary:
    system: str
    landed: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


def _batches(records: Iterable[RawRecord], size: int) -> Iterator[list[RawRecord]]:
    it = iter(records)
    while batch := list(islice(it, size)):
        yield batch


def source_records(
    settings: Settings, source: SourceConfig, role: str, start: datetime, end: datetime
) -> Iterator[RawRecord]:
    """Every record ``source`` holds for [start, end), straight from its API."""
    client = open_client(source, role)
    with client:
        if source.system == "dingtalk":
            yield from client.iter_instances(source.process_code, start, end)
        else:
            mapping = source_mapping(settings, source)
            for form_id in mapping.kinds:
                form = mapping.form(form_id)
                keys = mapping.field_keys(form_id)
                id_field = form.id_field or "FID"
                yield from client.iter_bills(form_id, keys, form.date_field, start, end, id_field=id_field)


def extract_source(
    engine: Engine, settings: Settings, role: str, start: datetime, end: datetime
) -> ExtractSummary:
    """Land ``role``'s records for the window; each batch is committed, so a crash loses at most one batch."""
    source: SourceConfig = getattr(settings, role)
    summary = ExtractSummary(system=source.system)
    for batch in _batches(source_records(settings, source, role, start, end), BATCH):
        with engine.begin() as conn:
            land_raw(conn, batch)
        summary.landed += len(batch)
        for rec in batch:
            summary.by_kind[rec.kind] = summary.by_kind.get(rec.kind, 0) + 1
        log.info("%s: landed %d records so far", source.system, summary.landed)
    return summary
