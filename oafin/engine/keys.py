"""Normalising business keys before they are compared (DESIGN: NFKC, stripped).

Vectorised in Arrow: almost every real key is already plain ASCII (``BX202610010001``), so the
column is upper-cased as it is, ASCII values with whitespace lose it with one regular expression,
and only the few values with other characters (full-width digits, ideographic spaces) go through
``unicodedata`` one by one. 1M keys take a few tens of milliseconds.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from oafin.engine.codes import arrow_text

_SPACE = re.compile(r"\s+")
# What Python's ``\s`` matches below 128 (checked in tests/test_engine_equivalence.py), as an RE2 class.
_ASCII_SPACE = r"[\t\n\x0b\x0c\r\x1c-\x1f ]+"


def norm_key(value: object) -> str:
    """``" ＢＸ2026 1001 "`` → ``"BX20261001"``: NFKC, no whitespace, upper case; missing → ``""``."""
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return ""
    return _SPACE.sub("", unicodedata.normalize("NFKC", str(value))).upper()


def _flat_text(values: pd.Series | pa.Array | pa.ChunkedArray) -> pa.Array:
    """One Arrow ``large_string`` array, missing as ``""``."""
    arr = arrow_text(values)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    arr = arr.cast(pa.large_string())
    return pc.fill_null(arr, "") if arr.null_count else arr


_NORM_CHUNK = 1 << 20  # values normalised at a time: the temporaries stay small at 10M values


def norm_keys(values: pd.Series | pa.Array | pa.ChunkedArray) -> pd.Series:
    """``norm_key`` over a column, as a ``str`` column (same index) with ``""`` for missing.

    In Arrow, without a round trip through Python objects: a value of printable ASCII without a
    space is upper-cased as it is; any other ASCII value loses its whitespace (the characters
    Python's ``\\s`` matches below 128: tab, LF, VT, FF, CR, 0x1C-0x1F, space; NFKC leaves ASCII as
    it is) and is upper-cased; only values with other characters go through ``unicodedata``. In
    chunks of a million values (the result is a chunked column).
    """
    arr = arrow_text(values)
    chunks = arr.chunks if isinstance(arr, pa.ChunkedArray) else [arr]
    pieces = [
        _norm_chunk(_flat_text(chunk.slice(start, _NORM_CHUNK)))
        for chunk in chunks
        for start in range(0, len(chunk), _NORM_CHUNK)
    ]
    out = pa.chunked_array(pieces, type=pa.large_string())
    index = values.index if isinstance(values, pd.Series) else None
    return pd.Series(out, dtype="str", index=index)


def _norm_chunk(arr: pa.Array) -> pa.Array:
    plain = pc.and_(pc.ascii_is_printable(arr), pc.equal(pc.find_substring(arr, " "), -1))
    out = pc.ascii_upper(arr)
    rest = np.flatnonzero(~plain.to_numpy(zero_copy_only=False))
    if not len(rest):
        return out
    sub = arr.take(pa.array(rest))
    ascii_ = pc.string_is_ascii(sub).to_numpy(zero_copy_only=False)
    fixed = pc.ascii_upper(pc.replace_substring_regex(sub, _ASCII_SPACE, "")).to_pylist()
    raw = sub.to_pylist()
    for i in np.flatnonzero(~ascii_):
        fixed[i] = norm_key(raw[i])
    return pc.replace_with_mask(out, pc.invert(plain), pa.array(fixed, type=pa.large_string()))


def split_keys(values: pd.Series) -> pd.DataFrame:
    """A ``list`` column (comma-joined text) exploded: one row per normalised non-empty key.

    Returns ``pos`` (the row's position in ``values``) and ``key``.
    """
    arr = _flat_text(values)
    pos = np.flatnonzero(pc.greater(pc.binary_length(arr), 0).to_numpy(zero_copy_only=False))
    if not len(pos):
        return pd.DataFrame({"pos": np.array([], dtype=np.int64), "key": pd.Series([], dtype="str")})
    text = arr.take(pa.array(pos))
    if not pc.any(pc.greater_equal(pc.find_substring(text, ","), 0)).as_py():  # the common case
        keys = norm_keys(text)
    else:
        parts = pc.split_pattern(text, ",")
        pos = np.repeat(pos, pc.list_value_length(parts).to_numpy(zero_copy_only=False))
        keys = norm_keys(pc.list_flatten(parts))
    frame = pd.DataFrame({"pos": pos, "key": keys})
    return frame.loc[(keys != "").to_numpy(dtype=bool)].reset_index(drop=True)


def split_list(values: pd.Series) -> pd.Series:
    """A ``list`` column (comma-joined text) as lists of normalised keys (for small frames and tests)."""
    return values.map(lambda v: [k for k in (norm_key(p) for p in str(v or "").split(",")) if k])
