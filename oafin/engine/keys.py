"""Normalising business keys before they are compared (DESIGN: NFKC, stripped).

Vectorised: almost every real key is already plain ASCII (``BX202610010001``), so the column is
upper-cased and checked against a printable-ASCII pattern with pandas' ``.str`` methods, and only
the few values that fail it (full-width digits, stray or ideographic spaces) go through
``unicodedata`` one by one. 1M keys take well under a second.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pandas as pd

_SPACE = re.compile(r"\s+")
# Printable ASCII without the space: such a value is its own NFKC form once upper-cased.
_PLAIN = r"[!-~]*"


def norm_key(value: object) -> str:
    """``" ＢＸ2026 1001 "`` → ``"BX20261001"``: NFKC, no whitespace, upper case; missing → ``""``."""
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return ""
    return _SPACE.sub("", unicodedata.normalize("NFKC", str(value))).upper()


def norm_keys(values: pd.Series) -> pd.Series:
    """``norm_key`` over a column, as a ``str`` column with ``""`` for missing."""
    text = values.astype("str").where(values.notna(), "")
    upper = text.str.upper()
    plain = upper.str.fullmatch(_PLAIN).fillna(False).to_numpy(dtype=bool)
    if plain.all():
        return upper
    # patch only the few values that need unicodedata (no round trip of the column via objects)
    rest = np.flatnonzero(~plain)
    out = upper.copy()
    out.iloc[rest] = [norm_key(v) for v in text.iloc[rest].to_numpy(dtype=object)]  # type: ignore[call-overload]  # stubs: a list is valid
    return out


def split_keys(values: pd.Series) -> pd.DataFrame:
    """A ``list`` column (comma-joined text) exploded: one row per normalised non-empty key.

    Returns ``pos`` (the row's position in ``values``) and ``key``.
    """
    text = values.astype("str").where(values.notna(), "")
    has = text.str.len().to_numpy() > 0
    if not has.any():
        return pd.DataFrame({"pos": np.array([], dtype=np.int64), "key": pd.Series([], dtype="str")})
    pos = np.flatnonzero(has)
    if not text.iloc[pos].str.contains(",", regex=False).any():  # the common case: nothing to split
        frame = pd.DataFrame({"pos": pos, "key": norm_keys(text.iloc[pos]).to_numpy()})
        return frame.loc[frame["key"] != ""].reset_index(drop=True)
    parts = text.iloc[pos].str.split(",")
    lengths = parts.str.len().to_numpy()  # type: ignore[misc]  # stubs: .str.len() of lists is valid
    flat = pd.Series(np.concatenate(parts.to_numpy()), dtype="str")
    keys = norm_keys(flat)
    frame = pd.DataFrame({"pos": np.repeat(pos, lengths), "key": keys.to_numpy()})
    return frame.loc[frame["key"] != ""].reset_index(drop=True)


def split_list(values: pd.Series) -> pd.Series:
    """A ``list`` column (comma-joined text) as lists of normalised keys (for small frames and tests)."""
    return values.map(lambda v: [k for k in (norm_key(p) for p in str(v or "").split(",")) if k])
