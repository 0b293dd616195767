"""Frames of standard entities: every standard column, in order, with one dtype per kind.

The dtypes (one choice for the whole project; ``oafin.standard`` names the kinds):

==========  ===========================  ==========================================
kind        dtype                        missing
==========  ===========================  ==========================================
``text``    ``str`` (pandas' default)    ``NaN`` (test with ``pd.isna``)
``list``    ``str``, comma-joined        ``""`` (the standard's "none")
``fen``     ``Int64`` (nullable int64)   ``<NA>``; integer arithmetic, never float
``int``     ``Int64``                    ``<NA>``
``ts``      ``datetime64[ns, UTC]``      ``NaT``
``date``    ``datetime64[ns]``           ``NaT``
==========  ===========================  ==========================================

``date`` is a calendar date in Asia/Shanghai held as midnight without a zone: a
datetime64 column keeps date arithmetic and comparisons vectorised (``.dt.year``,
``between``), where ``datetime.date`` objects would not.

Building a frame never guesses: a value that does not fit its column's kind (a
float amount, a naive timestamp, a number where text belongs) becomes missing,
and ``to_frame_checked`` says which cell and why, for the contract to quarantine.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from oafin.standard import ENTITIES, ColumnKind

TEXT_DTYPE: Final = pd.StringDtype(na_value=np.nan)  # what pandas 3 infers for str
TS_DTYPE: Final = pd.DatetimeTZDtype(unit="ns", tz="UTC")
DATE_DTYPE: Final = np.dtype("datetime64[ns]")
KIND_DTYPES: Final[dict[ColumnKind, Any]] = {
    "text": TEXT_DTYPE,
    "list": TEXT_DTYPE,
    "fen": pd.Int64Dtype(),
    "int": pd.Int64Dtype(),
    "ts": TS_DTYPE,
    "date": DATE_DTYPE,
}

# What each kind's coercion failure is called; the name becomes the quarantine reason.
KIND_CHECKS: Final[dict[str, str]] = {
    "text_kind": "text must be a string",
    "list_kind": "a list must be a comma-joined string or a list of strings",
    "integer_kind": "must be an integer (money is integer fen, never a float)",
    "integer_range": "integer outside the int64 range",
    "timestamp_tz_aware": "timestamp must be a timezone-aware datetime",
    "timestamp_range": "timestamp outside the years 1678-2261",
    "date_kind": "must be a calendar date in the years 1678-2261",
}

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# datetime64[ns] spans 1677-09-21 .. 2262-04-11; whole years inside it, kept simple.
_YEAR_MIN, _YEAR_MAX = 1678, 2261


@dataclass(frozen=True)
class CellError:
    """A value that does not fit its column's kind; it was replaced by missing."""

    row: int
    column: str
    value: Any
    check: str  # a key of KIND_CHECKS

    @property
    def message(self) -> str:
        return f"{self.check}: {KIND_CHECKS[self.check]}"


def dtypes(entity: str) -> dict[str, Any]:
    """The dtype of every standard column of ``entity``, in order."""
    return {col: KIND_DTYPES[kind] for col, kind in ENTITIES[entity].items()}


def empty_frame(entity: str) -> pd.DataFrame:
    """A frame with no rows and the standard columns and dtypes of ``entity``."""
    return pd.DataFrame({col: pd.Series(dtype=dtype) for col, dtype in dtypes(entity).items()})


def to_frame(entity: str, rows: Sequence[Mapping[Any, Any]]) -> pd.DataFrame:
    """A frame of ``rows`` with every standard column of ``entity`` in order and the standard dtypes.

    Missing keys become missing values; keys outside the standard are ignored. A
    value of the wrong kind also becomes missing: use ``to_frame_checked`` to learn
    which (``data_contracts.validate`` does, and quarantines the record).
    """
    return to_frame_checked(entity, rows)[0]


def to_frame_checked(entity: str, rows: Sequence[Mapping[Any, Any]]) -> tuple[pd.DataFrame, list[CellError]]:
    """``to_frame`` plus the cells whose values did not fit their column's kind."""
    kinds = ENTITIES[entity]  # KeyError for an unknown entity: a caller's bug
    errors: list[CellError] = []
    columns: dict[str, pd.Series] = {}
    for col, kind in kinds.items():
        values = [row.get(col) for row in rows]
        series, bad = _COERCE[kind](values)
        columns[col] = series
        errors.extend(CellError(i, col, values[i], check) for i, check in bad)
    frame = pd.DataFrame(columns, index=pd.RangeIndex(len(rows)))
    return frame, errors


# --- one coercion per kind: values -> (Series of the kind's dtype, [(position, check)]) ---

Bad = list[tuple[int, str]]


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


def _text(values: list[Any]) -> tuple[pd.Series, Bad]:
    if set(map(type, values)) <= {str, type(None)}:
        return pd.Series(values, dtype=TEXT_DTYPE), []
    out: list[str | None] = []
    bad: Bad = []
    for i, v in enumerate(values):
        if _missing(v):
            out.append(None)
        elif isinstance(v, str):
            out.append(v)
        elif isinstance(v, int | np.integer) and not isinstance(v, bool):
            out.append(str(v))  # an id the source sent as a number: lossless
        else:
            out.append(None)
            bad.append((i, "text_kind"))
    return pd.Series(out, dtype=TEXT_DTYPE), bad


def _list(values: list[Any]) -> tuple[pd.Series, Bad]:
    out: list[str] = []
    bad: Bad = []
    for i, v in enumerate(values):
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, list | tuple) and all(isinstance(x, str) for x in v):
            out.append(",".join(v))
        elif _missing(v):
            out.append("")
        else:
            out.append("")
            bad.append((i, "list_kind"))
    return pd.Series(out, dtype=TEXT_DTYPE), bad


def _integer(values: list[Any]) -> tuple[pd.Series, Bad]:
    if set(map(type, values)) <= {int, type(None)}:
        try:
            return pd.Series(pd.array(values, dtype="Int64")), []
        except (OverflowError, TypeError, ValueError):
            pass  # out of int64 range: find which below
    out: list[int | None] = []
    bad: Bad = []
    for i, v in enumerate(values):
        if isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_):
            if _INT64_MIN <= v <= _INT64_MAX:
                out.append(int(v))
            else:
                out.append(None)
                bad.append((i, "integer_range"))
        elif _missing(v):
            out.append(None)
        else:  # float, Decimal, str: the mapping must parse money to int fen
            out.append(None)
            bad.append((i, "integer_kind"))
    return pd.Series(pd.array(out, dtype="Int64")), bad


def _timestamp(values: list[Any]) -> tuple[pd.Series, Bad]:
    out: list[dt.datetime | None] = []
    bad: Bad = []
    for i, v in enumerate(values):
        if isinstance(v, dt.datetime) and v.tzinfo is not None and v.utcoffset() is not None:
            if _YEAR_MIN <= v.year <= _YEAR_MAX:
                out.append(v)
            else:
                out.append(None)
                bad.append((i, "timestamp_range"))
        elif _missing(v):
            out.append(None)
        else:  # naive datetimes, dates, strings, epoch numbers: the mapping must decide the zone
            out.append(None)
            bad.append((i, "timestamp_tz_aware"))
    series = pd.Series(pd.to_datetime(out, utc=True), dtype=TS_DTYPE) if out else pd.Series(dtype=TS_DTYPE)  # type: ignore[arg-type]  # None → NaT
    return series, bad


def _date(values: list[Any]) -> tuple[pd.Series, Bad]:
    out: list[dt.date | None] = []
    bad: Bad = []
    for i, v in enumerate(values):
        if _missing(v):
            out.append(None)
            continue
        if isinstance(v, dt.datetime):
            # a naive midnight is a date written as a datetime; anything else is ambiguous
            day = v.date() if v.tzinfo is None and v.time() == dt.time() else None
        else:
            day = v if isinstance(v, dt.date) else None
        if day is None or not _YEAR_MIN <= day.year <= _YEAR_MAX:
            out.append(None)
            bad.append((i, "date_kind"))
        else:
            out.append(day)
    series = pd.Series(pd.to_datetime(out), dtype=DATE_DTYPE) if out else pd.Series(dtype=DATE_DTYPE)  # type: ignore[arg-type]  # None → NaT
    return series, bad


_COERCE: Final[dict[ColumnKind, Callable[[list[Any]], tuple[pd.Series, Bad]]]] = {
    "text": _text,
    "list": _list,
    "fen": _integer,
    "int": _integer,
    "ts": _timestamp,
    "date": _date,
}
