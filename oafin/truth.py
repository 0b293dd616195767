"""Compare a run's exceptions.csv with the sandbox's truth.csv, row for row, per exception type."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from oafin.standard import EXCEPTION_KEY_COLUMNS, EXCEPTION_TYPES


def _keys(frame: pd.DataFrame) -> set[tuple[str, ...]]:
    cols = ["exception_type", *EXCEPTION_KEY_COLUMNS]
    frame = frame.reindex(columns=cols).fillna("").astype(str)
    return {tuple(v.strip() for v in row) for row in frame.itertuples(index=False)}


def score(found: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Precision and recall per exception type (types absent from both are left out)."""
    f, t = _keys(found), _keys(truth)
    rows = []
    for kind in EXCEPTION_TYPES:
        fk = {k for k in f if k[0] == kind}
        tk = {k for k in t if k[0] == kind}
        if not fk and not tk:
            continue
        hit = len(fk & tk)
        rows.append(
            {
                "exception_type": kind,
                "truth": len(tk),
                "found": len(fk),
                "true_positive": hit,
                "precision": round(hit / len(fk), 4) if fk else None,
                "recall": round(hit / len(tk), 4) if tk else None,
            }
        )
    return pd.DataFrame(rows)


def score_files(exceptions_csv: Path, truth_csv: Path) -> pd.DataFrame:
    return score(
        pd.read_csv(exceptions_csv, dtype=str, keep_default_na=False),
        pd.read_csv(truth_csv, dtype=str, keep_default_na=False),
    )
