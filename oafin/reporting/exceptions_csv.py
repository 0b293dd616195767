"""exceptions.csv: one row per exception, in the columns the truth file and the data team share.

A machine interface: UTF-8 without a byte-order mark, the standard's English column names and
codes, amounts in integer fen, ISO times in UTC. It is not meant for people: on a Chinese Windows
machine Excel opens a BOM-less UTF-8 CSV as GBK (garbled). People read the workbook
(``reconciliation-<run>.xlsx``: Chinese, ¥, names) or report.html.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from oafin.reporting.redact import formula_safe, mask_key, safe_cell
from oafin.standard import EXCEPTION_COLUMNS

CSV_COLUMNS = [*EXCEPTION_COLUMNS, "company_code", "period"]
# Business keys identify the record a reviewer must find (a malformed 19-digit invoice number is
# still that invoice's number): formula-safe but not masked, unless the value is a valid bank card or
# resident id (oafin.masking.mask_key). Free text is masked as well.
KEY_COLUMNS = ("claim_no", "doc_no", "invoice_no", "budget_code", "person_id")
FREE_TEXT_COLUMNS = ("detail",)


def report_frame(exceptions: pd.DataFrame) -> pd.DataFrame:
    """The exceptions as reports show them: fixed columns, masked and formula-safe text, ISO times."""
    out = exceptions.reindex(columns=CSV_COLUMNS).copy()
    for col in KEY_COLUMNS:
        out[col] = out[col].map(lambda v: formula_safe(mask_key(v)) if isinstance(v, str) else v)
    for col in FREE_TEXT_COLUMNS:
        out[col] = out[col].map(lambda v: safe_cell(v) if isinstance(v, str) else v)
    out["amount_fen"] = out["amount_fen"].astype("Int64")
    for col in ("first_seen", "last_seen"):
        out[col] = pd.to_datetime(out[col], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out.sort_values(["exception_type", "claim_no", "doc_no", "invoice_no", "budget_code"]).reset_index(
        drop=True
    )


def write_exceptions_csv(exceptions: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    report_frame(exceptions).to_csv(path, index=False, encoding="utf-8")
    return path
