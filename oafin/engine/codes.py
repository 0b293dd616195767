"""Text columns as integer codes: equal text, equal code; the engine's joins run on the codes.

The engine codes millions of business keys, ids and person ids a run (OA numbers of both sides,
claim ids of claims and invoices, invoice numbers …). ``pandas.factorize`` of Arrow text builds a
hash table of the strings themselves, about 170 ns a value on this machine; most of that is the
string hashing and comparing. Here the strings are hashed by polars (xxhash-like, vectorised, a few
ns a value) and the 64-bit hashes factorized as integers, which is what pandas does fastest.

Exact, not probabilistic in practice: two distinct texts with the same hash would share a code,
so every code is checked against a second hash of another seed (both seeds drawn per process):
a value whose second hash differs from its code's first value's proves a collision, and the
column is then coded from the strings themselves (``pandas.factorize``). A false code needs two
distinct texts to collide on both 64-bit hashes at once (about 2⁻¹²⁸ a pair), with seeds an
outside party cannot know; the collision path is tested by forcing it.

Codes are dense and numbered in order of first appearance, exactly as ``pandas.factorize`` numbers
them, so results do not depend on the hashes.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa

_SEEDS = (secrets.randbits(63), secrets.randbits(63))
_CHUNK = 1 << 20  # positions handled at a time where a whole-column temporary is not needed


def arrow_text(values: pd.Series | pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A text column as Arrow ``large_string`` without copying Arrow-backed text; missing → null."""
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return values
    array = values.array
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        return array.__arrow_array__()
    text = values.astype("str").where(values.notna())
    return pa.array(text.to_numpy(dtype=object), type=pa.large_string(), from_pandas=True)


def _polars(parts: Sequence[pd.Series | pa.Array | pa.ChunkedArray]) -> pl.Series:
    series = [_as_string(pl.from_arrow(arrow_text(p))) for p in parts]
    if not series:
        return pl.Series(values=[], dtype=pl.String)
    return pl.concat(series, rechunk=False) if len(series) > 1 else series[0]


def _as_string(values: pl.DataFrame | pl.Series) -> pl.Series:
    series = values.to_series() if isinstance(values, pl.DataFrame) else values
    return series if series.dtype == pl.String else series.cast(pl.String)


def text_codes(
    parts: Sequence[pd.Series | pa.Array | pa.ChunkedArray], *, empty_is_missing: bool = True
) -> np.ndarray:
    """One int64 code per value across ``parts`` (equal text, equal code, dense, in order of
    first appearance); missing, and ``""`` when ``empty_is_missing``, → -1."""
    text = _polars(parts)
    n = len(text)
    if n == 0:
        return np.array([], dtype=np.int64)
    missing = text.is_null()
    if empty_is_missing:
        missing = missing | (text.str.len_bytes() == 0)
    miss = missing.fill_null(True).to_numpy()
    keep = np.flatnonzero(~miss) if miss.any() else None
    codes = _codes_of_present(text, keep)
    if keep is None:
        return codes
    out = np.full(n, -1, dtype=np.int64)
    out[keep] = codes
    return out


def _hash(text: pl.Series, seed: int) -> np.ndarray:
    return text.hash(seed=seed).to_numpy()


def _codes_of_present(
    text: pl.Series,
    keep: np.ndarray | None = None,
    *,
    hashes: Callable[[pl.Series, int], np.ndarray] = _hash,
) -> np.ndarray:
    """Codes of ``text`` at positions ``keep`` (default all). The whole column is hashed and the
    hashes (8 bytes a value) picked, rather than the strings gathered first."""
    first_hash = hashes(text, _SEEDS[0]).view(np.int64)
    if keep is not None:
        first_hash = first_hash[keep]
    n = len(first_hash)
    if n == 0:
        return np.array([], dtype=np.int64)
    codes, uniques = pd.factorize(first_hash)
    n_codes = len(uniques)
    del first_hash, uniques  # at 10M values each of these arrays is 80 MB a part
    codes = codes.astype(np.int64, copy=False)
    # each code's first position; in chunks (from the last, each reversed) so that no second
    # array as long as the column is needed: earlier positions are written last and win
    first = np.empty(n_codes, dtype=np.int64)
    for start in range(((n - 1) // _CHUNK) * _CHUNK, -1, -_CHUNK):
        stop = min(start + _CHUNK, n)
        first[codes[start:stop][::-1]] = np.arange(stop - 1, start - 1, -1)
    check = hashes(text, _SEEDS[1])
    if keep is not None:
        check = check[keep]
    code_check = check[first]
    if all(
        np.array_equal(code_check[codes[i : i + _CHUNK]], check[i : i + _CHUNK]) for i in range(0, n, _CHUNK)
    ):
        return codes
    # two texts share the first hash: code the strings themselves
    present = text if keep is None else text.gather(keep)
    exact, _ = pd.factorize(pd.Series(present.to_arrow(), dtype="str"))
    return exact.astype(np.int64, copy=False)


def factorize_text(values: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """``pandas.factorize`` of a text column: (int64 codes, -1 for missing; the distinct texts in
    order of first appearance). For low-cardinality columns (people, budget codes, approvers),
    where the strings' own hash table stays small and beats hashing first."""
    codes, uniques = pd.factorize(values.reset_index(drop=True))
    return codes.astype(np.int64, copy=False), pd.Series(uniques, dtype="str")
