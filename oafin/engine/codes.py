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

import os
import secrets
from collections.abc import Sequence

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa

_SEEDS = (secrets.randbits(63), secrets.randbits(63))
_CHUNK = 1 << 20  # positions handled at a time where a whole-column temporary is not needed
# polars runs its work on a thread pool that a forked child does not have: once polars has run in
# a process, a child forked from it would wait for that pool forever (polars is not fork-safe; the
# crash tests fork). Such a child codes text with pandas instead.
_fork_state = {"polars_used": False, "forked_after_polars": False}


def _after_fork_in_child() -> None:
    _fork_state["forked_after_polars"] = _fork_state["polars_used"] or _fork_state["forked_after_polars"]


os.register_at_fork(after_in_child=_after_fork_in_child)


def arrow_text(values: pd.Series | pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """A text column as Arrow ``large_string`` without copying Arrow-backed text; missing → null."""
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return values
    array = values.array
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        return array.__arrow_array__()
    text = values.astype("str").where(values.notna())
    return pa.array(text.to_numpy(dtype=object), type=pa.large_string(), from_pandas=True)


def _polars(values: pd.Series | pa.Array | pa.ChunkedArray) -> pl.Series:
    series = pl.from_arrow(arrow_text(values))
    series = series.to_series() if isinstance(series, pl.DataFrame) else series
    return series if series.dtype == pl.String else series.cast(pl.String)


def _hash(text: pl.Series, seed: int) -> np.ndarray:
    return text.hash(seed=seed).to_numpy()


def text_codes(
    parts: Sequence[pd.Series | pa.Array | pa.ChunkedArray], *, empty_is_missing: bool = True
) -> np.ndarray:
    """One int64 code per value across ``parts`` (equal text, equal code, dense, in order of
    first appearance); missing, and ``""`` when ``empty_is_missing``, → -1.

    One part at a time is held as polars text (16 bytes a value and more): only its two hashes
    (8 bytes each) and what is missing are kept of it.
    """
    if _fork_state["forked_after_polars"]:
        return _exact_codes(parts, empty_is_missing)
    _fork_state["polars_used"] = True
    first_hashes, check_hashes, missing = [], [], []
    for part in parts:
        text = _polars(part)
        miss = text.is_null()
        if empty_is_missing:
            miss = miss | (text.str.len_bytes() == 0)
        missing.append(miss.fill_null(True).to_numpy())
        first_hashes.append(_hash(text, _SEEDS[0]).view(np.int64))
        check_hashes.append(_hash(text, _SEEDS[1]))
        del text
    n = sum(len(m) for m in missing)
    if n == 0:
        return np.array([], dtype=np.int64)
    miss_all = np.concatenate(missing)
    keep = np.flatnonzero(~miss_all) if miss_all.any() else None
    first_hash, check = np.concatenate(first_hashes), np.concatenate(check_hashes)
    del first_hashes, check_hashes
    if keep is not None:
        first_hash, check = first_hash[keep], check[keep]
    codes = _codes_of_hashes(first_hash, check)
    if codes is None:  # two texts share the first hash: code the strings themselves
        return _exact_codes(parts, empty_is_missing)
    if keep is None:
        return codes
    out = np.full(n, -1, dtype=np.int64)
    out[keep] = codes
    return out


def _exact_codes(
    parts: Sequence[pd.Series | pa.Array | pa.ChunkedArray], empty_is_missing: bool
) -> np.ndarray:
    """``text_codes`` from the strings themselves (``pandas.factorize``): slower, no polars."""
    if not parts:
        return np.array([], dtype=np.int64)
    joined = pd.concat([pd.Series(arrow_text(p), dtype="str") for p in parts], ignore_index=True)
    if empty_is_missing:
        joined = joined.where(joined != "")
    return pd.factorize(joined)[0].astype(np.int64, copy=False)


def _codes_of_hashes(first_hash: np.ndarray, check: np.ndarray) -> np.ndarray | None:
    """Codes of the values by their first hash, or ``None`` when a code's values disagree on the
    second hash (a collision of the first)."""
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
    code_check = check[first]
    chunks = range(0, n, _CHUNK)
    if all(np.array_equal(code_check[codes[i : i + _CHUNK]], check[i : i + _CHUNK]) for i in chunks):
        return codes
    return None


def compact(codes: np.ndarray) -> np.ndarray:
    """Codes or positions as int32 when they fit (they always do below 2^31 rows): half the
    memory of the per-row arrays a run keeps, and half the cache they take."""
    if len(codes) == 0 or (int(codes.max()) < 2**31 and int(codes.min()) >= -(2**31)):
        return codes.astype(np.int32, copy=False)
    return codes


def factorize_text(values: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """``pandas.factorize`` of a text column: (int64 codes, -1 for missing; the distinct texts in
    order of first appearance). For low-cardinality columns (people, budget codes, approvers),
    where the strings' own hash table stays small and beats hashing first."""
    codes, uniques = pd.factorize(values.reset_index(drop=True))
    return codes.astype(np.int64, copy=False), pd.Series(uniques, dtype="str")
