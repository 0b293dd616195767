"""Applying the contracts: quarantine records that fail, report invoices that fail.

DESIGN.md, "Data contracts": lazy validation reports every failure at once; a
record that fails is quarantined with every reason, never dropped and never let
into the reconciliation. Invoices are the exception: a failing invoice is
reported (``INVALID_INVOICE``) and its claim is still reconciled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from data_contracts.frames import to_frame_checked
from data_contracts.invoices import check_invoices  # noqa: F401  (re-exported)
from data_contracts.invoices import value_text as _text
from data_contracts.models import CHECK_FIELDS, MODELS, REASONS
from oafin.records import Issue, MappedRecord
from oafin.standard import ENTITIES

FAILURE_COLUMNS = ("row", "field", "value", "check")


class ContractDefinitionError(RuntimeError):
    """The schema itself is broken (a column-level failure, a check that raised): not bad data."""


@dataclass(frozen=True)
class ContractResult:
    """Rows that passed, as a frame with the standard dtypes, and records that did not.

    A quarantined record is a copy of the input record whose ``issues`` hold its
    mapping issues followed by one ``CONTRACT_VIOLATION`` per failure.
    """

    valid: pd.DataFrame
    quarantined: list[MappedRecord]


def reason(check: str) -> str:
    """The message of a failed check: ``"<name>: <what it demands>"``."""
    return f"{check}: {REASONS.get(check, check)}"


def contract_failures(entity: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Every failure of ``frame`` against the entity's model, one row per (row, field, check).

    ``row`` is the frame's index label, ``value`` the failing value (``None`` when missing).
    Raises ``ContractDefinitionError`` when the schema, not the data, is at fault.
    """
    try:
        MODELS[entity].validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in FAILURE_COLUMNS})
    if cases["index"].isna().any():
        whole = cases[cases["index"].isna()]
        raise ContractDefinitionError(f"{entity}: schema failure, not data:\n{whole.to_string()}")
    rows: list[tuple[Any, str, str | None, str]] = []
    column_cases = cases[cases["schema_context"] == "Column"]
    for row, field, value, check in zip(
        column_cases["index"],
        column_cases["column"],
        column_cases["failure_case"],
        column_cases["check"],
        strict=True,
    ):
        rows.append((row, field, _text(value), check))
    # A dataframe-wide check lists every column of a failing row: report it once, on its field.
    frame_cases = cases[cases["schema_context"] != "Column"].drop_duplicates(["index", "check"])
    for row, check in zip(frame_cases["index"], frame_cases["check"], strict=True):
        field = CHECK_FIELDS[check]
        rows.append((row, field, _text(frame.at[row, field]), check))
    return pd.DataFrame(rows, columns=list(FAILURE_COLUMNS), dtype=object)


def validate_records(entity: str, records: Sequence[MappedRecord]) -> ContractResult:
    """Validate mapped records of one entity; never raises on bad data.

    Builds the frame from ``r.values`` (``frames.to_frame_checked``), validates it
    lazily and quarantines every record with a failure or an earlier mapping issue.
    A field that already carries a mapping issue (say ``UNMAPPED_CODE``, its value
    ``None``) is not reported again for being missing; likewise a value that did not
    fit its column's kind is reported once, by the kind check.
    """
    kinds = ENTITIES[entity]
    for r in records:
        if r.entity != entity:
            raise ValueError(f"a {r.entity} record given to validate_records({entity!r})")
    frame, cell_errors = to_frame_checked(entity, [r.values for r in records])
    order = {col: i for i, col in enumerate(kinds)}

    found: dict[int, list[tuple[str, str | None, str]]] = {}
    for e in cell_errors:
        found.setdefault(e.row, []).append((e.column, _text(e.value), e.check))
    kind_fields = {(e.row, e.column) for e in cell_errors}
    failures = contract_failures(entity, frame)
    for row, field, value, check in failures.itertuples(index=False):
        if (row, field) not in kind_fields:
            found.setdefault(row, []).append((field, value, check))

    bad = np.zeros(len(records), dtype=bool)
    quarantined: list[MappedRecord] = []
    for i, r in enumerate(records):
        if not r.issues and i not in found:
            continue
        bad[i] = True
        flagged = {issue.field for issue in r.issues}
        new = [
            Issue(code="CONTRACT_VIOLATION", field=field, value=value, message=reason(check))
            for field, value, check in sorted(found.get(i, []), key=lambda f: (order.get(f[0], 0), f[2]))
            if field not in flagged
        ]
        quarantined.append(dataclasses.replace(r, issues=[*r.issues, *new]))
    return ContractResult(valid=frame[~bad].reset_index(drop=True), quarantined=quarantined)
