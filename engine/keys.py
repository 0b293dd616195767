"""Normalising business keys before they are compared (DESIGN: NFKC, stripped)."""

from __future__ import annotations

import re
import unicodedata

import pandas as pd

_SPACE = re.compile(r"\s+")


def norm_key(value: object) -> str:
    """``" ＢＸ2026 1001 "`` → ``"BX20261001"``: NFKC, no whitespace, upper case; missing → ``""``."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return _SPACE.sub("", unicodedata.normalize("NFKC", str(value))).upper()


def norm_keys(values: pd.Series) -> pd.Series:
    return values.map(norm_key).astype("string")


def split_list(values: pd.Series) -> pd.Series:
    """A ``list`` column (comma-joined text) as lists of normalised keys."""
    return values.map(lambda v: [k for k in (norm_key(p) for p in str(v or "").split(",")) if k])
